#!/usr/bin/python3
"""Float64 PyTorch reference of the Stable Diffusion VAE (diffusers AutoencoderKL as built for
sd-vae-ft-ema / sd-vae-ft-mse) and of TAESD (diffusers AutoencoderTiny), written from the
architecture (diffusers is not installed), with diffusers' state-dict names. docs/VAE.md.

usage: /usr/bin/python3 tests/reference/vae_reference.py names      [OUTDIR]
       /usr/bin/python3 tests/reference/vae_reference.py fixtures   OUTDIR [--profile small|full]
       /usr/bin/python3 tests/reference/vae_reference.py selftest

names     writes vae_kl_f8_names.txt and taesd_names.txt ("name [shape]" per line, the order of
          the C table) for the published configs and checks the parameter counts
          (encoder 34,163,592, decoder 49,490,179).
fixtures  writes OUTDIR/{kl,taesd}/weights.safetensors and io.safetensors:
            images_64 [2, 3, 64, 64], images_72x40 [1, 3, 72, 40] in [-1, 1]
            mean_64, logvar_64, mean_72x40, logvar_72x40   (KL; TAESD: latent_64, latent_72x40)
            latents_8 [2, 4, 8, 8], latents_9x5 [1, 4, 9, 5]   (raw z), decoded_8, decoded_9x5
          profile small (committed, tests/reference/fixtures_committed/vae_*): KL at
          block_out_channels (16, 32, 32, 32), 8 groups, weights stored as F16; TAESD at width
          16, weights BF16. profile full: the published widths, F32 (not committed; ctest
          writes them into the build tree when torch is importable).
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dig_reference as ref  # noqa: E402  (safetensors writer)

ref._DTYPES[torch.bfloat16] = ("BF16", "<f2")
ref._ALIGN["BF16"] = 2

HERE = os.path.dirname(os.path.abspath(__file__))
LEVELS = 4

SD = dict(kind="kl", channels=(128, 256, 512, 512), encoder_blocks=2, decoder_blocks=3, groups=32,
          eps=1e-6, latent=4)
TAESD = dict(kind="taesd", width=64, latent=4)
SMALL_KL = dict(SD, channels=(16, 32, 32, 32), groups=8)
SMALL_TAESD = dict(TAESD, width=16)


# ---------------------------------------------------------------- names and shapes

def _conv(names, prefix, out, cin, k, bias=True):
    names.append((prefix + ".weight", (out, cin, k, k)))
    if bias:
        names.append((prefix + ".bias", (out,)))


def _norm(names, prefix, c):
    names += [(prefix + ".weight", (c,)), (prefix + ".bias", (c,))]


def _resnet(names, prefix, cin, out):
    _norm(names, prefix + ".norm1", cin)
    _conv(names, prefix + ".conv1", out, cin, 3)
    _norm(names, prefix + ".norm2", out)
    _conv(names, prefix + ".conv2", out, out, 3)
    if cin != out:
        _conv(names, prefix + ".conv_shortcut", out, cin, 1)


def _mid(names, side, c):
    _resnet(names, side + ".mid_block.resnets.0", c, c)
    _norm(names, side + ".mid_block.attentions.0.group_norm", c)
    for p in ("to_q", "to_k", "to_v", "to_out.0"):
        names += [(f"{side}.mid_block.attentions.0.{p}.weight", (c, c)),
                  (f"{side}.mid_block.attentions.0.{p}.bias", (c,))]
    _resnet(names, side + ".mid_block.resnets.1", c, c)


def kl_names(cfg, part):
    ch, L, names = cfg["channels"], cfg["latent"], []
    if part == "encoder":
        _conv(names, "encoder.conv_in", ch[0], 3, 3)
        cin = ch[0]
        for i in range(LEVELS):
            for j in range(cfg["encoder_blocks"]):
                _resnet(names, f"encoder.down_blocks.{i}.resnets.{j}", cin, ch[i])
                cin = ch[i]
            if i < LEVELS - 1:
                _conv(names, f"encoder.down_blocks.{i}.downsamplers.0.conv", cin, cin, 3)
        _mid(names, "encoder", ch[-1])
        _norm(names, "encoder.conv_norm_out", ch[-1])
        _conv(names, "encoder.conv_out", 2 * L, ch[-1], 3)
        _conv(names, "quant_conv", 2 * L, 2 * L, 1)
    else:
        _conv(names, "post_quant_conv", L, L, 1)
        _conv(names, "decoder.conv_in", ch[-1], L, 3)
        _mid(names, "decoder", ch[-1])
        cin = ch[-1]
        for i in range(LEVELS):
            out = ch[LEVELS - 1 - i]
            for j in range(cfg["decoder_blocks"]):
                _resnet(names, f"decoder.up_blocks.{i}.resnets.{j}", cin, out)
                cin = out
            if i < LEVELS - 1:
                _conv(names, f"decoder.up_blocks.{i}.upsamplers.0.conv", out, out, 3)
        _norm(names, "decoder.conv_norm_out", ch[0])
        _conv(names, "decoder.conv_out", 3, ch[0], 3)
    return names


def taesd_layout(part):
    """The diffusers EncoderTiny / DecoderTiny `layers` list: ('conv', cin, cout, stride, bias),
    ('block',), ('relu',), ('up',). Input/output widths use 'w', 'L', 3."""
    if part == "encoder":
        layers = [("conv", 3, "w", 1, True), ("block",)]
        for _ in range(3):
            layers += [("conv", "w", "w", 2, False), ("block",), ("block",), ("block",)]
        return layers + [("conv", "w", "L", 1, True)]
    layers = [("conv", "L", "w", 1, True), ("relu",)]
    for _ in range(3):
        layers += [("block",), ("block",), ("block",), ("up",), ("conv", "w", "w", 1, False)]
    return layers + [("block",), ("conv", "w", 3, 1, True)]


def taesd_names(cfg, part):
    dims = {"w": cfg["width"], "L": cfg["latent"], 3: 3}
    names = []
    for i, layer in enumerate(taesd_layout(part)):
        prefix = f"{part}.layers.{i}"
        if layer[0] == "conv":
            _conv(names, prefix, dims[layer[2]], dims[layer[1]], 3, layer[4])
        elif layer[0] == "block":
            for k in (0, 2, 4):
                _conv(names, f"{prefix}.conv.{k}", cfg["width"], cfg["width"], 3)
    return names


def names_of(cfg, part):
    return (kl_names if cfg["kind"] == "kl" else taesd_names)(cfg, part)


# ---------------------------------------------------------------- random weights

def random_weights(cfg, seed, dtype):
    """{name: float64 tensor}, values exactly representable in `dtype`."""
    g = torch.Generator().manual_seed(seed)
    params = {}
    for part in ("encoder", "decoder"):
        for name, shape in names_of(cfg, part):
            if name.endswith(".weight") and len(shape) >= 2:
                fan_in = shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1)
                v = torch.randn(shape, generator=g, dtype=torch.float64) / math.sqrt(fan_in)
            elif name.endswith(".weight"):  # norm gamma
                v = 1.0 + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)
            else:
                v = 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
            params[name] = v.to(dtype).to(torch.float64)
    return params


# ---------------------------------------------------------------- the networks (float64)

def _gn(p, name, x, cfg, silu):
    y = F.group_norm(x, cfg["groups"], p[name + ".weight"], p[name + ".bias"], cfg["eps"])
    return F.silu(y) if silu else y


def _c(p, name, x, stride=1, padding=1):
    return F.conv2d(x, p[name + ".weight"], p.get(name + ".bias"), stride=stride, padding=padding)


def _resnet_fwd(p, prefix, x, cfg):
    h = _c(p, prefix + ".conv1", _gn(p, prefix + ".norm1", x, cfg, True))
    h = _c(p, prefix + ".conv2", _gn(p, prefix + ".norm2", h, cfg, True))
    if prefix + ".conv_shortcut.weight" in p:
        x = _c(p, prefix + ".conv_shortcut", x, padding=0)
    return x + h


def _attention_fwd(p, prefix, x, cfg):
    n, c, hh, ww = x.shape
    h = _gn(p, prefix + ".group_norm", x, cfg, False).reshape(n, c, hh * ww).transpose(1, 2)
    q, k, v = (F.linear(h, p[f"{prefix}.{t}.weight"], p[f"{prefix}.{t}.bias"])
               for t in ("to_q", "to_k", "to_v"))
    a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1) @ v
    o = F.linear(a, p[prefix + ".to_out.0.weight"], p[prefix + ".to_out.0.bias"])
    return x + o.transpose(1, 2).reshape(n, c, hh, ww)


def _mid_fwd(p, side, x, cfg):
    x = _resnet_fwd(p, side + ".mid_block.resnets.0", x, cfg)
    x = _attention_fwd(p, side + ".mid_block.attentions.0", x, cfg)
    return _resnet_fwd(p, side + ".mid_block.resnets.1", x, cfg)


def kl_encode(p, x, cfg):
    """images [N, 3, H, W] -> (mean, logvar clamped to [-30, 20])."""
    h = _c(p, "encoder.conv_in", x)
    for i in range(LEVELS):
        for j in range(cfg["encoder_blocks"]):
            h = _resnet_fwd(p, f"encoder.down_blocks.{i}.resnets.{j}", h, cfg)
        if i < LEVELS - 1:
            h = _c(p, f"encoder.down_blocks.{i}.downsamplers.0.conv", F.pad(h, (0, 1, 0, 1)),
                   stride=2, padding=0)
    h = _mid_fwd(p, "encoder", h, cfg)
    h = _c(p, "encoder.conv_out", _gn(p, "encoder.conv_norm_out", h, cfg, True))
    moments = _c(p, "quant_conv", h, padding=0)
    mean, logvar = moments.chunk(2, dim=1)
    return mean, logvar.clamp(-30.0, 20.0)


def kl_decode(p, z, cfg):
    """raw latents [N, 4, h, w] -> images [N, 3, 8h, 8w]."""
    h = _c(p, "decoder.conv_in", _c(p, "post_quant_conv", z, padding=0))
    h = _mid_fwd(p, "decoder", h, cfg)
    for i in range(LEVELS):
        for j in range(cfg["decoder_blocks"]):
            h = _resnet_fwd(p, f"decoder.up_blocks.{i}.resnets.{j}", h, cfg)
        if i < LEVELS - 1:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = _c(p, f"decoder.up_blocks.{i}.upsamplers.0.conv", h)
    return _c(p, "decoder.conv_out", _gn(p, "decoder.conv_norm_out", h, cfg, True))


def _taesd_run(p, part, x):
    for i, layer in enumerate(taesd_layout(part)):
        prefix = f"{part}.layers.{i}"
        if layer[0] == "conv":
            x = _c(p, prefix, x, stride=layer[3])
        elif layer[0] == "relu":
            x = F.relu(x)
        elif layer[0] == "up":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            h = F.relu(_c(p, prefix + ".conv.0", x))
            h = F.relu(_c(p, prefix + ".conv.2", h))
            x = F.relu(_c(p, prefix + ".conv.4", h) + x)
    return x


def taesd_encode(p, x):
    """images in [-1, 1] -> latents (AutoencoderTiny: the encoder sees (x + 1) / 2)."""
    return _taesd_run(p, "encoder", (x + 1) / 2)


def taesd_decode(p, z):
    """latents -> images in [-1, 1] (the decoder's [0, 1] output times 2 minus 1)."""
    return _taesd_run(p, "decoder", torch.tanh(z / 3) * 3) * 2 - 1


# ---------------------------------------------------------------- commands

def write_names(outdir):
    for cfg, file in ((SD, "vae_kl_f8_names.txt"), (TAESD, "taesd_names.txt")):
        counts = {}
        with open(os.path.join(outdir, file), "w") as f:
            for part in ("encoder", "decoder"):
                names = names_of(cfg, part)
                # the published counts are of the encoder/decoder modules (no quant convs)
                counts[part] = sum(math.prod(s) for n, s in names if n.startswith(part + "."))
                for name, shape in names:
                    f.write(f"{name} [{', '.join(str(d) for d in shape)}]\n")
        print(file, counts)
        if cfg is SD:
            assert counts == {"encoder": 34163592, "decoder": 49490179}, counts


def smooth_images(g, n, h, w):
    """Images in [-1, 1]: a few random sinusoids plus noise."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h, dtype=torch.float64),
                            torch.linspace(0, 1, w, dtype=torch.float64), indexing="ij")
    base = torch.stack([torch.sin(6.28 * (float(torch.rand(1, generator=g)) * 2 * xx + yy) + c)
                        for c in range(3)])
    x = 0.7 * base[None].repeat(n, 1, 1, 1)
    x = x + 0.2 * torch.randn((n, 3, h, w), generator=g, dtype=torch.float64)
    return x.clamp(-1, 1).float().double()


def write_fixtures(outdir, profile):
    kl_cfg, taesd_cfg = (SMALL_KL, SMALL_TAESD) if profile == "small" else (SD, TAESD)
    kl_dtype, taesd_dtype = ((torch.float16, torch.bfloat16) if profile == "small"
                             else (torch.float32, torch.float32))
    g = torch.Generator().manual_seed(12)
    images = {"64": smooth_images(g, 2, 64, 64), "72x40": smooth_images(g, 1, 72, 40)}
    latents = {"8": torch.randn((2, 4, 8, 8), generator=g, dtype=torch.float64).float().double(),
               "9x5": torch.randn((1, 4, 9, 5), generator=g, dtype=torch.float64).float().double()}
    for kind, cfg, dtype in (("kl", kl_cfg, kl_dtype), ("taesd", taesd_cfg, taesd_dtype)):
        d = os.path.join(outdir, kind)
        os.makedirs(d, exist_ok=True)
        p = random_weights(cfg, 1200 if kind == "kl" else 1201, dtype)
        meta = {k: str(v) for k, v in cfg.items()}
        ref.save_safetensors(os.path.join(d, "weights.safetensors"),
                             {k: v.to(dtype) for k, v in p.items()}, meta)
        io = {}
        for key, x in images.items():
            io["images_" + key] = x.float()
            if kind == "kl":
                mean, logvar = kl_encode(p, x, cfg)
                io["mean_" + key], io["logvar_" + key] = mean.float(), logvar.float()
            else:
                io["latent_" + key] = taesd_encode(p, x).float()
        for key, z in latents.items():
            io["latents_" + key] = z.float()
            io["decoded_" + key] = (kl_decode(p, z, cfg) if kind == "kl" else taesd_decode(p, z)).float()
        ref.save_safetensors(os.path.join(d, "io.safetensors"), io, meta)
        print("wrote", d)


def selftest():
    """The names match the reference's own parameters; counts; shapes of a forward."""
    write_names(os.environ.get("TMPDIR", "/tmp"))
    p = random_weights(SMALL_KL, 1, torch.float64)
    mean, logvar = kl_encode(p, torch.zeros(1, 3, 72, 40, dtype=torch.float64), SMALL_KL)
    assert mean.shape == (1, 4, 9, 5) and logvar.shape == (1, 4, 9, 5)
    assert kl_decode(p, mean, SMALL_KL).shape == (1, 3, 72, 40)
    q = random_weights(SMALL_TAESD, 1, torch.float64)
    assert taesd_encode(q, torch.zeros(1, 3, 64, 64, dtype=torch.float64)).shape == (1, 4, 8, 8)
    assert taesd_decode(q, torch.zeros(1, 4, 9, 5, dtype=torch.float64)).shape == (1, 3, 72, 40)
    print("vae_reference selftest ok")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    command = sys.argv[1] if len(sys.argv) > 1 else "selftest"
    if command == "names":
        write_names(sys.argv[2] if len(sys.argv) > 2 else HERE)
    elif command == "fixtures":
        profile = "full" if "--profile" in sys.argv and sys.argv[sys.argv.index("--profile") + 1] == "full" else "small"
        write_fixtures(sys.argv[2], profile)
    elif command == "selftest":
        selftest()
    else:
        sys.exit(__doc__)
