#!/usr/bin/python3
"""Upstream's guided DDPM sampling step in PyTorch, against `digcl bench sample`, side by side
on one device (docs/PERFORMANCE.md, "Sampling against PyTorch on the same card").

PyTorch side: the network of tests/reference/dig_reference.py (upstream's DiG and DiT as
functions of a parameter dict, random weights: timing only) in float32 on --device. DiG's GLA
is the chunked PyTorch GLA of tools/bench_dig_torch.py, since fla's Triton kernel is not part
of this repository; DiT's attention goes through torch's scaled_dot_product_attention, as
timm's fused Attention does. One step is upstream's p_sample on the 2N batch [cond; null]:
forward_with_cfg (guidance on the first three eps channels), the learned-range variance, the
posterior mean and fresh noise, with upstream's _extract_into_tensor (a host-to-device copy per
coefficient) and _WrappedModel's timestep map, for the 250-step respacing. --steps steps are
timed after --warmup, the device synchronised around them; --tf32 sets allow_tf32 as
upstream's sample.py --tf32 does.
digcl side: `digcl [--precision tf32] bench sample --model M --sampler ddpm -n N` in the same
run (its default 250 steps and guidance 4).

usage: python3 tools/bench_sample_torch.py [--models DiG-S/2,DiT-S/2] [-n 32] [--steps 30]
           [--warmup 3] [--cfg-scale 4] [--device cuda] [--precisions fp32,tf32]
           [--digcl build/bin/digcl] [--no-digcl]
"""
import argparse
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bench_dig_torch  # noqa: E402
import diffusion_reference  # noqa: E402
import dig_reference as ref  # noqa: E402

RESPACED_STEPS = 250
NULL_CLASS = 1000


def dit_attention_sdpa(params, x, cfg, prefix):
    """timm Attention with fused_attn: F.scaled_dot_product_attention on q, k, v."""
    n, t_len, d = x.shape
    nh = cfg["num_heads"]
    qkv = ref.linear(x, params, prefix + "qkv").reshape(n, t_len, 3, nh, d // nh)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    o = F.scaled_dot_product_attention(q, k, v)
    return ref.linear(o.transpose(1, 2).reshape(n, t_len, d), params, prefix + "proj")


def respaced_schedule():
    """SpacedDiffusion(space_timesteps(1000, "250")): the coefficients p_sample reads (float64
    numpy, tests/reference/diffusion_reference.py's port of upstream) and the timestep map."""
    d = diffusion_reference.spaced_diffusion(RESPACED_STEPS)
    return {
        "log_betas": np.log(d.betas),
        "post_log_var": d.posterior_log_variance_clipped,
        "recip": d.sqrt_recip_alphas_cumprod,
        "recipm1": d.sqrt_recipm1_alphas_cumprod,
        "coef1": d.posterior_mean_coef1,
        "coef2": d.posterior_mean_coef2,
        "map": np.array(d.timestep_map),
    }


def extract(arr, t, shape):
    """upstream's _extract_into_tensor: a host array indexed on the device, broadcast."""
    res = torch.from_numpy(arr).to(device=t.device)[t].float()
    while len(res.shape) < len(shape):
        res = res[..., None]
    return res.expand(shape)


def p_sample(params, cfg, sched, x, i, y, scale, device):
    """One step of p_sample_loop on the 2N batch x (both halves carry the same image)."""
    t = torch.full((x.shape[0],), i, dtype=torch.int64, device=device)
    mapped = torch.from_numpy(sched["map"]).to(device)[t]  # _WrappedModel
    half = x[: len(x) // 2]  # forward_with_cfg
    model_out = ref.forward(params, torch.cat([half, half], dim=0), mapped, y, cfg)
    eps, rest = model_out[:, :3], model_out[:, 3:]
    cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
    half_eps = uncond_eps + scale * (cond_eps - uncond_eps)
    model_out = torch.cat([torch.cat([half_eps, half_eps], dim=0), rest], dim=1)
    channels = x.shape[1]
    eps, var_values = torch.split(model_out, channels, dim=1)
    min_log = extract(sched["post_log_var"], t, x.shape)
    max_log = extract(sched["log_betas"], t, x.shape)
    frac = (var_values + 1) / 2
    log_variance = frac * max_log + (1 - frac) * min_log
    pred_xstart = extract(sched["recip"], t, x.shape) * x - extract(sched["recipm1"], t, x.shape) * eps
    mean = extract(sched["coef1"], t, x.shape) * pred_xstart + extract(sched["coef2"], t, x.shape) * x
    nonzero = (t != 0).float().view(-1, 1, 1, 1)
    return mean + nonzero * torch.exp(0.5 * log_variance) * torch.randn_like(x)


def synchronize(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def torch_ms_per_step(model, args):
    cfg = ref.preset(model)
    gen = torch.Generator().manual_seed(1)
    params = {name: (torch.randn(shape, generator=gen, device="cpu") * 0.02).to(args.device)
              for name, shape, _ in ref.param_shapes(cfg)}
    params["pos_embed"] = ref.sincos_pos_embed(cfg["hidden_size"], ref.derived(cfg)["grid"]) \
        .unsqueeze(0).float().to(args.device)  # after the weights: the generator order
    size = cfg["input_size"]
    z = torch.randn(args.n, cfg["in_channels"], size, size, generator=gen, device="cpu")
    z = z.to(args.device)
    x = torch.cat([z, z], dim=0)
    labels = torch.randint(0, cfg["num_classes"], (args.n,), generator=gen, device="cpu")
    labels = labels.to(args.device)
    y = torch.cat([labels, torch.full_like(labels, NULL_CLASS)], dim=0)
    sched = respaced_schedule()
    steps = list(reversed(range(RESPACED_STEPS)))
    with torch.no_grad():
        for i in steps[: args.warmup]:
            x = p_sample(params, cfg, sched, x, i, y, args.cfg_scale, args.device)
        synchronize(args.device)
        start = time.perf_counter()
        for i in steps[args.warmup: args.warmup + args.steps]:
            x = p_sample(params, cfg, sched, x, i, y, args.cfg_scale, args.device)
        synchronize(args.device)
    if not torch.isfinite(x).all():
        sys.exit("bench_sample_torch: %s produced non-finite samples" % model)
    return (time.perf_counter() - start) * 1e3 / args.steps


def digcl_ms_per_step(model, precision, args):
    command = [args.digcl] + (["--precision", "tf32"] if precision == "tf32" else []) + \
        ["bench", "sample", "--model", model, "--sampler", "ddpm", "-n", str(args.n),
         "--cfg-scale", str(args.cfg_scale)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    match = re.search(r"ddpm .*?([0-9.]+) ms/step", result.stdout)
    if result.returncode != 0 or not match:
        sys.exit("bench_sample_torch: %s failed:\n%s%s" % (" ".join(command), result.stdout,
                                                         result.stderr))
    return float(match.group(1))


def set_precision(precision, device):
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    elif precision == "tf32":
        sys.exit("bench_sample_torch: --precisions tf32 needs a CUDA device")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="DiG-S/2,DiT-S/2")
    ap.add_argument("-n", type=int, default=32, help="images (the batch is 2n with guidance)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cfg-scale", type=float, default=4.0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precisions", default="fp32,tf32")
    ap.add_argument("--digcl", default=os.path.join(HERE, "..", "build", "bin", "digcl"))
    ap.add_argument("--no-digcl", action="store_true")
    args = ap.parse_args()
    if args.n < 1 or args.steps < 1 or args.warmup < 0 or \
            args.warmup + args.steps > RESPACED_STEPS:
        sys.exit("bench_sample_torch: need n >= 1, steps >= 1 and warmup + steps <= %d"
                 % RESPACED_STEPS)
    ref.DTYPE = torch.float32
    ref.gla_recurrence = bench_dig_torch.gla_chunked
    bench_dig_torch.torch, bench_dig_torch.ref = torch, ref
    if hasattr(F, "scaled_dot_product_attention"):
        ref.dit_attention = dit_attention_sdpa
    if args.device.startswith("cuda"):
        torch.set_default_device(args.device)  # the reference builds small tensors itself
    print("PyTorch %s on %s; %d images (batch %d), guidance %g, %d steps of the %d-step DDPM "
          "timed after %d" % (torch.__version__, args.device, args.n, 2 * args.n, args.cfg_scale,
                              args.steps, RESPACED_STEPS, args.warmup))
    print("%-9s %-5s %14s %14s %10s" % ("model", "prec", "PyTorch ms/step", "digcl ms/step",
                                        "speedup"))
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            set_precision(precision, args.device)
            theirs = torch_ms_per_step(model, args)
            ours = None if args.no_digcl else digcl_ms_per_step(model, precision, args)
            print("%-9s %-5s %14.2f %14s %10s" % (
                model, precision, theirs, "-" if ours is None else "%.2f" % ours,
                "-" if ours is None else "%.2fx" % (theirs / ours)), flush=True)


if __name__ == "__main__":
    main()
