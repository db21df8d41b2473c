# --attention tiled|naive (DiT softmax attention, docs/MODEL.md "DiT attention modes"):
# `digcl info` reports the mode and the larger memory of the materialised [N, H, T, T]
# probabilities; DiG and U-DiG refuse it naming the flag; forward, bench and train take
# it; a checkpoint trained in one mode resumes in the other.
# Each command's exit code is echoed as "exit=N" so the regular expression checks it.
set(DIGCL_BIN "$<TARGET_FILE:digcl_cli>") # this file is included before cli_tests.cmake

add_test(NAME cli_attention_info_help COMMAND ${DIGCL_BIN} info --help)
set_tests_properties(cli_attention_info_help PROPERTIES PASS_REGULAR_EXPRESSION
  "--attention tiled\\|naive")

# DiT-S/2, 256 px, batch 8: T = 256, H = 6, so one [N, H, T, T] buffer is 12 MiB. Naive adds
# one shared buffer when sampling and 12 blocks + one dP scratch (156 MiB, less the tiled
# path's 0.6 MiB of logsumexp) when training. The awk line prints the two differences and
# fails unless they are those.
add_test(NAME cli_attention_info_memory
  COMMAND sh -c "
    ${DIGCL_INFO_ACTIVATION_MIB}
    \"$1\" info --model DiT-S/2 --batch 8 --attention naive 2>&1 | grep '^attention' &&
    tiled=$(\"$1\" info --model DiT-S/2 --batch 8 | mib) &&
    naive=$(\"$1\" info --model DiT-S/2 --batch 8 --attention naive | mib) &&
    echo \"$tiled $naive\" | awk '{ ds = $3 - $1; dt = $4 - $2; printf \"naive - tiled: sampling %.1f MiB, training %.1f MiB\\n\", ds, dt; exit !(ds > 11.9 && ds < 12.1 && dt > 155 && dt < 156) }';
    echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_attention_info_memory PROPERTIES PASS_REGULAR_EXPRESSION
  "attention +naive \\(\\[N, H, T, T\\] probabilities.*naive - tiled: sampling 12.0 MiB, training 155.[0-9] MiB\nexit=0")

add_test(NAME cli_attention_info_tiled_default
  COMMAND sh -c "\"$1\" info --model DiT-S/2 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_attention_info_tiled_default PROPERTIES PASS_REGULAR_EXPRESSION
  "attention +tiled \\(O\\(T\\)-memory.*exit=0")

add_test(NAME cli_attention_naive_dig_exits_2
  COMMAND sh -c "\"$1\" info --model DiG-S/2 --attention naive 2>&1; echo exit=$?;
    \"$1\" info --model U-DiG-S --attention naive 2>&1; echo exit=$?;
    \"$1\" info --model DiT-S/2 --attention flash 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_attention_naive_dig_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "digcl info: --attention naive needs a DiT model, but this one is DiG .*exit=2\n.*--attention naive needs a DiT model, but this one is U-DiG .*exit=2\n.*--attention expects tiled or naive, got 'flash'\nexit=2")

# `digcl forward` on the committed DiT fixture (numerics: test_model_golden).
add_test(NAME cli_attention_forward_fixture
  COMMAND sh -c "out=\"$3/dit_naive_forward_out.safetensors\"; rm -f \"$out\"; \"$1\" forward --attention naive --ckpt \"$2/weights.safetensors\" --inputs \"$2/inputs.safetensors\" --output \"$out\" 2>&1 && grep -a -o '\"out\":{[^}]*}' \"$out\"; echo exit=$?"
  sh ${DIGCL_BIN} "${CMAKE_CURRENT_SOURCE_DIR}/reference/fixtures_committed/dit_d_16x16" "${CMAKE_BINARY_DIR}")
set_tests_properties(cli_attention_forward_fixture PROPERTIES PASS_REGULAR_EXPRESSION
  "\"out\":\\{\"dtype\":\"F32\",\"shape\":\\[2,8,16,16\\].*exit=0")

add_test(NAME cli_attention_bench_model
  COMMAND sh -c "\"$1\" bench model --arch dit --depth 2 --hidden-size 32 --num-heads 2 --image-size 64 --batch 2 --repeats 1 --warmup 0 --only fwd+bwd --attention naive 2>&1; echo exit=$?"
  sh ${DIGCL_BIN})
set_tests_properties(cli_attention_bench_model PROPERTIES PASS_REGULAR_EXPRESSION "fwd\\+bwd .*exit=0")

# Three naive steps on a tiny DiT, then a tiled resume (not refused: dig.config has no
# attention mode), and naive refused for a DiG run.
set(DIGCL_ATTENTION_TRAIN --data fashion-mnist --arch dit --depth 1 --hidden-size 32 --num-heads 2
    --patch-size 4 --global-batch-size 4 --workers 1 --results-dir r)
string(REPLACE ";" " " DIGCL_ATTENTION_TRAIN_TEXT "${DIGCL_ATTENTION_TRAIN}")
add_test(NAME cli_attention_train_resume_other_mode
  COMMAND sh -c "rm -rf \"$2\" && mkdir -p \"$2\" && cd \"$2\" &&
    \"$1\" train ${DIGCL_ATTENTION_TRAIN_TEXT} --attention naive --max-steps 3 --ckpt-every 3 2>&1 &&
    grep -o '\"attention\":[^,]*' r/000-custom/config.json &&
    \"$1\" train ${DIGCL_ATTENTION_TRAIN_TEXT} --resume auto --max-steps 4 2>&1; echo exit=$?;
    \"$1\" train --data fashion-mnist --model DiG-S/2 --attention naive 2>&1; echo exit=$?"
  sh ${DIGCL_BIN} "${CMAKE_BINARY_DIR}/cli-attention-train")
set_tests_properties(cli_attention_train_resume_other_mode PROPERTIES
  ENVIRONMENT "DIGCL_CACHE_DIR=${CMAKE_BINARY_DIR}/cli-kernel-cache" TIMEOUT 600
  PASS_REGULAR_EXPRESSION
  "\"attention\":.\"naive\".*resuming r/000-custom/checkpoints/0000003.safetensors at step 3.*done after 4 steps.*exit=0\n.*digcl train: --attention naive needs a DiT model.*exit=2")

# `digcl bench sweep --attention naive`: the DiT cells' memory estimate grows by the 12
# [N, H, T, T] buffers kept for backward and the dP scratch (DiT-S/2, 256 px, batch 1: 13 x
# 1.5 MiB, less 0.07 MiB of logsumexp), so --memory-limit turns them OOM sooner.
add_test(NAME cli_attention_bench_sweep_estimate
  COMMAND sh -c "
    needs() { \"$1\" bench sweep --models DiT-S/2 --resolutions 256 --repeats 1 --only fwd+bwd --memory-limit 1 --attention $2 2>&1 | tee /dev/stderr | sed -n 's/.*(needs \\([0-9.]*\\) MiB.*/\\1/p'; }
    tiled=$(needs \"$1\" tiled) && naive=$(needs \"$1\" naive) &&
    echo \"$tiled $naive\" | awk '{ d = $2 - $1; printf \"naive - tiled: %.1f MiB\\n\", d; exit !(d > 19.3 && d < 19.6) }';
    echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_attention_bench_sweep_estimate PROPERTIES PASS_REGULAR_EXPRESSION
  "DiT attention tiled.*DiT attention naive.*naive - tiled: 19.[0-9] MiB\nexit=0")
