# digcl train --sample-every (apps/train_sample.c): grids at the right steps, training unchanged.
add_test(NAME cli_train_sample_every
  COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/cli_train_sample.sh" "$<TARGET_FILE:digcl_cli>"
          "${CMAKE_BINARY_DIR}/cli-train-sample")
set_tests_properties(cli_train_sample_every PROPERTIES TIMEOUT 600
  ENVIRONMENT "DIGCL_CACHE_DIR=${CMAKE_BINARY_DIR}/cli-kernel-cache"
  PASS_REGULAR_EXPRESSION "sample-every grids written, training unchanged")
