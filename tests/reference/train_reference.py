#!/usr/bin/python3
"""Three full training steps in float64: the model of dig_reference.py, upstream's diffusion loss
(MSE on epsilon + the variational bound on the detached mean, LEARNED_RANGE variance, decoder NLL
at t = 0; MSE only without learn_sigma), torch.optim.AdamW and the EMA update, with fixed data,
t, noise and label-dropout mask.

usage: /usr/bin/python3 tests/reference/train_reference.py [OUTDIR]
       (default tests/reference/fixtures_committed; about 3 s)

For each config it writes OUTDIR/train_<name>/:
  initial.safetensors   every parameter (F16; pos_embed the F32 sin-cos table),
                        dig.config and the hyper-parameters in __metadata__ ("train.hparams" JSON)
  steps.safetensors     x F32 [S, N, C, H, W], y I64 [S, N] (after dropout: num_classes = null),
                        t I64 [S, N], noise F32 [S, N, C, H, W] for the S = 3 steps
  expected.safetensors  the weights, ema.<name> (every tensor), opt.exp_avg.<name> and
                        opt.exp_avg_sq.<name> (trainable ones) after the 3 steps, and
                        loss/mse/vb F32 [S, N] per step (rows; the step optimises their mean)

The diffusion maths follow upstream's gaussian_diffusion.py (docs/MODEL.md); the tables are
computed in float64 (upstream casts them to float32 before use: ~1e-6 on the loss).
"""
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dig_reference as ref  # noqa: E402

STEPS = 3
BATCH = 3
HPARAMS = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01,
           "ema_decay": 0.9}
CONFIGS = {
    "dig_ls": ref.make_config("dig", depth=2, hidden_size=32, num_heads=2, patch_size=2,
                              input_size=8, in_channels=4, num_classes=10, learn_sigma=True),
    "dit_mse": ref.make_config("dit", depth=2, hidden_size=32, num_heads=2, patch_size=2,
                               input_size=8, in_channels=3, num_classes=10, learn_sigma=False),
}
D = torch.float64


# ---------------------------------------------------------------- diffusion (float64)

def tables():
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=D)
    alphas = 1.0 - betas
    acp = torch.cumprod(alphas, 0)
    acp_prev = torch.cat([torch.ones(1, dtype=D), acp[:-1]])
    post_var = betas * (1.0 - acp_prev) / (1.0 - acp)
    return {
        "betas": betas, "acp": acp,
        "sqrt_acp": acp.sqrt(), "sqrt_1m_acp": (1.0 - acp).sqrt(),
        "sqrt_recip_acp": (1.0 / acp).sqrt(), "sqrt_recipm1_acp": (1.0 / acp - 1.0).sqrt(),
        "post_log_var": torch.log(torch.cat([post_var[1:2], post_var[1:]])),
        "coef1": betas * acp_prev.sqrt() / (1.0 - acp),
        "coef2": (1.0 - acp_prev) * alphas.sqrt() / (1.0 - acp),
    }


def at(table, t, like):
    return table[t].reshape(-1, *([1] * (like.dim() - 1)))


def mean_flat(x):
    return x.mean(dim=list(range(1, x.dim())))


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def approx_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_log_likelihood(x, means, log_scales):
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = approx_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = approx_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def q_sample(tab, x_start, t, noise):
    return at(tab["sqrt_acp"], t, x_start) * x_start + at(tab["sqrt_1m_acp"], t, x_start) * noise


def training_losses(tab, out, x_start, t, noise, learn_sigma):
    """Per-row loss, mse, vb as upstream's training_losses (loss_type MSE, EPSILON)."""
    c = x_start.shape[1]
    x_t = q_sample(tab, x_start, t, noise)
    eps = out[:, :c]
    mse = mean_flat((noise - eps) ** 2)
    if not learn_sigma:
        return mse, mse, torch.zeros_like(mse), x_t
    v = out[:, c:]
    eps_detached = eps.detach()
    true_mean = at(tab["coef1"], t, x_t) * x_start + at(tab["coef2"], t, x_t) * x_t
    true_log_var = at(tab["post_log_var"], t, x_t)
    min_log, max_log = at(tab["post_log_var"], t, x_t), at(torch.log(tab["betas"]), t, x_t)
    frac = (v + 1.0) / 2.0
    model_log_var = frac * max_log + (1.0 - frac) * min_log
    pred_x0 = at(tab["sqrt_recip_acp"], t, x_t) * x_t - at(tab["sqrt_recipm1_acp"], t, x_t) * eps_detached
    model_mean = at(tab["coef1"], t, x_t) * pred_x0 + at(tab["coef2"], t, x_t) * x_t
    kl = mean_flat(normal_kl(true_mean, true_log_var, model_mean, model_log_var)) / math.log(2.0)
    nll = -mean_flat(discretized_log_likelihood(x_start, model_mean, 0.5 * model_log_var)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)
    return mse + vb, mse, vb, x_t


# ---------------------------------------------------------------- fixtures

def f16_exact(t):
    return t.half().to(D)


def f32_exact(t):
    return t.float().to(D)


def initial_params(cfg, gen):
    params = {}
    for name, shape, trainable in ref.param_shapes(cfg):
        if name == "pos_embed":
            value = ref.sincos_pos_embed(cfg["hidden_size"], ref.derived(cfg)["grid"]).reshape(shape)
            params[name] = f32_exact(value)
            continue
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        std = 0.1 if len(shape) == 1 else 0.5 / fan_in ** 0.5
        value = torch.randn(shape, generator=gen, dtype=D) * std
        if name.endswith("gk_proj.1.bias"):
            value = torch.rand(shape, generator=gen, dtype=D) * 6.0 - 4.0
        if name.endswith("g_norm_swish_gate.weight"):
            value = 1.0 + value
        if name.endswith("dw_conv.weight"):
            value[:, 0, 1, 1] += 1.0
        params[name] = f16_exact(value)
    return params


def step_inputs(cfg, gen):
    n, c, s = BATCH, cfg["in_channels"], cfg["input_size"]
    x = f32_exact(torch.rand(STEPS, n, c, s, s, generator=gen, dtype=D) * 2.0 - 1.0)
    noise = f32_exact(torch.randn(STEPS, n, c, s, s, generator=gen, dtype=D))
    y = torch.randint(0, cfg["num_classes"], (STEPS, n), generator=gen)
    y[1, 0] = cfg["num_classes"]  # dropped to the null class
    y[2, 2] = cfg["num_classes"]
    t = torch.randint(1, 999, (STEPS, n), generator=gen)
    t[0, 1] = 0      # the decoder NLL
    t[1, 2] = 999    # the last timestep
    t[2, 0] = 0
    return x, y, t, noise


def train(cfg, params, inputs):
    x, y, t, noise = inputs
    tab = tables()
    names = [name for name, _, _ in ref.param_shapes(cfg)]
    tensors = {n: params[n].clone().requires_grad_(n != "pos_embed") for n in names}
    trainable = [tensors[n] for n in names if n != "pos_embed"]
    opt = torch.optim.AdamW(trainable, lr=HPARAMS["lr"], betas=(HPARAMS["beta1"], HPARAMS["beta2"]),
                            eps=HPARAMS["eps"], weight_decay=HPARAMS["weight_decay"])
    ema = {n: p.detach().clone() for n, p in tensors.items()}
    losses = {"loss": [], "mse": [], "vb": []}
    for s in range(STEPS):
        opt.zero_grad()
        tt = t[s]
        x_t = q_sample(tab, x[s], tt, noise[s])
        out = ref.forward(tensors, x_t, tt, y[s], cfg)
        loss, mse, vb, _ = training_losses(tab, out, x[s], tt, noise[s], cfg["learn_sigma"])
        loss.mean().backward()
        opt.step()
        with torch.no_grad():
            for n in names:
                ema[n].mul_(HPARAMS["ema_decay"]).add_(tensors[n].detach(), alpha=1.0 - HPARAMS["ema_decay"])
        for key, value in (("loss", loss), ("mse", mse), ("vb", vb)):
            losses[key].append(value.detach())
    expected = {}
    for n in names:
        expected[n] = tensors[n].detach().float()
        expected["ema." + n] = ema[n].float()
        if n != "pos_embed":
            state = opt.state[tensors[n]]
            expected["opt.exp_avg." + n] = state["exp_avg"].float()
            expected["opt.exp_avg_sq." + n] = state["exp_avg_sq"].float()
    for key, values in losses.items():
        expected[key] = torch.stack(values).float()
    return expected


def write(outdir):
    for seed, (name, cfg) in enumerate(sorted(CONFIGS.items())):
        gen = torch.Generator().manual_seed(2000 + seed)
        params = initial_params(cfg, gen)
        inputs = step_inputs(cfg, gen)
        expected = train(cfg, params, inputs)
        folder = os.path.join(outdir, "train_" + name)
        os.makedirs(folder, exist_ok=True)
        meta = {"dig.config": json.dumps(cfg, separators=(",", ":")),
                "train.hparams": json.dumps(HPARAMS, separators=(",", ":"))}
        ref.save_safetensors(os.path.join(folder, "initial.safetensors"),
                             {n: p.float() if n == "pos_embed" else p.half() for n, p in params.items()},
                             meta)
        x, y, t, noise = inputs
        ref.save_safetensors(os.path.join(folder, "steps.safetensors"),
                             {"x": x.float(), "y": y, "t": t, "noise": noise.float()}, meta)
        ref.save_safetensors(os.path.join(folder, "expected.safetensors"), expected, meta)
        print("%s: %d parameters, loss per step %s" % (
            name, ref.param_count(cfg), [round(float(v.mean()), 5) for v in expected["loss"]]))


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "fixtures_committed"))
