# `digcl train`, `digcl export` and `digcl plot`: flags, exit codes, resume rules, kill -9 safety.
# Every training run is a tiny DiG on Fashion-MNIST (dataset-fashion-mnist) on PoCL.
# Each command's exit code is echoed as "exit=N" so the regular expression checks it.
set(DIGCL_TRAIN_TINY --data fashion-mnist --arch dig --depth 1 --hidden-size 32 --num-heads 2
    --patch-size 4 --global-batch-size 4 --workers 1)
string(REPLACE ";" " " DIGCL_TRAIN_TINY_TEXT "${DIGCL_TRAIN_TINY}")
set(DIGCL_TRAIN_WORK "${CMAKE_BINARY_DIR}/cli-train")
set(DIGCL_TRAIN_ENV "DIGCL_CACHE_DIR=${CMAKE_BINARY_DIR}/cli-kernel-cache")

add_test(NAME cli_train_help COMMAND ${DIGCL_BIN} train --help)
set_tests_properties(cli_train_help PROPERTIES PASS_REGULAR_EXPRESSION
  "usage: digcl train --data SPEC.*--time-budget.*--resume auto\\|PATH")

add_test(NAME cli_train_missing_data_exits_2
  COMMAND sh -c "\"$1\" train --model DiG-S/2 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_train_missing_data_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "missing --data SPEC.*exit=2")

add_test(NAME cli_train_bad_time_budget_exits_2
  COMMAND sh -c "\"$1\" train --data fashion-mnist --time-budget 20x 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_train_bad_time_budget_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "--time-budget expects a duration such as 90s, 20m or 1.5h, got '20x'.*exit=2")

add_test(NAME cli_train_bad_betas_exits_2
  COMMAND sh -c "\"$1\" train --data fashion-mnist --betas 0.9 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_train_bad_betas_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "--betas expects B1,B2.*exit=2")

add_test(NAME cli_train_bad_data_exits_nonzero
  COMMAND sh -c "\"$1\" train --data /no/such/folder --model DiG-S/2 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_train_bad_data_exits_nonzero PROPERTIES PASS_REGULAR_EXPRESSION
  "/no/such/folder.*exit=[12]")

# Six steps, then: the run folder, log.jsonl (elapsed_s, then train_s), config.json, loss.png;
# resume with another model refused; resume with another lr accepted with a warning; export EMA
# and model weights; `digcl plot` redraws the loss curve, refuses to overwrite log.jsonl, names a
# missing log.
add_test(NAME cli_train_run_resume_export
  COMMAND sh -c "rm -rf \"$2\" && mkdir -p \"$2\" && cd \"$2\" &&
    \"$1\" train ${DIGCL_TRAIN_TINY_TEXT} --max-steps 6 --log-every 2 --ckpt-every 3 --keep 1 --results-dir r 2>&1 &&
    ls r/000-custom/checkpoints r/000-custom && head -n 1 r/000-custom/log.jsonl &&
    \"$1\" train ${DIGCL_TRAIN_TINY_TEXT} --depth 2 --resume auto --max-steps 8 --results-dir r 2>&1;
    echo exit=$?;
    \"$1\" train ${DIGCL_TRAIN_TINY_TEXT} --lr 2e-4 --resume auto --max-steps 8 --results-dir r 2>&1; echo exit=$?;
    \"$1\" export r/000-custom/checkpoints/0000008.safetensors ema.safetensors 2>&1; echo exit=$?;
    \"$1\" export r/000-custom/checkpoints/0000008.safetensors r/000-custom/checkpoints/0000008.safetensors 2>&1;
    echo exit=$?;
    \"$1\" export ema.safetensors x.safetensors 2>&1; echo exit=$?;
    \"$1\" plot r/000-custom -o p.png 2>&1; echo exit=$?; head -c 4 p.png | tail -c 3; echo;
    \"$1\" plot r/000-custom -o r/000-custom/log.jsonl 2>&1; echo exit=$?;
    \"$1\" plot r/000-custom/checkpoints 2>&1; echo exit=$?"
  sh ${DIGCL_BIN} "${DIGCL_TRAIN_WORK}/run")
set_tests_properties(cli_train_run_resume_export PROPERTIES ENVIRONMENT "${DIGCL_TRAIN_ENV}" TIMEOUT 600
  PASS_REGULAR_EXPRESSION
  "run folder r/000-custom.*step 6: saved r/000-custom/checkpoints/0000006.safetensors.*config.json.*log.jsonl.*loss.png.*0000006.safetensors.*\\{\"step\":2,\"epoch\":0,\"loss\":.*\"elapsed_s\":[-+.0-9e]+,\"train_s\":[-+.0-9e]+\\}.*cannot resume: the checkpoint's model is.*exit=2.*warning: resuming with changed settings: lr 0.0001 -> 0.0002.*resuming r/000-custom/checkpoints/0000006.safetensors at step 6.*done after 8 steps.*exit=0.*wrote the ema weights.*exit=0.*is the checkpoint itself.*exit=2.*not a digcl training checkpoint.*exit=1.*wrote p.png.*exit=0.*PNG.*refusing to overwrite an input.*exit=2.*checkpoints/log.jsonl: cannot read.*exit=1")

# A non-finite loss stops with the step and the value, keeps the last good checkpoint, exits 1.
add_test(NAME cli_train_nonfinite_exits_1
  COMMAND sh -c "rm -rf \"$2\" && \"$1\" train ${DIGCL_TRAIN_TINY_TEXT} --lr 1e30 --max-steps 30 --log-every 1 --ckpt-every 1 --results-dir \"$2\" 2>&1; echo exit=$?"
  sh ${DIGCL_BIN} "${DIGCL_TRAIN_WORK}/nonfinite")
set_tests_properties(cli_train_nonfinite_exits_1 PROPERTIES ENVIRONMENT "${DIGCL_TRAIN_ENV}" TIMEOUT 600
  PASS_REGULAR_EXPRESSION "step [0-9]+: (loss|mse|vb|the gradient norm) is (NaN|\\+Inf|-Inf). training stopped, the last good checkpoint is .*0000[0-9]+.safetensors.*exit=1")

add_test(NAME cli_train_kill9_never_half_written
  COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/cli_train_kill.sh" ${DIGCL_BIN} "${DIGCL_TRAIN_WORK}/kill")
set_tests_properties(cli_train_kill9_never_half_written PROPERTIES ENVIRONMENT "${DIGCL_TRAIN_ENV}" TIMEOUT 900
  PASS_REGULAR_EXPRESSION "kill -9 test passed" FAIL_REGULAR_EXPRESSION "FAIL:")
