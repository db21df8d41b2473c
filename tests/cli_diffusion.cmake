# `digcl loss`: exit codes and messages (the numbers are checked by test_diffusion_golden and,
# with python3-torch, by diffusion_loss_vs_reference in tests/reference).
set(DIGCL_BIN "$<TARGET_FILE:digcl_cli>") # also set by cli_tests.cmake, which may come later
set(DIGCL_DIFFUSION_FIXTURES "${CMAKE_CURRENT_SOURCE_DIR}/reference/fixtures_committed")

add_test(NAME cli_loss_help COMMAND ${DIGCL_BIN} loss --help)
set_tests_properties(cli_loss_help PROPERTIES PASS_REGULAR_EXPRESSION "usage: digcl loss .*noise +F32")

add_test(NAME cli_loss_writes_terms_and_gradients
  COMMAND sh -c "\"$1\" loss --ckpt \"$2/dig_a_16x16/weights.safetensors\" --inputs \"$2/diffusion_loss_dig_a_16x16/inputs.safetensors\" --output \"$3\" 2>&1; echo exit=$?; grep -c 'grad.final_layer.linear.weight' \"$3\"; grep -c '\"vb\"' \"$3\""
          sh ${DIGCL_BIN} ${DIGCL_DIFFUSION_FIXTURES} "${CMAKE_BINARY_DIR}/cli-loss-out.safetensors")
set_tests_properties(cli_loss_writes_terms_and_gradients PROPERTIES PASS_REGULAR_EXPRESSION "exit=0\n1\n1")

add_test(NAME cli_loss_refuses_to_overwrite_inputs
  COMMAND sh -c "cp \"$2/diffusion_loss_dig_a_16x16/inputs.safetensors\" \"$3\" && \"$1\" loss --ckpt \"$2/dig_a_16x16/weights.safetensors\" --inputs \"$3\" --output \"$3\" 2>&1; echo exit=$?"
          sh ${DIGCL_BIN} ${DIGCL_DIFFUSION_FIXTURES} "${CMAKE_BINARY_DIR}/cli-loss-inputs.safetensors")
set_tests_properties(cli_loss_refuses_to_overwrite_inputs PROPERTIES
  PASS_REGULAR_EXPRESSION "is the --inputs file; refusing to overwrite an input.*exit=2")

add_test(NAME cli_loss_missing_noise
  COMMAND sh -c "\"$1\" loss --ckpt \"$2/dig_a_16x16/weights.safetensors\" --inputs \"$2/dig_a_16x16/inputs.safetensors\" --output \"$3\" 2>&1; echo exit=$?"
          sh ${DIGCL_BIN} ${DIGCL_DIFFUSION_FIXTURES} "${CMAKE_BINARY_DIR}/cli-loss-bad.safetensors")
set_tests_properties(cli_loss_missing_noise PROPERTIES PASS_REGULAR_EXPRESSION "unexpected tensor 'dout'.*exit=1")

add_test(NAME cli_loss_missing_flag COMMAND sh -c "\"$1\" loss --inputs a.safetensors 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_loss_missing_flag PROPERTIES PASS_REGULAR_EXPRESSION "missing --ckpt.*exit=2")

# `digcl bench sample` on a tiny custom model: both default samplers report images/s.
add_test(NAME cli_bench_sample_tiny
  COMMAND sh -c "\"$1\" bench sample --depth 4 --hidden-size 64 --num-heads 2 --num-classes 10 --image-size 64 -n 2 --steps 3 --dpm-steps 2 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_bench_sample_tiny PROPERTIES
  PASS_REGULAR_EXPRESSION "custom +ddpm +3 steps +cfg 4 +N +2 \\(batch +4\\).*img/s.*custom +dpm\\+\\+2m +2 steps.*img/s.*exit=0")
