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

# DIGCL_PROFILE=1 prints per-kernel totals at exit, CLBlast GEMMs included (forced: a CPU
# device runs OpenBLAS by default).
add_test(NAME cli_profile_totals
  COMMAND sh -c "DIGCL_GEMM=clblast DIGCL_PROFILE=1 \"$1\" bench gemm --size 64 --seconds 0.05 2>&1" sh ${DIGCL_BIN})
set_tests_properties(cli_profile_totals PROPERTIES
  PASS_REGULAR_EXPRESSION "digcl profile .*gemm \\(CLBlast, host-timed\\).*copy_float4|digcl profile .*copy_float4.*gemm \\(CLBlast, host-timed\\)")

# --precision and the GEMM-path variables: a bad value is refused with a message naming
# it (the flag exits 2 like any bad flag; the library's own checks of the environment
# exit 1); tf32 where no tensor-core GEMM exists says so and stays fp32.
add_test(NAME cli_bad_precision_exits_2
  COMMAND sh -c "\"$1\" --precision fp64 devices 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_bad_precision_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "--precision expects fp32 or tf32, got 'fp64'.*exit=2")
add_test(NAME cli_bad_gemm_environment
  COMMAND sh -c "for setting in DIGCL_PRECISION=fp64 DIGCL_GEMM=bogus DIGCL_GEMM=tensor 'DIGCL_GEMM=tensor-emulate DIGCL_GEMM_TILE=9x9' 'DIGCL_GEMM=tensor-emulate DIGCL_GEMM_PREFETCH=3'; do env $setting \"$1\" bench gemm --size 64 --seconds 0.05 2>&1 | grep 'digcl: error'; echo exit=$?; done" sh ${DIGCL_BIN})
set_tests_properties(cli_bad_gemm_environment PROPERTIES PASS_REGULAR_EXPRESSION
  "DIGCL_PRECISION='fp64' is not a precision.*exit=0.*DIGCL_GEMM='bogus' is not a GEMM path.*exit=0.*DIGCL_GEMM=tensor needs an NVIDIA GPU.*exit=0.*DIGCL_GEMM_TILE='9x9' is not a tile.*exit=0.*DIGCL_GEMM_PREFETCH='3' is not valid.*exit=0")
add_test(NAME cli_bad_gemm_environment_exit_code
  COMMAND sh -c "DIGCL_GEMM=bogus \"$1\" bench gemm --size 64 --seconds 0.05 >/dev/null 2>&1; test $? -eq 1" sh ${DIGCL_BIN})
add_test(NAME cli_tf32_without_tensor_cores
  COMMAND sh -c "DIGCL_GEMM=clblast \"$1\" --precision tf32 bench gemm --size 64 --seconds 0.05 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_tf32_without_tensor_cores PROPERTIES PASS_REGULAR_EXPRESSION
  "GEMM path: CLBlast.*precision tf32 has no effect.*products stay fp32.*self-check.*ok.*exit=0|precision tf32 has no effect.*GEMM path: CLBlast.*exit=0")

# ---------------------------------------------------------------- digcl info / forward
# Each command's exit code is echoed as "exit=N" so the regular expression checks it too.

# Every total and trainable count of tests/reference/param_counts.txt, by preset name,
# upstream constructor name and -skipzero.
add_test(NAME cli_info_param_counts
  COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/cli_info_counts.sh" ${DIGCL_BIN}
          "${CMAKE_CURRENT_SOURCE_DIR}/reference/param_counts.txt")
set_tests_properties(cli_info_param_counts PROPERTIES PASS_REGULAR_EXPRESSION "all [0-9]+ preset names match")

add_test(NAME cli_info_help COMMAND ${DIGCL_BIN} info --help)
set_tests_properties(cli_info_help PROPERTIES PASS_REGULAR_EXPRESSION "usage: digcl info .*--image-size S.*--batch N")

add_test(NAME cli_info_memory_estimate
  COMMAND sh -c "\"$1\" info --model DiG-XL/2 --image-size 512 --batch 8 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_info_memory_estimate PROPERTIES PASS_REGULAR_EXPRESSION
  "input_size +64 .*512 px.*1024 tokens.*batch 8, 512x512 px.*AdamW moments .*activations .*total .*exit=0")

# No OpenCL device is needed: an empty ICD vendor directory still works.
add_test(NAME cli_info_needs_no_device
  COMMAND sh -c "mkdir -p \"$2\" && OCL_ICD_VENDORS=\"$2\" \"$1\" info --model DiT-S/2 2>&1; echo exit=$?" sh ${DIGCL_BIN}
          "${CMAKE_BINARY_DIR}/empty-icd-vendors")
set_tests_properties(cli_info_needs_no_device PROPERTIES PASS_REGULAR_EXPRESSION "total 32963360 .*exit=0")

add_test(NAME cli_info_custom_model
  COMMAND sh -c "\"$1\" info --arch dit --depth 2 --hidden-size 64 --num-heads 4 --patch-size 4 --num-classes 10 --learn-sigma 0 2>&1; echo exit=$?"
          sh ${DIGCL_BIN})
set_tests_properties(cli_info_custom_model PROPERTIES PASS_REGULAR_EXPRESSION
  "model +custom.*arch +dit.*out_channels 4 .*num_classes +10 .*total [0-9]+ .*exit=0")

add_test(NAME cli_info_override_preset
  COMMAND sh -c "\"$1\" info --model DiG-S/2 --depth 6 --image-size 128 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_info_override_preset PROPERTIES PASS_REGULAR_EXPRESSION
  "depth +6.*input_size +16 .*exit=0")

add_test(NAME cli_info_unknown_preset_exits_2
  COMMAND sh -c "\"$1\" info --model DiG-Q/3 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_info_unknown_preset_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "unknown model preset 'DiG-Q/3'.*presets:.*DiG-S/2 .*DiT-XL/8.*exit=2")

add_test(NAME cli_info_image_size_not_multiple_of_8_exits_2
  COMMAND sh -c "\"$1\" info --model DiG-S/2 --image-size 260 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_info_image_size_not_multiple_of_8_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "--image-size 260 is not a multiple of 8.*exit=2")

add_test(NAME cli_info_image_size_not_multiple_of_patch_exits_2
  COMMAND sh -c "\"$1\" info --model DiG-S/4 --image-size 264 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_info_image_size_not_multiple_of_patch_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "--image-size 264 gives a 33x33 latent, which is not a multiple of the patch size 4.*exit=2")

add_test(NAME cli_info_no_model_exits_2
  COMMAND sh -c "\"$1\" info --depth 4 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_info_no_model_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "no model given.*--depth, --hidden-size and --num-heads.*exit=2")

add_test(NAME cli_info_bad_config_exits_2
  COMMAND sh -c "\"$1\" info --model DiG-S/2 --num-heads 5 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_info_bad_config_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "hidden_size 384 does not split into 5 heads.*exit=2")

add_test(NAME cli_info_missing_ckpt_exits_1
  COMMAND sh -c "\"$1\" info --ckpt /nonexistent/w.safetensors 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_info_missing_ckpt_exits_1 PROPERTIES PASS_REGULAR_EXPRESSION
  "/nonexistent/w.safetensors: cannot open.*exit=1")

add_test(NAME cli_forward_help COMMAND ${DIGCL_BIN} forward --help)
set_tests_properties(cli_forward_help PROPERTIES PASS_REGULAR_EXPRESSION
  "usage: digcl forward --ckpt .*dout .*grad.x")

add_test(NAME cli_forward_missing_flag_exits_2
  COMMAND sh -c "\"$1\" forward --ckpt w.safetensors --output o.safetensors 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_forward_missing_flag_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "missing --inputs IN.safetensors.*exit=2")

add_test(NAME cli_forward_unknown_flag_exits_2
  COMMAND sh -c "\"$1\" forward --ckpt w --inputs i --output o --bogus 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_forward_unknown_flag_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "unknown argument '--bogus'.*exit=2")

add_test(NAME cli_forward_missing_ckpt_exits_1
  COMMAND sh -c "\"$1\" forward --ckpt /nonexistent/w.safetensors --inputs i --output o 2>&1; echo exit=$?"
          sh ${DIGCL_BIN})
set_tests_properties(cli_forward_missing_ckpt_exits_1 PROPERTIES PASS_REGULAR_EXPRESSION
  "/nonexistent/w.safetensors: cannot open.*exit=1")
