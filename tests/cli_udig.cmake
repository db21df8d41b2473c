# CLI checks of U-DiG (issue 15; docs/MODEL.md "U-DiG"): presets and custom sizes through the shared
# model flags, their exact counts, the config errors, `digcl forward` on a committed U-DiG
# fixture and `digcl bench model` on a U-DiG.
set(DIGCL_UDIG_BIN "$<TARGET_FILE:digcl_cli>")
set(DIGCL_UDIG_FIXTURE "${CMAKE_CURRENT_SOURCE_DIR}/reference/fixtures_committed/udig_b_8x8_d10")

add_test(NAME cli_udig_info_presets
  COMMAND sh -c "for s in S B L XL; do \"$1\" info --model U-DiG-$s 2>&1 | grep -E '^(arch|depth|patch_size|parameters)'; done; echo exit=$?"
          sh ${DIGCL_UDIG_BIN})
set_tests_properties(cli_udig_info_presets PROPERTIES PASS_REGULAR_EXPRESSION
  "arch +udig.depth +15.patch_size +1.parameters +total 44325896 .*trainable 43932680 .*depth +15.*total 175060040 .*depth +25.*total 505933896 .*depth +30.*total 751222280 .*trainable 750042632 .*exit=0")

add_test(NAME cli_udig_info_custom
  COMMAND sh -c "\"$1\" info --arch udig --depth 10 --hidden-size 64 --num-heads 2 --image-size 128 --batch 4 2>&1; echo exit=$?"
          sh ${DIGCL_UDIG_BIN})
set_tests_properties(cli_udig_info_custom PROPERTIES PASS_REGULAR_EXPRESSION
  "arch +udig.*patch_size +1.*16x16 = 256 tokens.*stages +5 x 2 blocks on grids 16, 8, 4, 8, 16.*\"arch\":\"udig\".*activations.*exit=0")

add_test(NAME cli_udig_depth_not_multiple_of_5_exits_2
  COMMAND sh -c "\"$1\" info --model U-DiG-S --depth 12 2>&1; echo exit=$?" sh ${DIGCL_UDIG_BIN})
set_tests_properties(cli_udig_depth_not_multiple_of_5_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "U-DiG depth 12 is not a multiple of 5.*exit=2")

add_test(NAME cli_udig_patch_not_1_exits_2
  COMMAND sh -c "\"$1\" info --model U-DiG-S --patch-size 2 2>&1; echo exit=$?" sh ${DIGCL_UDIG_BIN})
set_tests_properties(cli_udig_patch_not_1_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "U-DiG uses patch_size 1, got 2.*exit=2")

add_test(NAME cli_udig_image_size_not_multiple_of_32_exits_2
  COMMAND sh -c "\"$1\" info --model U-DiG-S --image-size 264 2>&1; echo exit=$?" sh ${DIGCL_UDIG_BIN})
set_tests_properties(cli_udig_image_size_not_multiple_of_32_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "input_size 33 is not a multiple of 4.*exit=2")

# The output holds results, not weights (digcl info --ckpt refuses it): its header is checked.
add_test(NAME cli_udig_forward_fixture
  COMMAND sh -c "out=\"$3/udig_forward_out.safetensors\"; rm -f \"$out\"; \"$1\" forward --ckpt \"$2/weights.safetensors\" --inputs \"$2/inputs.safetensors\" --output \"$out\" 2>&1 && grep -a -o '.\"arch.\":.\"udig.\"\\|\"out\":{[^}]*}\\|\"grad.downsample.0.weight\":{[^}]*}' \"$out\"; echo exit=$?"
          sh ${DIGCL_UDIG_BIN} ${DIGCL_UDIG_FIXTURE} ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(cli_udig_forward_fixture PROPERTIES PASS_REGULAR_EXPRESSION
  "\"arch.\":.\"udig.*\"grad.downsample.0.weight\":{\"dtype\":\"F32\",\"shape\":\\[32,128\\].*\"out\":{\"dtype\":\"F32\",\"shape\":\\[2,8,8,8\\].*exit=0")

add_test(NAME cli_udig_bench_model
  COMMAND sh -c "\"$1\" bench model --arch udig --depth 5 --hidden-size 32 --num-heads 2 --image-size 64 --batch 2 --repeats 1 2>&1; echo exit=$?"
          sh ${DIGCL_UDIG_BIN})
set_tests_properties(cli_udig_bench_model PROPERTIES PASS_REGULAR_EXPRESSION
  "forward .*fwd\\+bwd .*step .*exit=0")
