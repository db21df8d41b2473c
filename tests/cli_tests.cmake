# Behaviour of the `digcl` binary itself: exit codes and messages.
set(DIGCL_BIN "$<TARGET_FILE:digcl_cli>")

add_test(NAME cli_help COMMAND ${DIGCL_BIN} --help)
set_tests_properties(cli_help PROPERTIES PASS_REGULAR_EXPRESSION "usage: digcl")

add_test(NAME cli_devices_lists_pocl COMMAND ${DIGCL_BIN} devices)
set_tests_properties(cli_devices_lists_pocl PROPERTIES PASS_REGULAR_EXPRESSION "\\* [0-9]+:[0-9]+ .*Portable Computing Language|\\* [0-9]+:[0-9]+ ")

# An unknown --device lists the devices and exits 2 (a wrapper checks the code).
add_test(NAME cli_unknown_device_exits_2
  COMMAND sh -c "\"$1\" --device no-such-device-xyz bench gemm 2>&1; test $? -eq 2" sh ${DIGCL_BIN})
set_tests_properties(cli_unknown_device_exits_2 PROPERTIES
  PASS_REGULAR_EXPRESSION "no OpenCL device matches 'no-such-device-xyz'.*Available devices")

add_test(NAME cli_unknown_command_exits_2 COMMAND sh -c "\"$1\" frobnicate; test $? -eq 2" sh ${DIGCL_BIN})
add_test(NAME cli_bad_flag_value_exits_2
  COMMAND sh -c "\"$1\" bench gemm --size abc 2>&1; test $? -eq 2" sh ${DIGCL_BIN})
set_tests_properties(cli_bad_flag_value_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION "--size expects an integer")

# No OpenCL platform at all: point the ICD loader at an empty vendor directory.
add_test(NAME cli_no_platform_explains_pocl
  COMMAND sh -c "mkdir -p \"$2\" && OCL_ICD_VENDORS=\"$2\" \"$1\" devices 2>&1; test $? -ne 0" sh ${DIGCL_BIN}
          "${CMAKE_BINARY_DIR}/empty-icd-vendors")
set_tests_properties(cli_no_platform_explains_pocl PROPERTIES PASS_REGULAR_EXPRESSION "pocl-opencl-icd")

# The GEMM self-check, and a second run that reports cache hits with -v.
add_test(NAME cli_bench_gemm_twice_hits_cache
  COMMAND sh -c "rm -rf \"$2\"; for run in 1 2; do DIGCL_CACHE_DIR=\"$2\" \"$1\" -v bench gemm --size 64 --seconds 0.05 2>&1 || exit 1; done"
          sh ${DIGCL_BIN} "${CMAKE_BINARY_DIR}/cli-kernel-cache")
set_tests_properties(cli_bench_gemm_twice_hits_cache PROPERTIES
  PASS_REGULAR_EXPRESSION "kernel cache: loaded util")

# DIGCL_PROFILE=1 prints per-kernel totals at exit, CLBlast GEMMs included.
add_test(NAME cli_profile_totals
  COMMAND sh -c "DIGCL_PROFILE=1 \"$1\" bench gemm --size 64 --seconds 0.05 2>&1" sh ${DIGCL_BIN})
set_tests_properties(cli_profile_totals PROPERTIES
  PASS_REGULAR_EXPRESSION "digcl profile .*gemm \\(CLBlast, host-timed\\).*copy_float4|digcl profile .*copy_float4.*gemm \\(CLBlast, host-timed\\)")
