#!/bin/sh
# `digcl encode` and `digcl train --vae` with the committed reduced-width KL VAE on a folder of
# five committed images (two classes) at 32 px:
#   1. an uninterrupted encode (4 shards of 3 rows) equals one killed after 2 shards (SIGKILL by
#      the DIGCL_ENCODE_TEST_KILL_AFTER hook, mid-shard, plus a stale temp file) and resumed:
#      every file byte for byte; a second run without --resume is refused; another shard size
#      is refused on resume;
#   2. the data layer reads the shard set: a training run on latents:OUT starts;
#   3. train --vae: four steps, finite loss, and 2 + resume 2 equals 4 bit for bit (but for
#      train.state's training seconds);
#   4. sample --vae: that model's samples decoded through the same (store-based) KL VAE.
# usage: cli_vae_encode.sh DIGCL SOURCE_DIR WORKDIR
set -u
digcl=$1
src=$2
work=$3
vae="$src/tests/reference/fixtures_committed/vae/kl/weights.safetensors"
crop="$src/tests/reference/crop"
fail() { echo "FAIL: $*"; exit 1; }
# Two safetensors files hold the same bytes but for train.state's "train_seconds" (a clock):
# the header (its length first, then JSON padded with spaces) without it, then the tensor data.
same_but_clock() {
    k=0
    for f in "$1" "$2"; do
        k=$((k + 1))
        n=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
        head -c $((8 + n)) "$f" | tail -c "$n" >"$work/clock-$k.json"
        grep -q 'train_seconds\\":[0-9]' "$work/clock-$k.json" || { echo "$f: no train_seconds"; return 1; }
        sed 's/,\\"train_seconds\\":[-+.0-9eE]*//; s/ *$//' "$work/clock-$k.json" >"$work/clock-$k.header"
        tail -c +$((9 + n)) "$f" >"$work/clock-$k.data"
    done
    cmp "$work/clock-1.header" "$work/clock-2.header" && cmp "$work/clock-1.data" "$work/clock-2.data"
}
rm -rf "$work"
mkdir -p "$work/img/cat" "$work/img/dog" "$work/a" "$work/b" "$work/x" "$work/y"
cp "$crop/photo_150x150.png" "$crop/odd_67x45.png" "$crop/cmyk_64x48.jpg" "$work/img/cat/"
cp "$crop/photo_257x193.jpg" "$crop/palette_70x50.png" "$work/img/dog/"
enc="encode --vae $vae --data $work/img --image-size 32 --shard-size 3"

# shellcheck disable=SC2086
"$digcl" $enc -q -o "$work/a/latents.safetensors" || fail "uninterrupted encode"
# shellcheck disable=SC2086
DIGCL_ENCODE_TEST_KILL_AFTER=2 "$digcl" $enc -q -o "$work/b/latents.safetensors"
rc=$?
[ $rc -eq 137 ] || fail "the kill hook did not kill the encode (exit $rc)"
[ -e "$work/b/latents.safetensors" ] && fail "the index exists after the kill"
[ "$(ls "$work/b/latents.shards" | tr '\n' ' ')" = "000000.safetensors 000001.safetensors " ] ||
    fail "after the kill: $(ls "$work/b/latents.shards")"
: >"$work/b/latents.shards/000002.safetensors.tmp.AbC123" # a write the kill interrupted
# shellcheck disable=SC2086
"$digcl" $enc -o "$work/b/latents.safetensors" 2>"$work/err.txt"
rc=$?
[ $rc -eq 2 ] && grep -q "pass --resume" "$work/err.txt" || fail "a new encode over shards: exit $rc"
# shellcheck disable=SC2086
"$digcl" encode -q --resume --vae "$vae" --data "$work/img" --image-size 32 --shard-size 4 \
    -o "$work/b/latents.safetensors" 2>"$work/err.txt"
rc=$?
[ $rc -eq 2 ] && grep -q "written by another encode" "$work/err.txt" ||
    fail "resume with another shard size: exit $rc"
# shellcheck disable=SC2086
"$digcl" $enc --resume -o "$work/b/latents.safetensors" >"$work/resume.txt" 2>&1 ||
    { cat "$work/resume.txt"; fail "resume"; }
grep -q "resuming at shard 2 of 4 (6 rows done)" "$work/resume.txt" || fail "resumed elsewhere"
diff -r "$work/a" "$work/b" || fail "the resumed encode differs from the uninterrupted one"
echo "encode: killed after 2 of 4 shards, resumed, equal to the uninterrupted run"

tiny="--arch dig --depth 1 --hidden-size 32 --num-heads 2 --patch-size 2 --global-batch-size 2
      --workers 1 --log-every 1 --ckpt-every 2 --results-dir r"
# shellcheck disable=SC2086
(cd "$work/a" && "$digcl" train --data latents:latents.safetensors $tiny --max-steps 2) \
    >"$work/train.txt" 2>&1 || { cat "$work/train.txt"; fail "training on the shard set"; }
grep -q '"is_latent":[[:space:]]*true' "$work/a/r/000-custom/config.json" || fail "config.json: not latents"
grep -q '"count":[[:space:]]*10,' "$work/a/r/000-custom/config.json" || fail "config.json: not 10 rows"
echo "train on latents:latents.safetensors (10 rows in 4 shards): 2 steps"

flags="--data ../img --image-size 32 --vae $vae $tiny"
# shellcheck disable=SC2086
(cd "$work/x" && "$digcl" train $flags --max-steps 4) >"$work/x.txt" 2>&1 ||
    { cat "$work/x.txt"; fail "train --vae"; }
grep -q '"channels":[[:space:]]*4,' "$work/x/r/000-custom/config.json" || fail "train --vae: not 4 channels"
loss=$(sed -n 's/.*"step":4,"epoch":[0-9]*,"loss":\([-0-9.e]*\),.*/\1/p' "$work/x/r/000-custom/log.jsonl")
case "$loss" in ''|*n*|*N*) fail "train --vae: step 4 loss '$loss'";; esac
# shellcheck disable=SC2086
(cd "$work/y" && "$digcl" train $flags --max-steps 2 && "$digcl" train $flags --max-steps 4 \
    --resume auto) >"$work/y.txt" 2>&1 || { cat "$work/y.txt"; fail "train --vae resume"; }
same_but_clock "$work/x/r/000-custom/checkpoints/0000004.safetensors" \
    "$work/y/r/000-custom/checkpoints/0000004.safetensors" || fail "train --vae resume not bit-exact"
echo "train --vae: 4 steps, loss $loss; 2 + resume 2 bit-exact"

(cd "$work/x" && "$digcl" export r/000-custom/checkpoints/0000004.safetensors ema.safetensors &&
    "$digcl" sample --ckpt ema.safetensors -n 2 --steps 2 --vae "$vae" -o s.png) \
    >"$work/s.txt" 2>&1 || { cat "$work/s.txt"; fail "sample --vae"; }
grep -q "wrote s.png" "$work/s.txt" && [ -s "$work/x/s.png" ] || fail "sample --vae: no s.png"
echo "sample --vae: the trained latent model's samples decoded to s.png"
echo "vae encode test passed"
