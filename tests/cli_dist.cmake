# Data-parallel training under mpirun (tests/test_dist.c has the equivalence and
# resume checks): a killed or stalled rank ends the job with an error, not a hang.
set(DIGCL_BIN "$<TARGET_FILE:digcl_cli>") # also set by cli_tests.cmake, which may come later
if(MPI_C_FOUND AND DIGCL_MPIEXEC)
  add_test(NAME cli_dist_rank_failure
    COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/cli_dist_kill.sh" ${DIGCL_BIN} "${CMAKE_BINARY_DIR}/cli-dist-kill")
  set_tests_properties(cli_dist_rank_failure PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
    ENVIRONMENT "DIGCL_CACHE_DIR=${CMAKE_BINARY_DIR}/cli-kernel-cache"
    PASS_REGULAR_EXPRESSION "rank failure test passed")
endif()
