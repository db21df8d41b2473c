# --activations recompute|keep (what a training forward keeps for the backward, docs/MODEL.md
# "Activation memory"): `digcl info` reports the mode and the larger training memory of the
# kept copies; a bad value exits 2 naming the flag; train records the mode and a resume may
# change it. Numerics of both modes: test_model_golden. Each command's exit code is echoed as
# "exit=N" so the regular expression checks it.
set(DIGCL_BIN "$<TARGET_FILE:digcl_cli>") # this file is included before cli_tests.cmake

# DiG-S/2, 256 px, batch 8: 2,048 rows; each of the 12 blocks keeps x1, x2, h_mid, h_post and
# normed o [rows, 384], the log gate [rows, 192] and the SwiGLU output [rows, 1024]: 24.5 MiB
# a block, 294 MiB in all (plus alignment); sampling plans the same.
add_test(NAME cli_activations_info_memory
  COMMAND sh -c "
    ${DIGCL_INFO_ACTIVATION_MIB}
    \"$1\" info --model DiG-S/2 --batch 8 --activations keep 2>&1 | grep '^activations' &&
    lean=$(\"$1\" info --model DiG-S/2 --batch 8 | mib) &&
    kept=$(\"$1\" info --model DiG-S/2 --batch 8 --activations keep | mib) &&
    echo \"$lean $kept\" | awk '{ ds = $3 - $1; dt = $4 - $2; printf \"keep - recompute: sampling %.1f MiB, training %.1f MiB\\n\", ds, dt; exit !(ds == 0 && dt > 293.9 && dt < 294.5) }';
    echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_activations_info_memory PROPERTIES PASS_REGULAR_EXPRESSION
  "activations +keep \\(training keeps.*keep - recompute: sampling 0.0 MiB, training 294.[0-9] MiB\nexit=0")

add_test(NAME cli_activations_default_and_bad_value
  COMMAND sh -c "\"$1\" info --model DiT-S/2 2>&1 | grep '^activations'; echo exit=$?;
    \"$1\" info --model DiT-S/2 --activations all 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_activations_default_and_bad_value PROPERTIES PASS_REGULAR_EXPRESSION
  "activations +recompute \\(training recomputes.*exit=0\n.*--activations expects recompute or keep, got 'all'\nexit=2")

# Two kept steps on a tiny DiG, the mode in config.json, then a resume that recomputes.
set(DIGCL_ACTIVATIONS_TRAIN --data fashion-mnist --depth 2 --hidden-size 32 --num-heads 2
    --patch-size 4 --global-batch-size 4 --workers 1 --results-dir r)
string(REPLACE ";" " " DIGCL_ACTIVATIONS_TRAIN_TEXT "${DIGCL_ACTIVATIONS_TRAIN}")
add_test(NAME cli_activations_train_resume_other_mode
  COMMAND sh -c "rm -rf \"$2\" && mkdir -p \"$2\" && cd \"$2\" &&
    \"$1\" train ${DIGCL_ACTIVATIONS_TRAIN_TEXT} --activations keep --max-steps 2 --ckpt-every 2 2>&1 &&
    grep -o '\"activations\":[^,]*' r/000-custom/config.json &&
    \"$1\" train ${DIGCL_ACTIVATIONS_TRAIN_TEXT} --resume auto --max-steps 3 2>&1; echo exit=$?"
  sh ${DIGCL_BIN} "${CMAKE_BINARY_DIR}/cli-activations-train")
set_tests_properties(cli_activations_train_resume_other_mode PROPERTIES
  ENVIRONMENT "DIGCL_CACHE_DIR=${CMAKE_BINARY_DIR}/cli-kernel-cache" TIMEOUT 600
  PASS_REGULAR_EXPRESSION
  "\"activations\":.\"keep\".*resuming r/000-custom/checkpoints/0000002.safetensors at step 2.*done after 3 steps.*exit=0")
