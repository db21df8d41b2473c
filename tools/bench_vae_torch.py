#!/usr/bin/python3
"""PyTorch timing of the same networks as `digcl bench vae` (docs/PERFORMANCE.md): the SD VAE
(AutoencoderKL, KL-f8) and TAESD from tests/reference/vae_reference.py, in float32 on the GPU,
TF32 off, cuDNN (benchmark mode), attention through F.scaled_dot_product_attention when this
PyTorch has it. Random weights (timing only). Times are medians of --repeats runs after a
warm-up, with torch.cuda.synchronize(), host<->device copies of the inputs/outputs included
like digcl's host API; peak memory is torch.cuda.max_memory_allocated.

usage: python3 tools/bench_vae_torch.py [--repeats 5] [--device cuda] [--only kl-f8|taesd]
"""
import argparse
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import vae_reference as v  # noqa: E402


def sdpa_attention(p, prefix, x, cfg):
    n, c, hh, ww = x.shape
    h = v._gn(p, prefix + ".group_norm", x, cfg, False).reshape(n, c, hh * ww).transpose(1, 2)
    q, k, vv = (F.linear(h, p[f"{prefix}.{t}.weight"], p[f"{prefix}.{t}.bias"])
                for t in ("to_q", "to_k", "to_v"))
    a = F.scaled_dot_product_attention(q[:, None], k[:, None], vv[:, None])[:, 0]
    o = F.linear(a, p[prefix + ".to_out.0.weight"], p[prefix + ".to_out.0.bias"])
    return x + o.transpose(1, 2).reshape(n, c, hh, ww)


def time_ms(fn, repeats, device):
    fn()
    torch.cuda.synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--only", choices=["kl-f8", "taesd"])
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    if hasattr(F, "scaled_dot_product_attention"):
        v._attention_fwd = sdpa_attention
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(device)}, fp32, TF32 off")
    print(f"{'network':22s} {'pass':10s} {'shape':20s} {'time':>13s}  peak device memory")
    for label, cfg in (("kl-f8", v.SD), ("taesd", v.TAESD)):
        if args.only and args.only != label:
            continue
        p = {k: t.float().to(device) for k, t in v.random_weights(cfg, 1, torch.float32).items()}
        kl = cfg["kind"] == "kl"
        enc = (lambda x: v.kl_encode(p, x, cfg)) if kl else (lambda x: v.taesd_encode(p, x))
        dec = (lambda z: v.kl_decode(p, z, cfg)) if kl else (lambda z: v.taesd_decode(p, z))
        for encode, n, size in ((1, 8, 256), (0, 8, 256), (1, 1, 1024), (0, 1, 1024), (0, 1, 2048)):
            shape = (n, 3, size, size) if encode else (n, 4, size // 8, size // 8)
            host = torch.rand(shape).mul_(2).sub_(1)

            def run():
                with torch.no_grad():
                    x = host.to(device)
                    out = enc(x) if encode else dec(x / 0.18215)
                    out = out[0] if isinstance(out, tuple) else out
                    return out.cpu()
            try:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
                ms = time_ms(run, 1 if size == 2048 else args.repeats, device)
                peak = torch.cuda.max_memory_allocated(device) / 2**20
                print(f"{label:22s} {'encode' if encode else 'decode':10s} "
                      f"{f'N={n} {size}px':20s} {ms:10.2f} ms  peak {peak:8.1f} MiB", flush=True)
            except torch.cuda.OutOfMemoryError:
                print(f"{label:22s} {'encode' if encode else 'decode':10s} N={n} {size}px  out of memory")


if __name__ == "__main__":
    main()
