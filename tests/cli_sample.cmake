# `digcl sample` flag checks that need no checkpoint (exit code echoed as exit=N). The runs on a
# checkpoint (outputs, metadata, batch independence, noise file, bad files) are tests/test_sample_cli.c.
set(DIGCL_SAMPLE_BIN "$<TARGET_FILE:digcl_cli>")

add_test(NAME cli_sample_help COMMAND ${DIGCL_SAMPLE_BIN} sample --help)
set_tests_properties(cli_sample_help PROPERTIES PASS_REGULAR_EXPRESSION
  "usage: digcl sample --ckpt .*--class-labels L.*--noise-file F.*--depth")

function(digcl_sample_usage_error name args expected)
  add_test(NAME ${name} COMMAND sh -c "\"$1\" sample ${args} 2>&1; echo exit=$?" sh ${DIGCL_SAMPLE_BIN})
  set_tests_properties(${name} PROPERTIES PASS_REGULAR_EXPRESSION "${expected}.*exit=2")
endfunction()

digcl_sample_usage_error(cli_sample_needs_ckpt "-n 4" "missing --ckpt W.safetensors")
digcl_sample_usage_error(cli_sample_steps_zero "--ckpt x --steps 0" "--steps expects an integer in .1, 1000.")
digcl_sample_usage_error(cli_sample_steps_above_1000 "--ckpt x --steps 1001" "--steps expects an integer in .1, 1000.")
digcl_sample_usage_error(cli_sample_cfg_not_finite "--ckpt x --cfg-scale nan" "--cfg-scale expects a number")
digcl_sample_usage_error(cli_sample_cfg_infinite "--ckpt x --cfg-scale inf" "--cfg-scale expects a number")
digcl_sample_usage_error(cli_sample_unknown_sampler "--ckpt x --sampler euler" "--sampler expects ddpm, ddim, dpm\\\\+\\\\+2m; got 'euler'")
digcl_sample_usage_error(cli_sample_unknown_cfg_channels "--ckpt x --cfg-channels two" "--cfg-channels expects auto, first3, all")
digcl_sample_usage_error(cli_sample_bad_n "--ckpt x -n 0" "-n expects an integer")
digcl_sample_usage_error(cli_sample_unknown_flag "--ckpt x --frobnicate" "unknown argument '--frobnicate'")

# A missing checkpoint file is not a usage error: exit 1, naming the file.
add_test(NAME cli_sample_missing_ckpt
  COMMAND sh -c "\"$1\" sample --ckpt /no/such/ckpt.safetensors 2>&1; echo exit=$?" sh ${DIGCL_SAMPLE_BIN})
set_tests_properties(cli_sample_missing_ckpt PROPERTIES PASS_REGULAR_EXPRESSION "/no/such/ckpt.safetensors.*exit=1")

# tools/fmnist_quality.py (sample quality): its maths and loaders, when Debian's python3 has torch.
execute_process(COMMAND /usr/bin/python3 -c "import torch, PIL"
                RESULT_VARIABLE DIGCL_QUALITY_PY_STATUS OUTPUT_QUIET ERROR_QUIET)
if(DIGCL_QUALITY_PY_STATUS EQUAL 0)
  add_test(NAME fmnist_quality_py COMMAND /usr/bin/python3 "${CMAKE_SOURCE_DIR}/tools/test_fmnist_quality.py")
  set_tests_properties(fmnist_quality_py PROPERTIES PASS_REGULAR_EXPRESSION "self-checks passed")
endif()
