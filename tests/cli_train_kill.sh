#!/bin/sh
# kill -9 at several moments of a `digcl train` run: every time, `--resume auto`
# continues from a complete checkpoint (never a half-written file), at most
# --ckpt-every steps behind the last logged step, and the run finishes.
# usage: cli_train_kill.sh DIGCL WORKDIR
set -u
digcl=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
results="$work/results"
flags="--data fashion-mnist --arch dig --depth 1 --hidden-size 32 --num-heads 2 --patch-size 4
       --global-batch-size 4 --log-every 1 --ckpt-every 2 --results-dir $results --workers 1"
fail() { echo "FAIL: $*"; exit 1; }

last_logged() { # the step of the last complete log line, 0 if none
    tail -n 2 "$results"/*/log.jsonl 2>/dev/null | grep '^{.*}$' | tail -n 1 |
        sed 's/^{"step":\([0-9]*\),.*/\1/' | grep . || echo 0
}

for delay in 0.3 1.1 1.7 2.6; do
    # shellcheck disable=SC2086
    "$digcl" train $flags --resume auto --max-steps 400 >"$work/out.txt" 2>&1 &
    pid=$!
    # wait until this round trains (a new log line), then a little more
    before=$(last_logged)
    tries=0
    while [ "$(last_logged)" -le "$before" ] && [ $tries -lt 600 ]; do
        tries=$((tries + 1)); sleep 0.1
    done
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    logged=$(last_logged)
    # shellcheck disable=SC2086
    "$digcl" train $flags --resume auto --max-steps 1 >"$work/resume.txt" 2>&1 || {
        cat "$work/resume.txt"; fail "resume after kill at +${delay}s failed"; }
    step=$(sed -n 's/.*resuming .* at step \([0-9]*\).*/\1/p' "$work/resume.txt")
    [ -n "$step" ] || { cat "$work/resume.txt"; fail "no checkpoint resumed after kill at +${delay}s"; }
    [ "$step" -ge $((logged - 2)) ] || fail "resumed at step $step, but step $logged was logged (ckpt-every 2)"
    ckpt=$(ls "$results"/*/checkpoints/*.safetensors | tail -n 1)
    "$digcl" export "$ckpt" "$work/ema.safetensors" >/dev/null 2>&1 || fail "newest checkpoint $ckpt unreadable"
    echo "kill at +${delay}s: logged step $logged, resumed at step $step from $(basename "$ckpt")"
done
# a last short run writes a checkpoint, which also clears temp files of killed writes
# shellcheck disable=SC2086
"$digcl" train $flags --resume auto --max-steps $((step + 2)) >"$work/out.txt" 2>&1 || fail "final run failed"
ls "$results"/*/checkpoints/ | grep -v '^[0-9]*\.safetensors$' && fail "stray files in checkpoints/"
[ "$(ls -d "$results"/*/ | wc -l)" -eq 1 ] || fail "resume auto started a second run folder"
echo "kill -9 test passed"
