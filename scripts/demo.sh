#!/usr/bin/env bash
# `make demo`: trains a small DiG on Fashion-MNIST (Debian's dataset-fashion-mnist) on the
# default OpenCL device for DEMO_MINUTES, then samples a 10x10 grid (one row per class, class
# names in the caption) with classifier-free guidance, and says where samples.png and loss.png
# are. The recipe (docs/TRAINING.md, "The demo recipe") depends on whether the device is a GPU or
# a CPU; every part can be overridden:
#   DEMO_MINUTES (5)  DEMO_DIR (demo)  DEMO_DATA (fashion-mnist, or idx:DIR holding the IDX files)
#   DEMO_MODEL_FLAGS  DEMO_TRAIN_FLAGS  DEMO_SAMPLE_FLAGS
#   DEMO_QUALITY=1    also run tools/fmnist_quality.py on the samples (needs /usr/bin/python3
#                     with torch; trains its classifier once, a few minutes on a CPU)
set -euo pipefail

BIN="${BUILD_DIR:-build}/bin/digcl"
OUT="${DEMO_DIR:-demo}"
MINUTES="${DEMO_MINUTES:-5}"

device=$("$BIN" devices 2>/dev/null | grep -m1 '^\*' | sed 's/^\* *//') || true
if [ -z "$device" ]; then
  echo "demo: no OpenCL device (see \`$BIN devices\`)" >&2
  exit 1
fi
case "$device" in
  *"[CPU]"*)
    kind=CPU
    model_flags="--depth 4 --hidden-size 64 --num-heads 1 --patch-size 4"
    train_flags="--global-batch-size 32 --lr 3e-3 --grad-clip 1 --ema-decay 0.99 --log-every 50"
    sample_flags="--sampler dpm++2m --steps 20 --cfg-scale 5 --batch 50 --weights model"
    ;;
  *)
    kind=GPU
    model_flags="--depth 8 --hidden-size 256 --num-heads 4 --patch-size 4"
    train_flags="--global-batch-size 128 --lr 5e-4 --grad-clip 1 --ema-decay 0.999 --log-every 500"
    sample_flags="--sampler dpm++2m --steps 25 --cfg-scale 3 --batch 100"
    ;;
esac
model_flags="${DEMO_MODEL_FLAGS:-$model_flags}"
train_flags="${DEMO_TRAIN_FLAGS:-$train_flags}"
sample_flags="${DEMO_SAMPLE_FLAGS:-$sample_flags}"

echo "demo: training DiG ($model_flags) on Fashion-MNIST for $MINUTES min on $device"
if [ "$kind" = CPU ]; then
  echo "demo: a CPU trains about 1,700 small steps in 5 minutes on 2 cores: expect rough garment"
  echo "      outlines and shoe/bag blobs (about 45 % class accuracy); a GPU gives clothes."
fi
mkdir -p "$OUT"
# shellcheck disable=SC2086  # the flag lists are meant to split
"$BIN" train --data "${DEMO_DATA:-fashion-mnist}" $model_flags $train_flags --time-budget "${MINUTES}m" \
  --results-dir "$OUT/results" --ckpt-every 1000000000 --keep 1

run=$(ls -d "$OUT"/results/*/ | sort | tail -n 1)
ckpt=$(ls "$run"checkpoints/*.safetensors | sort | tail -n 1)
echo "demo: sampling 100 images (one row per class) from $ckpt"
# shellcheck disable=SC2086
"$BIN" sample --ckpt "$ckpt" -n 100 --class-labels all $sample_flags \
  -o "$OUT/samples.png" --output-dir "$OUT/samples"

if [ "${DEMO_QUALITY:-0}" = 1 ]; then
  /usr/bin/python3 tools/fmnist_quality.py "$OUT/samples" --json "$OUT/quality.json"
fi
echo
echo "samples:    $OUT/samples.png"
if [ -f "${run}loss.png" ]; then
  echo "loss curve: ${run}loss.png"
else
  echo "loss curve: none yet (${run}loss.png is drawn once a log interval has passed)"
fi
echo "quality:    /usr/bin/python3 tools/fmnist_quality.py $OUT/samples   (class accuracy, Frechet distance)"
