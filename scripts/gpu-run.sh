#!/usr/bin/env bash
# Runs the correctness tests and benchmarks on the GPU machine, from the
# checkout root, after `source .gpu/env.sh` (the GPU machine's runtime libraries, kept outside git).
# Usage: scripts/gpu-run.sh [BUILD_DIR] [OUT_DIR] [tests|bench-ops|bench-model|bench-gla|all]...
# Logs go to OUT_DIR; a short summary is printed last.
set -uo pipefail
build=${1:-build}; out=${2:-/tmp/digcl-gpu}; shift 2 || true
steps=${*:-all}
mkdir -p "$out"
export DIGCL_DEVICE=${DIGCL_DEVICE:-NVIDIA}
export DIGCL_CACHE_DIR=${DIGCL_CACHE_DIR:-/tmp/digcl-kernel-cache}
summary=()

want() { [[ " $steps " == *" $1 "* || " $steps " == *" all "* ]]; }

if want tests; then
  for t in "$build"/tests/test_*; do
    name=$(basename "$t")
    if "$t" > "$out/$name.log" 2>&1; then summary+=("PASS $name"); else summary+=("FAIL $name (see $name.log)"); fi
  done
fi
if want bench-ops; then "$build/bin/digcl" bench ops > "$out/bench_ops.txt" 2>&1; summary+=("bench ops: rc $?"); fi
if want bench-gla; then "$build/bin/digcl" bench gla > "$out/bench_gla.txt" 2>&1; summary+=("bench gla: rc $?"); fi
if want bench-model; then
  run_model() { # name batch size tag
    "$build/bin/digcl" bench model --model "$1" --batch "$2" --image-size "$3" >> "$out/bench_model.txt" 2>&1
    DIGCL_PROFILE=1 "$build/bin/digcl" bench model --model "$1" --batch "$2" --image-size "$3" --only fwd+bwd \
      --repeats 3 > "$out/profile_$4.txt" 2>&1
  }
  run_model DiG-S/2 32 256 dig_s2_b32_256
  run_model DiT-S/2 32 256 dit_s2_b32_256
  run_model DiG-S/2 1 1792 dig_s2_b1_1792
  summary+=("bench model: done")
fi
printf '%s\n' "${summary[@]}"
