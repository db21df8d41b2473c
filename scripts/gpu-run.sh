#!/usr/bin/env bash
# Runs the correctness tests and benchmarks on the GPU machine, from the
# checkout root, after `source .gpu/env.sh` (the GPU machine's runtime libraries, kept outside git).
# Usage: scripts/gpu-run.sh [BUILD_DIR] [OUT_DIR] [tests|bench-ops|bench-model|bench-gla|gemm-variants|all]...
# gemm-variants (NVIDIA sm_80+ only, not part of all): the tensor-core kernel's variants
# (DIGCL_GEMM_PREFETCH, DIGCL_GEMM_LDMATRIX, DIGCL_GEMM_ASYNC), each checked by test_gemm before
# it is timed (4096^3 and the DiG-S/2 MLP shapes, the DiG-S/2 step, both precisions).
# attention-tc (NVIDIA sm_80+ only, not part of all): the tensor-core attention kernels
# (DIGCL_ATTENTION_FORWARD/BACKWARD=tensor) checked by test_attention and test_model_golden,
# then timed against the SIMT ones (bench ops attention rows, DiT-S/2 at 1792 px).
# vae, sample, report, sweep-xl (not part of all): `bench vae` with a per-kernel profile of the
# KL VAE; `bench sample` in both precisions; `bench report --json OUT_DIR/report.json`; the
# DiG-XL/2 against DiT-XL/2 sweep at 1024 and 2048 px (OUT_DIR/sweep-xl2.json, .png).
# Logs go to OUT_DIR; a short summary is printed last.
set -uo pipefail
build=${1:-build}; out=${2:-/tmp/digcl-gpu}; shift 2 || true
steps=${*:-all}
mkdir -p "$out"
export DIGCL_DEVICE=${DIGCL_DEVICE:-NVIDIA}
export DIGCL_CACHE_DIR=${DIGCL_CACHE_DIR:-/tmp/digcl-kernel-cache}
summary=()
add() { summary+=("$1"); echo "$1" >> "$out/summary.txt"; } # also on disk, for a run cut short

want() { [[ " $steps " == *" $1 "* || " $steps " == *" all "* ]]; }

if want tests; then
  for t in "$build"/tests/test_*; do
    name=$(basename "$t")
    if "$t" > "$out/$name.log" 2>&1; then add "PASS $name"; else add "FAIL $name (see $name.log)"; fi
  done
fi
if want bench-ops; then "$build/bin/digcl" bench ops > "$out/bench_ops.txt" 2>&1; add "bench ops: rc $?"; fi
if want bench-gla; then "$build/bin/digcl" bench gla > "$out/bench_gla.txt" 2>&1; add "bench gla: rc $?"; fi
if want bench-model; then
  run_model() { # name batch size tag
    "$build/bin/digcl" bench model --model "$1" --batch "$2" --image-size "$3" >> "$out/bench_model.txt" 2>&1
    DIGCL_PROFILE=1 "$build/bin/digcl" bench model --model "$1" --batch "$2" --image-size "$3" --only fwd+bwd \
      --repeats 3 > "$out/profile_$4.txt" 2>&1
  }
  run_model DiG-S/2 32 256 dig_s2_b32_256
  run_model DiT-S/2 32 256 dit_s2_b32_256
  run_model DiG-S/2 1 1792 dig_s2_b1_1792
  add "bench model: done"
fi
if [[ " $steps " == *" gemm-variants "* ]]; then
  for variant in "1 0 0" "1 1 0" "1 0 1" "1 1 1"; do
    read -r prefetch ldmatrix async <<< "$variant"
    export DIGCL_GEMM_PREFETCH=$prefetch DIGCL_GEMM_LDMATRIX=$ldmatrix DIGCL_GEMM_ASYNC=$async
    tag="prefetch $prefetch ldmatrix $ldmatrix async $async"
    if ! "$build/tests/test_gemm" > "$out/test_gemm_p${prefetch}_l${ldmatrix}_a${async}.log" 2>&1; then
      add "FAIL test_gemm with $tag"; continue
    fi
    for precision in fp32 tf32; do
      for shape in "--size 4096" "--shape 8192,1536,384,0,1" "--shape 8192,384,1536,0,1"; do
        line=$("$build/bin/digcl" --precision $precision bench gemm $shape --seconds 1 | grep -E 'SGEMM 4096|(auto)' | head -n 1)
        add "$tag $precision $shape: ${line#*each, }"
      done
      line=$("$build/bin/digcl" --precision $precision bench model --model DiG-S/2 --batch 32 --image-size 256 --only step | tail -n 1)
      add "$tag DiG-S/2 step $precision: $(echo "$line" | grep -oE '[0-9.]+ ms +[0-9.]+ img/s')"
    done
  done
  unset DIGCL_GEMM_PREFETCH DIGCL_GEMM_LDMATRIX DIGCL_GEMM_ASYNC
fi
if [[ " $steps " == *" attention-tc "* ]]; then
  export DIGCL_ATTENTION_FORWARD=tensor DIGCL_ATTENTION_BACKWARD=tensor
  for t in test_attention test_model_golden; do
    if "$build/tests/$t" > "$out/${t}_tc.log" 2>&1; then add "PASS $t with the tensor-core kernels"
    else add "FAIL $t with the tensor-core kernels (see ${t}_tc.log)"; fi
  done
  for path in simt tensor; do
    export DIGCL_ATTENTION_FORWARD=$path DIGCL_ATTENTION_BACKWARD=$path
    for precision in fp32 tf32; do
      "$build/bin/digcl" --precision $precision bench ops 2>&1 | grep 'attention' > "$out/attention_${path}_${precision}.txt"
      add "attention $path $precision: $(tr -s ' ' < "$out/attention_${path}_${precision}.txt" | tr '\n' ';')"
      for only in forward fwd+bwd; do
        line=$("$build/bin/digcl" --precision $precision bench model --model DiT-S/2 --batch 1 --image-size 1792 --only $only | tail -n 1)
        add "DiT-S/2 1792 $only $path $precision: $(echo "$line" | grep -oE '[0-9.]+ ms')"
      done
      line=$("$build/bin/digcl" --precision $precision bench model --model DiT-S/2 --batch 32 --image-size 256 --only step | tail -n 1)
      add "DiT-S/2 b32 256 step $path $precision: $(echo "$line" | grep -oE '[0-9.]+ ms')"
      line=$("$build/bin/digcl" --precision $precision bench model --model DiT-XL/2 --batch 1 --image-size 1024 --only forward --repeats 3 | tail -n 1)
      add "DiT-XL/2 1024 forward $path $precision: $(echo "$line" | grep -oE '[0-9.]+ ms')"
    done
  done
  unset DIGCL_ATTENTION_FORWARD DIGCL_ATTENTION_BACKWARD
fi
if [[ " $steps " == *" vae "* ]]; then
  "$build/bin/digcl" bench vae > "$out/bench_vae.txt" 2>&1; add "bench vae: rc $?"
  DIGCL_PROFILE=1 "$build/bin/digcl" bench vae --only kl-f8 --repeats 1 > "$out/profile_vae.txt" 2>&1
fi
if [[ " $steps " == *" sample "* ]]; then
  for precision in fp32 tf32; do
    "$build/bin/digcl" --precision $precision bench sample > "$out/bench_sample_$precision.txt" 2>&1
    add "bench sample $precision: rc $?"
  done
fi
if [[ " $steps " == *" report "* ]]; then
  "$build/bin/digcl" bench report --json "$out/report.json" > "$out/bench_report.txt" 2>&1
  add "bench report: rc $?"
fi
if [[ " $steps " == *" sweep-xl "* ]]; then
  "$build/bin/digcl" bench sweep --models DiG-XL/2,DiT-XL/2 --resolutions 1024,2048 --repeats 2 \
    --json "$out/sweep-xl2.json" --plot "$out/sweep-xl2.png" > "$out/sweep_xl2.txt" 2>&1
  add "bench sweep XL/2: rc $?"
fi
printf '%s\n' "${summary[@]}"
