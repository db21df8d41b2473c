#!/bin/sh
# digcl train --sample-every: the EMA grids appear at the right steps, and drawing them does not
# change training (the weights, EMA and moments after 4 steps are bytewise those of a run
# without grids; checks that the sampler and the trainer each select their own plan).
# usage: cli_train_sample.sh DIGCL WORKDIR
set -eu
bin=$1 work=$2
[ -n "$bin" ] && [ -n "$work" ] || { echo "usage: $0 DIGCL WORKDIR" >&2; exit 2; }
rm -rf "$work" && mkdir -p "$work"
tiny="--data fashion-mnist --depth 4 --hidden-size 32 --num-heads 2 --patch-size 4 --global-batch-size 4
      --workers 1 --max-steps 4 --log-every 2 --ckpt-every 4"
# shellcheck disable=SC2086
"$bin" train $tiny --results-dir "$work/plain" >"$work/plain.log" 2>&1
# shellcheck disable=SC2086
"$bin" train $tiny --results-dir "$work/grids" --sample-every 2 --sample-per-class 2 --sample-steps 3 \
  >"$work/grids.log" 2>&1
for step in 0000002 0000004; do
  [ -s "$work/grids/000-custom/samples/$step.png" ] || { echo "no grid for step $step"; cat "$work/grids.log"; exit 1; }
done
[ ! -e "$work/plain/000-custom/samples" ] || { echo "samples/ without --sample-every"; exit 1; }
grep -q "step 4: EMA samples in" "$work/grids.log" || { echo "no sample line"; cat "$work/grids.log"; exit 1; }
for w in model ema; do
  "$bin" export "$work/plain/000-custom/checkpoints/0000004.safetensors" "$work/plain-$w.st" --weights "$w" >/dev/null
  "$bin" export "$work/grids/000-custom/checkpoints/0000004.safetensors" "$work/grids-$w.st" --weights "$w" >/dev/null
  cmp "$work/plain-$w.st" "$work/grids-$w.st" || { echo "--sample-every changed the $w weights"; exit 1; }
done
echo "sample-every grids written, training unchanged"
