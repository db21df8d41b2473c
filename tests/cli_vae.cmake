# `digcl decode` usage errors (exit 2) and a decode through the committed TAESD fixture.
add_test(NAME cli_decode_usage COMMAND digcl_cli decode)
set_tests_properties(cli_decode_usage PROPERTIES WILL_FAIL TRUE)
add_test(NAME cli_decode_taesd
         COMMAND digcl_cli decode --taesd
                 "${CMAKE_SOURCE_DIR}/tests/reference/fixtures_committed/vae/taesd/weights.safetensors"
                 "${CMAKE_SOURCE_DIR}/tests/reference/fixtures_committed/vae/taesd/io.safetensors"
                 --tensor latents_8 -o "${CMAKE_BINARY_DIR}/cli_decode_taesd.ppm")
set_tests_properties(cli_decode_taesd PROPERTIES
  ENVIRONMENT "DIGCL_CACHE_DIR=${CMAKE_BINARY_DIR}/test-kernel-cache"
  FAIL_REGULAR_EXPRESSION "error")
