#!/usr/bin/python3
"""DiG forward on the CPU: PyTorch fp32 against `digcl bench model`, side by side in one run
with the same thread count (docs/PERFORMANCE.md, "CPU: DiG-S/2 forward against PyTorch").

PyTorch side: the network of tests/reference/dig_reference.py (upstream's DiG as a function of
a parameter dict) in float32, with its per-token GLA recurrence replaced by a chunked GLA
(chunk 64, the fla default: intra-chunk scores as a masked matrix product, the state carried
from chunk to chunk), torch.no_grad, random weights (timing only), torch.set_num_threads(T).
digcl side: `digcl bench model --model M --batch B --image-size S --only forward` with
POCL_MAX_PTHREAD_COUNT=T (PoCL's worker threads; OpenBLAS follows the device's compute units).
The two alternate --rounds times; each prints the median of --repeats runs after a warm-up.

PyTorch's BLAS is OpenBLAS (pthreads), whose thread pool torch.set_num_threads does not size:
the script sets OPENBLAS_NUM_THREADS=T before importing torch unless the environment sets it.
OpenBLAS picks its kernels when loaded; --openblas-coretype NAME sets OPENBLAS_CORETYPE for both
sides (digcl restarts itself with a better one when OpenBLAS fell back to narrow kernels).

usage: /usr/bin/python3 tools/bench_dig_torch.py [--threads 2] [--model DiG-S/2] [--batch 1]
           [--image-size 256] [--repeats 10] [--rounds 3] [--digcl build/bin/digcl] [--no-digcl]
           [--openblas-coretype SkylakeX]
"""
import argparse
import ctypes
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
torch = ref = None  # imported by main, after the OpenBLAS environment is set


def import_torch(args):
    """OpenBLAS reads OPENBLAS_NUM_THREADS and OPENBLAS_CORETYPE when torch loads it."""
    global torch, ref
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    if args.openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.openblas_coretype
    import torch as torch_module
    import dig_reference as ref_module
    torch, ref = torch_module, ref_module


def openblas_core():
    """The kernels of the OpenBLAS that torch loaded (same soname), or '?'."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "?"


def gla_chunked(q, k, v, gk, chunk=64):
    """Chunkwise GLA, the same o as ref.gla_recurrence (docs/GLA.md §2): q, k, gk [N, NH, T, dk],
    v [N, NH, T, dv]. Inside a chunk A = (q e^b)(k e^-b)^T (lower triangle, diagonal included),
    o = s (q e^b) S + A v; S <- e^Gamma S + (k e^(Gamma - b))^T v."""
    n, nh, t_len, dk = q.shape
    dv = v.shape[-1]
    scale = dk ** -0.5
    pad = (-t_len) % chunk
    if pad:
        q, k, gk = (torch.nn.functional.pad(x, (0, 0, 0, pad)) for x in (q, k, gk))
        v = torch.nn.functional.pad(v, (0, 0, 0, pad))
    chunks = q.shape[2] // chunk
    shape = (n, nh, chunks, chunk)
    q, k, gk = (x.reshape(*shape, dk) for x in (q, k, gk))
    v = v.reshape(*shape, dv)
    b = gk.cumsum(-2)                      # [N, NH, NC, C, dk]
    gamma = b[..., -1:, :]                 # [N, NH, NC, 1, dk]
    q_decay = q * b.exp() * scale          # s q_t e^{b_t}
    k_grow = k * (-b).exp()                # k_j e^{-b_j}
    k_to_end = k * (gamma - b).exp()       # k_j e^{Gamma - b_j}
    mask = torch.ones(chunk, chunk, dtype=torch.bool).tril()
    scores = (q_decay @ k_grow.transpose(-1, -2)).masked_fill(~mask, 0.0)  # [.., C, C]
    out = scores @ v                       # [N, NH, NC, C, dv]
    state = q.new_zeros(n, nh, dk, dv)
    for c in range(1, chunks):
        state = gamma[:, :, c - 1].exp().transpose(-1, -2) * state + \
            k_to_end[:, :, c - 1].transpose(-1, -2) @ v[:, :, c - 1]
        out[:, :, c] += q_decay[:, :, c] @ state
    return out.reshape(n, nh, chunks * chunk, dv)[:, :, :t_len]


def check_gla():
    """The chunked GLA against the recurrence in float64, T not a multiple of the chunk."""
    gen = torch.Generator().manual_seed(0)
    q, k, g = (torch.randn(2, 3, 150, 8, dtype=torch.float64, generator=gen) for _ in range(3))
    v = torch.randn(2, 3, 150, 16, dtype=torch.float64, generator=gen)
    g = torch.nn.functional.logsigmoid(g) / 16
    want = ref.gla_recurrence(q, k, v, g)
    got = gla_chunked(q, k, v, g)
    err = ((got - want).norm() / want.norm()).item()
    if err > 1e-10:
        sys.exit("bench_dig_torch: chunked GLA differs from the recurrence (rel L2 %.2e)" % err)


def torch_forward_ms(cfg, batch, repeats):
    gen = torch.Generator().manual_seed(1)
    params = {name: torch.randn(shape, generator=gen) * 0.02
              for name, shape, _ in ref.param_shapes(cfg)}
    params["pos_embed"] = ref.sincos_pos_embed(cfg["hidden_size"], ref.derived(cfg)["grid"]) \
        .unsqueeze(0).float()
    size = cfg["input_size"]
    x = torch.randn(batch, cfg["in_channels"], size, size, generator=gen)
    t = torch.randint(0, 1000, (batch,), generator=gen)
    y = torch.randint(0, cfg["num_classes"], (batch,), generator=gen)
    with torch.no_grad():
        ref.forward(params, x, t, y, cfg)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            ref.forward(params, x, t, y, cfg)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def digcl_forward_ms(args):
    env = dict(os.environ, POCL_MAX_PTHREAD_COUNT=str(args.threads))
    env.pop("OPENBLAS_NUM_THREADS", None)  # digcl sizes OpenBLAS to the device
    command = [args.digcl, "bench", "model", "--model", args.model, "--batch", str(args.batch),
               "--image-size", str(args.image_size), "--only", "forward",
               "--repeats", str(args.repeats)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"^forward .*?([0-9.]+) ms", result.stdout, re.M)
    if result.returncode != 0 or not match:
        sys.exit("bench_dig_torch: %s failed:\n%s%s" % (" ".join(command), result.stdout,
                                                         result.stderr))
    device = re.search(r"^device: (.*)$", result.stdout, re.M)
    return float(match.group(1)), device.group(1) if device else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="DiG-S/2")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--digcl", default=os.path.join(HERE, "..", "build", "bin", "digcl"))
    ap.add_argument("--no-digcl", action="store_true")
    ap.add_argument("--openblas-coretype", default=None)
    args = ap.parse_args()
    if args.image_size % 8:
        sys.exit("bench_dig_torch: --image-size must be a multiple of 8 (latent = size / 8)")
    import_torch(args)
    torch.set_num_threads(args.threads)
    ref.DTYPE = torch.float32
    ref.gla_recurrence_exact = ref.gla_recurrence
    check_gla()
    ref.gla_recurrence = gla_chunked
    cfg = ref.preset(args.model)
    cfg["input_size"] = args.image_size // 8
    print("torch %s, %d threads (torch.get_num_threads %d; OpenBLAS %s threads, %s kernels), "
          "fp32, chunked GLA (C = 64)"
          % (torch.__version__, args.threads, torch.get_num_threads(),
             os.environ["OPENBLAS_NUM_THREADS"], openblas_core()))
    torch_ms, digcl_ms = [], []
    for r in range(args.rounds):
        torch_ms.append(torch_forward_ms(cfg, args.batch, args.repeats))
        line = "round %d: PyTorch %.1f ms" % (r + 1, torch_ms[-1])
        if not args.no_digcl:
            ms, device = digcl_forward_ms(args)
            digcl_ms.append(ms)
            line += ", digcl %.1f ms (%s)" % (ms, device)
        print(line, flush=True)
    summary = "%s forward, batch %d, %d px, %d threads: PyTorch %.1f ms" % (
        args.model, args.batch, args.image_size, args.threads, statistics.median(torch_ms))
    if digcl_ms:
        summary += ", digcl %.1f ms (median of %d rounds; digcl / PyTorch %.2f)" % (
            statistics.median(digcl_ms), args.rounds,
            statistics.median(digcl_ms) / statistics.median(torch_ms))
    print(summary)


if __name__ == "__main__":
    main()
