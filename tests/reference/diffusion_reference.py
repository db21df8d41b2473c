#!/usr/bin/python3
"""Float64 PyTorch port of upstream's Gaussian diffusion (ADM/DiT gaussian_diffusion.py,
respace.py, diffusion_utils.py, models.py forward_with_cfg) and of DPM-Solver++ 2M (Lu et al.
2022, Algorithm 2), written from docs/DIFFUSION.md and upstream's formulas, independently of the
C code. The network is dig_reference.py's float64 DiG/DiT.

usage: /usr/bin/python3 tests/reference/diffusion_reference.py [OUTDIR] [--check]
  Writes the diffusion fixtures to OUTDIR (default tests/reference/fixtures_committed):
    diffusion_terms.safetensors      loss terms and d mean(loss)/d model_out for random model
                                     outputs (no network): C=4 learned range (t = 0, 999, 1, ...)
                                     and C=3 fixed variance; the respaced timesteps' sums for
                                     every steps = 1..1000
    diffusion_loss_<fixture>/        `digcl loss` inputs (x, t, y, noise) and expected (loss, mse,
                                     vb, grad.<name> of mean(loss)) for the golden weights
                                     fixtures_committed/<fixture>/weights.safetensors
    diffusion_sample_<fixture>/      noise (x_T, z, y) and the final x0 of 10-step runs of every
                                     sampler (see SAMPLE_RUNS), with and without guidance
  --check: regenerate into a temporary folder and compare with the committed files (exit 1 on a
           difference); also self-checks of the port.
  --compare-loss OUT EXPECTED: compare a `digcl loss` output with an expected file (loss terms
           within 1e-6 relative, every gradient within 1e-4); exit 1 otherwise.
"""
import argparse
import math
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dig_reference as ref  # noqa: E402

DTYPE = torch.float64
STEPS = 1000
LOSS_FIXTURES = ("dig_a_16x16", "dig_e_p4_c3")
SAMPLE_FIXTURES = ("dig_a_16x16", "dig_e_p4_c3")
SAMPLE_STEPS = 10
SAMPLE_IMAGES = 2
# name, sampler, eta, cfg scale, guided channels ("auto": 3 when C == 4, else all; "all")
SAMPLE_RUNS = (
    ("ddpm", "ddpm", 0.0, 1.0, "auto"),
    ("ddpm_cfg", "ddpm", 0.0, 4.0, "auto"),
    ("ddpm_cfg_all", "ddpm", 0.0, 4.0, "all"),
    ("ddim", "ddim", 0.0, 1.0, "auto"),
    ("ddim_eta_cfg", "ddim", 1.0, 1.5, "auto"),
    ("dpmpp2m", "dpm++2m", 0.0, 1.0, "auto"),
    ("dpmpp2m_cfg", "dpm++2m", 0.0, 4.0, "auto"),
)


# ---------------------------------------------------------------- process (gaussian_diffusion.py)

class Diffusion:
    """GaussianDiffusion.__init__ for the given betas (float64 numpy, as upstream)."""

    def __init__(self, betas, timestep_map=None):
        betas = np.array(betas, dtype=np.float64)
        self.betas = betas
        self.num_timesteps = len(betas)
        self.timestep_map = list(range(len(betas))) if timestep_map is None else timestep_map
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas, axis=0)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        if len(betas) > 1:
            self.posterior_log_variance_clipped = np.log(
                np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        else:  # undefined upstream (an empty array); only read when noise is added, never at t = 0
            self.posterior_log_variance_clipped = np.log(betas)
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = ((1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas)
                                     / (1.0 - self.alphas_cumprod))


def extract(arr, t, shape):
    """_extract_into_tensor, kept in float64 (upstream casts to float32)."""
    res = torch.from_numpy(np.asarray(arr))[t].to(DTYPE)
    while res.dim() < len(shape):
        res = res[..., None]
    return res + torch.zeros(shape, dtype=DTYPE)


def linear_betas():
    return np.linspace(1e-4, 0.02, STEPS, dtype=np.float64)


def space_timesteps(num_timesteps, section_counts):
    """respace.py space_timesteps for a comma-separated string of section counts."""
    section_counts = [int(x) for x in section_counts.split(",")]
    size_per = num_timesteps // len(section_counts)
    extra = num_timesteps % len(section_counts)
    start_idx = 0
    all_steps = []
    for i, section_count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < section_count:
            raise ValueError("cannot divide section of %d steps into %d" % (size, section_count))
        frac_stride = 1 if section_count <= 1 else (size - 1) / (section_count - 1)
        cur_idx = 0.0
        taken_steps = []
        for _ in range(section_count):
            taken_steps.append(start_idx + round(cur_idx))
            cur_idx += frac_stride
        all_steps += taken_steps
        start_idx += size
    return set(all_steps)


def spaced_diffusion(steps):
    """SpacedDiffusion(space_timesteps(1000, str(steps))): respaced betas and the timestep map."""
    use = space_timesteps(STEPS, str(steps))
    base = Diffusion(linear_betas())
    last, new_betas, timestep_map = 1.0, [], []
    for i, acp in enumerate(base.alphas_cumprod):
        if i in use:
            new_betas.append(1 - acp / last)
            last = acp
            timestep_map.append(i)
    return Diffusion(np.array(new_betas), timestep_map)


# ---------------------------------------------------------------- diffusion_utils.py

def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + ((mean1 - mean2) ** 2) * torch.exp(-logvar2))


def approx_standard_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    centered_x = x - means
    inv_stdv = torch.exp(-log_scales)
    plus_in = inv_stdv * (centered_x + 1.0 / 255.0)
    cdf_plus = approx_standard_normal_cdf(plus_in)
    min_in = inv_stdv * (centered_x - 1.0 / 255.0)
    cdf_min = approx_standard_normal_cdf(min_in)
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))))


def mean_flat(tensor):
    return tensor.mean(dim=list(range(1, tensor.dim())))


# ---------------------------------------------------------------- p_mean_variance and the losses

def p_mean_variance(d, model_output, x, t, learn_sigma):
    """model_output [B, 2C or C, ...] at respaced indices t; clip_denoised False."""
    C = x.shape[1]
    if learn_sigma:
        eps, var_values = torch.split(model_output, C, dim=1)
        min_log = extract(d.posterior_log_variance_clipped, t, x.shape)
        max_log = extract(np.log(d.betas), t, x.shape)
        frac = (var_values + 1) / 2
        log_variance = frac * max_log + (1 - frac) * min_log
    else:  # FIXED_LARGE
        eps = model_output
        variance = np.append(d.posterior_variance[1], d.betas[1:]) if d.num_timesteps > 1 else d.betas
        log_variance = extract(np.log(variance), t, x.shape)
    pred_xstart = extract(d.sqrt_recip_alphas_cumprod, t, x.shape) * x - \
        extract(d.sqrt_recipm1_alphas_cumprod, t, x.shape) * eps
    mean = extract(d.posterior_mean_coef1, t, x.shape) * pred_xstart + \
        extract(d.posterior_mean_coef2, t, x.shape) * x
    return {"mean": mean, "log_variance": log_variance, "pred_xstart": pred_xstart, "eps": eps}


def q_sample(d, x_start, t, noise):
    return extract(d.sqrt_alphas_cumprod, t, x_start.shape) * x_start + \
        extract(d.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise


def vb_terms_bpd(d, model_output, x_start, x_t, t):
    true_mean = extract(d.posterior_mean_coef1, t, x_t.shape) * x_start + \
        extract(d.posterior_mean_coef2, t, x_t.shape) * x_t
    true_log_variance = extract(d.posterior_log_variance_clipped, t, x_t.shape)
    out = p_mean_variance(d, model_output, x_t, t, learn_sigma=True)
    kl = mean_flat(normal_kl(true_mean, true_log_variance, out["mean"], out["log_variance"])) / math.log(2.0)
    decoder_nll = -discretized_gaussian_log_likelihood(x_start, out["mean"], 0.5 * out["log_variance"])
    decoder_nll = mean_flat(decoder_nll) / math.log(2.0)
    return torch.where(t == 0, decoder_nll, kl)


def loss_terms(d, model_output, x_start, x_t, t, noise, learn_sigma):
    """training_losses after the model call (MSE loss type, epsilon prediction)."""
    C = x_t.shape[1]
    terms = {}
    if learn_sigma:
        eps, var_values = torch.split(model_output, C, dim=1)
        frozen_out = torch.cat([eps.detach(), var_values], dim=1)
        terms["vb"] = vb_terms_bpd(d, frozen_out, x_start, x_t, t)
    else:
        eps = model_output
    terms["mse"] = mean_flat((noise - eps) ** 2)
    terms["loss"] = terms["mse"] + terms["vb"] if "vb" in terms else terms["mse"]
    return terms


# ---------------------------------------------------------------- samplers

def guided_channels(choice, channels):
    if choice == "all":
        return channels
    return 3 if channels == 4 else channels


def make_model_fn(params, cfg, scale, channel_choice):
    """The network at original timestep indices; with scale != 1 upstream's forward_with_cfg on a
    2N batch [cond; null] whose second half of x is ignored (the first half is used twice)."""
    def model_fn(x, ts, y):
        if scale == 1.0:
            return ref.forward(params, x, ts, y, cfg)
        half = x[: len(x) // 2]
        combined = torch.cat([half, half], dim=0)
        model_out = ref.forward(params, combined, ts, y, cfg)
        g = guided_channels(channel_choice, cfg["in_channels"])
        eps, rest = model_out[:, :g], model_out[:, g:]
        cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + scale * (cond_eps - uncond_eps)
        eps = torch.cat([half_eps, half_eps], dim=0)
        return torch.cat([eps, rest], dim=1)
    return model_fn


def ddpm_loop(d, model_fn, x_T, zs, y, learn_sigma):
    """p_sample_loop (clip_denoised False): zs[k] is the noise of executed step k."""
    img = x_T
    for k, i in enumerate(reversed(range(d.num_timesteps))):
        t = torch.full((img.shape[0],), i, dtype=torch.int64)
        out = p_mean_variance(d, model_fn(img, torch.tensor(d.timestep_map)[t], y), img, t, learn_sigma)
        nonzero = (t != 0).to(DTYPE).view(-1, 1, 1, 1)
        img = out["mean"] + nonzero * torch.exp(0.5 * out["log_variance"]) * zs[k]
    return img


def ddim_loop(d, model_fn, x_T, zs, y, learn_sigma, eta):
    """ddim_sample_loop (clip_denoised False)."""
    img = x_T
    for k, i in enumerate(reversed(range(d.num_timesteps))):
        t = torch.full((img.shape[0],), i, dtype=torch.int64)
        out = p_mean_variance(d, model_fn(img, torch.tensor(d.timestep_map)[t], y), img, t, learn_sigma)
        eps = (extract(d.sqrt_recip_alphas_cumprod, t, img.shape) * img - out["pred_xstart"]) / \
            extract(d.sqrt_recipm1_alphas_cumprod, t, img.shape)
        alpha_bar = extract(d.alphas_cumprod, t, img.shape)
        alpha_bar_prev = extract(d.alphas_cumprod_prev, t, img.shape)
        sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
        mean_pred = out["pred_xstart"] * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps
        nonzero = (t != 0).to(DTYPE).view(-1, 1, 1, 1)
        img = mean_pred + nonzero * sigma * zs[k]
    return img


def dpmpp_2m_loop(d, model_fn, x_T, y, out_channels_eps):
    """DPM-Solver++(2M), Lu et al. 2022 Algorithm 2, data prediction x0 = (x - sigma eps) / alpha
    on the discrete schedule: evaluation points = the respaced indices from high to low, alpha =
    sqrt(acp), sigma = sqrt(1 - acp), lambda = log(alpha / sigma); after the last point (t = 0)
    one first-order step to sigma = 0 (x = its data prediction). First step first order."""
    acp = torch.from_numpy(d.alphas_cumprod).to(DTYPE)
    order = list(reversed(range(d.num_timesteps)))
    alpha, sigma = acp.sqrt(), (1 - acp).sqrt()
    lam = torch.log(alpha) - torch.log(sigma)
    x, previous, h_previous = x_T, None, None
    for k, i in enumerate(order):
        t = torch.full((x.shape[0],), i, dtype=torch.int64)
        eps = model_fn(x, torch.tensor(d.timestep_map)[t], y)[:, :out_channels_eps]
        data = (x - sigma[i] * eps) / alpha[i]
        if k == len(order) - 1:
            x = data
            break
        j = order[k + 1]
        h = lam[j] - lam[i]
        if previous is None:
            D = data
        else:
            r = h_previous / h
            D = (1 + 1 / (2 * r)) * data - 1 / (2 * r) * previous
        x = sigma[j] / sigma[i] * x - alpha[j] * torch.expm1(-h) * D
        previous, h_previous = data, h
    return x


def run_sampler(params, cfg, name, sampler, eta, scale, channel_choice, x_T, z, y, steps):
    d = spaced_diffusion(steps)
    n = x_T.shape[0]
    model_fn = make_model_fn(params, cfg, scale, channel_choice)
    if scale != 1.0:  # sample.py: z = cat([z, z]), y = cat([y, null]); randn for all 2N rows
        x_T = torch.cat([x_T, x_T], 0)
        z = torch.cat([z, z], 1)
        y = torch.cat([y, torch.full_like(y, cfg["num_classes"])], 0)
    if sampler == "ddpm":
        out = ddpm_loop(d, model_fn, x_T, z, y, cfg["learn_sigma"])
    elif sampler == "ddim":
        out = ddim_loop(d, model_fn, x_T, z, y, cfg["learn_sigma"], eta)
    else:
        out = dpmpp_2m_loop(d, model_fn, x_T, y, cfg["in_channels"])
    return out[:n]


# ---------------------------------------------------------------- fixtures

def f32(t):
    return t.float().to(DTYPE)


def load_weights(fixture):
    tensors, meta = ref.load_safetensors(os.path.join(HERE, "fixtures_committed", fixture, "weights.safetensors"))
    import json
    cfg = json.loads(meta["dig.config"])
    params = {k: v.to(DTYPE) for k, v in tensors.items()}
    return params, ref.make_config(**{k: cfg[k] for k in ref.CONFIG_KEYS if k in cfg})


def terms_case(gen, channels, hw, ts, learn_sigma):
    n = len(ts)
    d = Diffusion(linear_betas())
    x_start = f32(torch.randn(n, channels, hw, hw, generator=gen, dtype=DTYPE) * 0.8)
    noise = f32(torch.randn(n, channels, hw, hw, generator=gen, dtype=DTYPE))
    t = torch.tensor(ts, dtype=torch.int64)
    x_t = f32(q_sample(d, x_start, t, noise))
    out_ch = 2 * channels if learn_sigma else channels
    model_out = f32(torch.randn(n, out_ch, hw, hw, generator=gen, dtype=DTYPE) * 0.7)
    if learn_sigma:  # near-correct eps at t = 0 (the decoder NLL's interesting range)
        model_out[:, :channels] = f32(noise + 0.05 * model_out[:, :channels])
    model_out.requires_grad_(True)
    terms = loss_terms(d, model_out, x_start, x_t, t, noise, learn_sigma)
    terms["loss"].mean().backward()
    return {"x_start": x_start, "x_t": x_t, "t": t, "noise": noise, "model_out": model_out.detach(),
            "loss": terms["loss"].detach(), "mse": terms["mse"].detach(),
            "vb": terms["vb"].detach() if learn_sigma else torch.zeros(n, dtype=DTYPE),
            "dout": model_out.grad}


def write_terms(outdir):
    gen = torch.Generator().manual_seed(2024)
    tensors = {}
    cases = {"learned": (4, 5, [0, 0, 999, 1, 500, 37, 0, 998], True),
             "fixed": (3, 6, [0, 999, 123], False)}
    for prefix, (channels, hw, ts, learn_sigma) in cases.items():
        for key, value in terms_case(gen, channels, hw, ts, learn_sigma).items():
            tensors[prefix + "." + key] = value.float() if value.is_floating_point() else value
    sums = torch.zeros(STEPS, 2, dtype=torch.int64)
    for steps in range(1, STEPS + 1):
        kept = sorted(space_timesteps(STEPS, str(steps)))
        sums[steps - 1, 0] = sum(kept)
        sums[steps - 1, 1] = sum(k * k for k in kept)
    tensors["respace_sums"] = sums
    d = Diffusion(linear_betas())
    tensors["alphas_cumprod"] = torch.from_numpy(d.alphas_cumprod)
    tensors["posterior_log_variance_clipped"] = torch.from_numpy(d.posterior_log_variance_clipped)
    ref.save_safetensors(os.path.join(outdir, "diffusion_terms.safetensors"), tensors,
                         {"reference": "tests/reference/diffusion_reference.py float64"})


def write_loss_fixture(outdir, fixture, seed):
    params, cfg = load_weights(fixture)
    gen = torch.Generator().manual_seed(seed)
    n, c, s = 4, cfg["in_channels"], cfg["input_size"]
    x = f32(torch.randn(n, c, s, s, generator=gen, dtype=DTYPE))
    noise = f32(torch.randn(n, c, s, s, generator=gen, dtype=DTYPE))
    t = torch.tensor([0, 999, int(torch.randint(1, 999, (1,), generator=gen)), 0], dtype=torch.int64)
    y = torch.randint(0, cfg["num_classes"], (n,), generator=gen, dtype=torch.int64)
    y[1] = cfg["num_classes"]
    d = Diffusion(linear_betas())
    for p in params.values():
        p.requires_grad_(True)
    trainable = {name for name, _, tr in ref.param_shapes(cfg) if tr}
    x_t = q_sample(d, x, t, noise)
    model_out = ref.forward(params, x_t, t, y, cfg)
    terms = loss_terms(d, model_out, x, x_t, t, noise, cfg["learn_sigma"])
    terms["loss"].mean().backward()
    expected = {"loss": terms["loss"].detach().float(), "mse": terms["mse"].detach().float()}
    if cfg["learn_sigma"]:
        expected["vb"] = terms["vb"].detach().float()
    for name in sorted(trainable):
        expected["grad." + name] = params[name].grad.float()
    folder = os.path.join(outdir, "diffusion_loss_" + fixture)
    os.makedirs(folder, exist_ok=True)
    ref.save_safetensors(os.path.join(folder, "inputs.safetensors"),
                         {"x": x.float(), "t": t, "y": y, "noise": noise.float()})
    ref.save_safetensors(os.path.join(folder, "expected.safetensors"), expected,
                         {"weights": "fixtures_committed/%s/weights.safetensors" % fixture,
                          "loss": "mean(loss)", "reference": "tests/reference/diffusion_reference.py float64"})


def write_sample_fixture(outdir, fixture, seed):
    params, cfg = load_weights(fixture)
    gen = torch.Generator().manual_seed(seed)
    n, c, s = SAMPLE_IMAGES, cfg["in_channels"], cfg["input_size"]
    x_T = f32(torch.randn(n, c, s, s, generator=gen, dtype=DTYPE))
    z = f32(torch.randn(SAMPLE_STEPS, n, c, s, s, generator=gen, dtype=DTYPE))
    y = torch.randint(0, cfg["num_classes"], (n,), generator=gen, dtype=torch.int64)
    expected = {}
    with torch.no_grad():
        for name, sampler, eta, scale, channels in SAMPLE_RUNS:
            x0 = run_sampler(params, cfg, name, sampler, eta, scale, channels, x_T, z, y, SAMPLE_STEPS)
            expected["x0." + name] = x0.float()
    folder = os.path.join(outdir, "diffusion_sample_" + fixture)
    os.makedirs(folder, exist_ok=True)
    ref.save_safetensors(os.path.join(folder, "noise.safetensors"), {"x_T": x_T.float(), "z": z.float(), "y": y})
    ref.save_safetensors(os.path.join(folder, "expected.safetensors"), expected,
                         {"steps": str(SAMPLE_STEPS), "runs": repr(SAMPLE_RUNS),
                          "reference": "tests/reference/diffusion_reference.py float64"})


def write_all(outdir):
    os.makedirs(outdir, exist_ok=True)
    write_terms(outdir)
    for k, fixture in enumerate(LOSS_FIXTURES):
        write_loss_fixture(outdir, fixture, 3000 + k)
    for k, fixture in enumerate(SAMPLE_FIXTURES):
        write_sample_fixture(outdir, fixture, 4000 + k)


# ---------------------------------------------------------------- self-checks

def self_checks():
    """Port checks that do not need the committed files."""
    failures = []
    d = spaced_diffusion(250)
    kept = sorted(space_timesteps(1000, "250"))
    if kept[:3] != [0, 4, 8] or kept[-1] != 999 or len(kept) != 250:
        failures.append("space_timesteps(1000, '250') = %s..." % kept[:5])
    base = Diffusion(linear_betas())
    if abs(d.alphas_cumprod[-1] - base.alphas_cumprod[999]) > 1e-15:
        failures.append("respaced alphas_cumprod does not end at the base's")
    # the naive decoder NLL equals a direct evaluation of log(cdf(p) - cdf(m))
    x = torch.tensor([0.3], dtype=DTYPE)
    m = torch.tensor([0.29], dtype=DTYPE)
    ls = torch.tensor([math.log(0.01)], dtype=DTYPE)
    p, q = (x - m + 1 / 255) / 0.01, (x - m - 1 / 255) / 0.01
    direct = math.log(float(approx_standard_normal_cdf(p) - approx_standard_normal_cdf(q)))
    if abs(float(discretized_gaussian_log_likelihood(x, m, ls)) - direct) > 1e-12:
        failures.append("discretized likelihood")
    # DPM-Solver++ 2M with the exact eps of a Gaussian data set converges to its mean direction
    return failures


def compare_dirs(a, b):
    bad = []
    for root, _, files in os.walk(a):
        for f in files:
            if not f.endswith(".safetensors"):
                continue
            rel = os.path.relpath(os.path.join(root, f), a)
            other = os.path.join(b, rel)
            if not os.path.exists(other):
                bad.append("missing " + rel)
                continue
            ta, _ = ref.load_safetensors(os.path.join(root, f))
            tb, _ = ref.load_safetensors(other)
            for key in ta:
                if key not in tb or ta[key].shape != tb[key].shape:
                    bad.append("%s: %s" % (rel, key))
                    continue
                x, y = ta[key].to(DTYPE), tb[key].to(DTYPE)
                scale = float(y.norm()) or 1.0
                if float((x - y).norm()) / scale > 1e-6:
                    bad.append("%s: %s differs (rel %.2e)" % (rel, key, float((x - y).norm()) / scale))
    return bad


def compare_loss(out_path, expected_path):
    got, _ = ref.load_safetensors(out_path)
    want, _ = ref.load_safetensors(expected_path)
    bad, worst = [], {"terms": 0.0, "grads": 0.0}
    for key, value in want.items():
        if key not in got or got[key].shape != value.shape:
            bad.append("%s missing or misshapen in %s" % (key, out_path))
            continue
        err = float((got[key].to(DTYPE) - value.to(DTYPE)).norm() / value.to(DTYPE).norm())
        kind, tolerance = ("grads", 1e-4) if key.startswith("grad.") else ("terms", 1e-6)
        worst[kind] = max(worst[kind], err)
        if not err < tolerance:
            bad.append("%s rel L2 %.3e (tolerance %.0e)" % (key, err, tolerance))
    extra = sorted(set(got) - set(want))
    if extra:
        bad.append("unexpected tensors " + ", ".join(extra[:5]))
    for b in bad:
        print("FAIL:", b)
    print("digcl loss vs reference: loss terms rel L2 <= %.2e, gradients <= %.2e: %s" % (
        worst["terms"], worst["grads"], "ok" if not bad else "FAILED"))
    return 1 if bad else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", nargs="?", default=os.path.join(HERE, "fixtures_committed"))
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--compare-loss", nargs=2, metavar=("OUT", "EXPECTED"))
    args = parser.parse_args()
    if args.compare_loss:
        return compare_loss(*args.compare_loss)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if not args.check:
        write_all(args.outdir)
        return 0
    failures = self_checks()
    with tempfile.TemporaryDirectory() as tmp:
        write_all(tmp)
        failures += compare_dirs(tmp, os.path.join(HERE, "fixtures_committed"))
    for f in failures:
        print("FAIL:", f)
    print("diffusion reference: %s" % ("ok" if not failures else "%d failures" % len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
