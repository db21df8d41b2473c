"""From-spec float64 PyTorch reference of DiG and DiT (CPU, Debian python3-torch).

Spec: docs/MODEL.md §1-§3 and docs/GLA.md §1 (DiG-*/2-bid-layer-dwconv-qdir),
facebookresearch/DiT models.py (DiT). Parameter names and shapes are upstream's state_dict
keys (tests/reference/dig_s2_state_dict.txt, dit_s2_state_dict.txt).

No upstream code is used: the network is a plain function of a dict name -> tensor.

Dimension legend: N batch, C in_channels, H x W latent (H = W = input_size), p patch,
E = input_size / p, T = E*E tokens, D hidden, NH heads, Dk = D/2 (DiG keys), Dv = D,
dk = Dk/NH, dv = Dv/NH, F mlp hidden, K num_classes.
"""
import json
import math

import torch
import torch.nn.functional as F

DTYPE = torch.float64
GATE_LOW_RANK = 16
GATE_LOGIT_NORMALIZER = 16.0
FREQ_DIM = 256
EPS = 1e-6

# name: (arch, depth, hidden, heads)  (docs/MODEL.md §1.1; DiT-XL has 16 heads, DiG-XL 18)
SIZES = {"S": (12, 384, 6, 6), "B": (12, 768, 12, 12), "L": (24, 1024, 16, 16),
         "XL": (28, 1152, 18, 16)}
CONFIG_KEYS = ("arch", "depth", "hidden_size", "num_heads", "patch_size", "input_size",
               "in_channels", "num_classes", "learn_sigma", "skip")


def make_config(arch="dig", depth=12, hidden_size=384, num_heads=6, patch_size=2, input_size=32,
                in_channels=4, num_classes=1000, learn_sigma=True, skip=False):
    """The dig.config dict (same keys as the C side's JSON)."""
    if arch not in ("dig", "dit"):
        raise ValueError("arch must be dig or dit, got %r" % arch)
    if arch == "dit" and skip:
        raise ValueError("long skips exist only for DiG")
    if hidden_size % num_heads or (arch == "dig" and (hidden_size // 2) % num_heads):
        raise ValueError("hidden_size %d does not split into %d heads" % (hidden_size, num_heads))
    if input_size % patch_size:
        raise ValueError("input_size %d is not a multiple of patch_size %d" % (input_size, patch_size))
    return {"arch": arch, "depth": depth, "hidden_size": hidden_size, "num_heads": num_heads,
            "patch_size": patch_size, "input_size": input_size, "in_channels": in_channels,
            "num_classes": num_classes, "learn_sigma": bool(learn_sigma), "skip": bool(skip)}


def preset(name):
    """'DiG-S/2', 'DiT-XL/4', 'DiG-B/2-skip' ... with input 32, 4 channels, 1000 classes."""
    arch, rest = name[:3], name[4:]
    size, _, tail = rest.partition("/")
    patch, _, suffix = tail.partition("-")
    if arch not in ("DiG", "DiT") or size not in SIZES or patch not in ("2", "4", "8") \
            or suffix not in ("", "skip", "skipzero") or (arch == "DiT" and suffix):
        raise ValueError("unknown preset %r" % name)
    depth, hidden, heads_dig, heads_dit = SIZES[size]
    return make_config(arch.lower(), depth, hidden, heads_dig if arch == "DiG" else heads_dit,
                       int(patch), skip=bool(suffix))


def derived(cfg):
    """Derived sizes: tokens, grid, qk/v dims, mlp hidden, out channels."""
    d = cfg["hidden_size"]
    grid = cfg["input_size"] // cfg["patch_size"]
    if cfg["arch"] == "dig":
        mlp = int(d * 4 * 2 / 3)
        mlp = 256 * ((mlp + 256 - 1) // 256)  # fla GLAMLP, hidden_ratio 4
        qk = d // 2
    else:
        mlp, qk = 4 * d, d
    return {"grid": grid, "tokens": grid * grid, "qk_dim": qk, "v_dim": d, "mlp_hidden": mlp,
            "out_channels": 2 * cfg["in_channels"] if cfg["learn_sigma"] else cfg["in_channels"]}


# ---------------------------------------------------------------- parameter shapes

def param_shapes(cfg):
    """Ordered list of (state_dict name, shape, trainable) of upstream's model."""
    d, dv = cfg["hidden_size"], derived(cfg)
    p, c = cfg["patch_size"], cfg["in_channels"]
    out = [("pos_embed", (1, dv["tokens"], d), False),
           ("x_embedder.proj.weight", (d, c, p, p), True), ("x_embedder.proj.bias", (d,), True),
           ("t_embedder.mlp.0.weight", (d, FREQ_DIM), True), ("t_embedder.mlp.0.bias", (d,), True),
           ("t_embedder.mlp.2.weight", (d, d), True), ("t_embedder.mlp.2.bias", (d,), True),
           ("y_embedder.embedding_table.weight", (cfg["num_classes"] + 1, d), True)]
    for i in range(cfg["depth"]):
        block = _dig_block_shapes(cfg, dv, i) if cfg["arch"] == "dig" else _dit_block_shapes(cfg, dv, i)
        out += [(name, shape, True) for name, shape in block]
    final = p * p * dv["out_channels"]
    out += [("final_layer.linear.weight", (final, d), True), ("final_layer.linear.bias", (final,), True),
            ("final_layer.adaLN_modulation.1.weight", (2 * d, d), True),
            ("final_layer.adaLN_modulation.1.bias", (2 * d,), True)]
    return out


def _dig_block_shapes(cfg, dv, i):
    d, dk, f, r = cfg["hidden_size"], dv["qk_dim"], dv["mlp_hidden"], GATE_LOW_RANK
    b = "blocks.%d." % i
    shapes = [(b + "attn.q_proj.weight", (dk, d)), (b + "attn.k_proj.weight", (dk, d)),
              (b + "attn.v_proj.weight", (d, d)), (b + "attn.g_proj.weight", (d, d)),
              (b + "attn.gk_proj.0.weight", (r, d)), (b + "attn.gk_proj.1.weight", (dk, r)),
              (b + "attn.gk_proj.1.bias", (dk,)), (b + "attn.o_proj.weight", (d, d)),
              (b + "attn.g_norm_swish_gate.weight", (d // cfg["num_heads"],)),
              (b + "mlp.gate_proj.weight", (2 * f, d)), (b + "mlp.down_proj.weight", (d, f)),
              (b + "adaLN_modulation.1.weight", (6 * d, d)), (b + "adaLN_modulation.1.bias", (6 * d,)),
              (b + "dw_conv.weight", (d, 1, 3, 3)), (b + "dw_conv.bias", (d,))]
    if cfg["skip"] and i > cfg["depth"] // 2:
        shapes += [(b + "skip_linear.weight", (d, 2 * d)), (b + "skip_linear.bias", (d,))]
    return shapes


def _dit_block_shapes(cfg, dv, i):
    d, f = cfg["hidden_size"], dv["mlp_hidden"]
    b = "blocks.%d." % i
    return [(b + "attn.qkv.weight", (3 * d, d)), (b + "attn.qkv.bias", (3 * d,)),
            (b + "attn.proj.weight", (d, d)), (b + "attn.proj.bias", (d,)),
            (b + "mlp.fc1.weight", (f, d)), (b + "mlp.fc1.bias", (f,)),
            (b + "mlp.fc2.weight", (d, f)), (b + "mlp.fc2.bias", (d,)),
            (b + "adaLN_modulation.1.weight", (6 * d, d)), (b + "adaLN_modulation.1.bias", (6 * d,))]


def param_count(cfg, trainable_only=False):
    return sum(math.prod(s) for _, s, tr in param_shapes(cfg) if tr or not trainable_only)


# ---------------------------------------------------------------- embeddings

def sincos_pos_embed(d, grid):
    """[T, D] MAE/DiT 2-D sin-cos table: first D/2 channels encode the column index."""
    coords = torch.arange(grid, dtype=DTYPE)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")  # [E, E] each, row-major tokens

    def one_axis(dim, pos):  # [T] -> [T, dim] = [sin(pos w), cos(pos w)]
        omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=DTYPE) / (dim / 2.0))
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)

    return torch.cat([one_axis(d // 2, cols), one_axis(d // 2, rows)], dim=1)


def timestep_embedding(t, dim=FREQ_DIM, max_period=10000):
    """[N] -> [N, dim] = [cos(t f), sin(t f)], f_i = exp(-ln(max_period) i / (dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=DTYPE) / half)
    args = t.to(DTYPE).reshape(-1, 1) * freqs.reshape(1, -1)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def linear(x, params, name, bias=True):
    return F.linear(x, params[name + ".weight"], params[name + ".bias"] if bias else None)


def modulate(x, shift, scale):
    """x [N, T, D], shift/scale [N, D]."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def layer_norm(x):
    return F.layer_norm(x, x.shape[-1:], eps=EPS)


def condition(params, t, y):
    """c [N, D] = t_embedder(t) + y_embedder(y); y == K selects the null class row."""
    h = linear(timestep_embedding(t), params, "t_embedder.mlp.0")
    t_emb = linear(F.silu(h), params, "t_embedder.mlp.2")
    return t_emb + params["y_embedder.embedding_table.weight"][y]


def patch_embed(params, x, cfg):
    """x [N, C, H, W] -> [N, T, D] (row-major tokens) + pos_embed."""
    h = F.conv2d(x, params["x_embedder.proj.weight"], params["x_embedder.proj.bias"],
                 stride=cfg["patch_size"])
    return h.flatten(2).transpose(1, 2) + params["pos_embed"]


def final_layer(params, h, c, cfg):
    """[N, T, D] -> [N, out, H, W]: LN, adaLN shift/scale, linear, unpatchify."""
    shift, scale = linear(F.silu(c), params, "final_layer.adaLN_modulation.1").chunk(2, dim=1)
    return unpatchify(linear(modulate(layer_norm(h), shift, scale), params, "final_layer.linear"), cfg)


def unpatchify(h, cfg):
    """[N, T, p*p*out] -> [N, out, E*p, E*p]: (N, h, w, p, q, c) -> einsum nhwpqc->nchpwq."""
    n, p, e = h.shape[0], cfg["patch_size"], derived(cfg)["grid"]
    out_ch = h.shape[-1] // (p * p)
    h = h.reshape(n, e, e, p, p, out_ch)
    return torch.einsum("nhwpqc->nchpwq", h).reshape(n, out_ch, e * p, e * p)


# ---------------------------------------------------------------- DiG

def gla_recurrence(q, k, v, gk):
    """Naive GLA, per token (docs/GLA.md §1.1). q, k, gk [N, NH, T, dk]; v [N, NH, T, dv].
    S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t; o_t = (q_t dk^-0.5) S_t (current token included)."""
    n, nh, t_len, dk = q.shape
    state = torch.zeros(n, nh, dk, v.shape[-1], dtype=q.dtype)
    scale = dk ** -0.5
    outputs = []
    for t in range(t_len):
        state = state * gk[:, :, t].exp().unsqueeze(-1) + k[:, :, t].unsqueeze(-1) * v[:, :, t].unsqueeze(-2)
        outputs.append((q[:, :, t].unsqueeze(-1) * scale * state).sum(-2))
    return torch.stack(outputs, dim=2)


def gla_mixer(params, x, cfg, prefix):
    """x [N, T, D] -> [N, T, D] (docs/MODEL.md §2.2)."""
    n, t_len, d = x.shape
    nh = cfg["num_heads"]
    heads = lambda z: z.reshape(n, t_len, nh, -1).transpose(1, 2)  # [N, NH, T, d_head]
    q = heads(linear(x, params, prefix + "q_proj", bias=False))
    k = heads(linear(x, params, prefix + "k_proj", bias=False))
    v = heads(linear(x, params, prefix + "v_proj", bias=False))
    gk = linear(linear(x, params, prefix + "gk_proj.0", bias=False), params, prefix + "gk_proj.1")
    gk = heads(F.logsigmoid(gk) / GATE_LOGIT_NORMALIZER)
    o = gla_recurrence(q, k, v, gk).transpose(1, 2)  # [N, T, NH, dv]
    g = linear(x, params, prefix + "g_proj", bias=False).reshape(n, t_len, nh, -1)
    o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + EPS) * params[prefix + "g_norm_swish_gate.weight"]
    o = (o * F.silu(g)).reshape(n, t_len, -1)
    return linear(o, params, prefix + "o_proj", bias=False)


def swiglu_mlp(params, x, prefix):
    """gate_proj D -> 2F (first half gate, second half y), down_proj(swish(gate) * y)."""
    gate, y = linear(x, params, prefix + "gate_proj", bias=False).chunk(2, dim=-1)
    return linear(F.silu(gate) * y, params, prefix + "down_proj", bias=False)


def depthwise_conv(params, h, prefix):
    """[N, T, D] read as an E x E row-major grid in the current order; 3x3 depthwise, no residual."""
    n, t_len, d = h.shape
    e = math.isqrt(t_len)
    grid = h.transpose(1, 2).reshape(n, d, e, e)
    grid = F.conv2d(grid, params[prefix + "dw_conv.weight"], params[prefix + "dw_conv.bias"],
                    padding=1, groups=d)
    return grid.reshape(n, d, t_len).transpose(1, 2)


def dig_block(params, h, c, cfg, i, skip=None):
    b = "blocks.%d." % i
    if skip is not None:
        h = linear(torch.cat([h, skip], dim=-1), params, b + "skip_linear")
    mod = linear(F.silu(c), params, b + "adaLN_modulation.1").chunk(6, dim=1)
    shift1, scale1, gate1, shift2, scale2, gate2 = mod
    h = h + gate1.unsqueeze(1) * gla_mixer(params, modulate(layer_norm(h), shift1, scale1), cfg, b + "attn.")
    h = h + gate2.unsqueeze(1) * swiglu_mlp(params, modulate(layer_norm(h), shift2, scale2), b + "mlp.")
    return depthwise_conv(params, h, b)


def srem_reorder(h, i):
    """After block i: reverse the sequence; after odd blocks also transpose the E x E grid."""
    h = h.flip(1)
    if i % 2 == 1:
        n, t_len, d = h.shape
        e = math.isqrt(t_len)
        h = h.reshape(n, e, e, d).transpose(1, 2).reshape(n, t_len, d)
    return h


def dig_forward(params, x, t, y, cfg):
    """x [N, C, H, W], t [N], y [N] -> [N, out, H, W] (docs/MODEL.md §1.4, §2)."""
    h = patch_embed(params, x, cfg)
    c = condition(params, t, y)
    depth, skips = cfg["depth"], []
    for i in range(depth):
        skip = skips.pop() if cfg["skip"] and i > depth // 2 else None
        h = srem_reorder(dig_block(params, h, c, cfg, i, skip), i)
        if cfg["skip"] and i < depth // 2 - 1:
            skips.append(h)
    return final_layer(params, h, c, cfg)


# ---------------------------------------------------------------- DiT

def dit_attention(params, x, cfg, prefix):
    """timm Attention with fused qkv [3D, D] (q, k, v order, head-major), softmax(q k^T / sqrt(hd))."""
    n, t_len, d = x.shape
    nh = cfg["num_heads"]
    qkv = linear(x, params, prefix + "qkv").reshape(n, t_len, 3, nh, d // nh).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = ((q * (d // nh) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
    return linear((attn @ v).transpose(1, 2).reshape(n, t_len, d), params, prefix + "proj")


def dit_block(params, h, c, cfg, i):
    b = "blocks.%d." % i
    shift1, scale1, gate1, shift2, scale2, gate2 = linear(F.silu(c), params, b + "adaLN_modulation.1").chunk(6, dim=1)
    h = h + gate1.unsqueeze(1) * dit_attention(params, modulate(layer_norm(h), shift1, scale1), cfg, b + "attn.")
    m = linear(modulate(layer_norm(h), shift2, scale2), params, b + "mlp.fc1")
    m = linear(F.gelu(m, approximate="tanh"), params, b + "mlp.fc2")
    return h + gate2.unsqueeze(1) * m


def dit_forward(params, x, t, y, cfg):
    h = patch_embed(params, x, cfg)
    c = condition(params, t, y)
    for i in range(cfg["depth"]):
        h = dit_block(params, h, c, cfg, i)
    return final_layer(params, h, c, cfg)


def forward(params, x, t, y, cfg):
    return (dig_forward if cfg["arch"] == "dig" else dit_forward)(params, x, t, y, cfg)


# ---------------------------------------------------------------- safetensors (pure Python)

_DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8"), torch.float16: ("F16", "<f2"),
           torch.float64: ("F64", "<f8"), torch.int32: ("I32", "<i4")}
_ALIGN = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2}


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} (F32/I64/F16/F64/I32) like the reference writer: tensors ordered by
    descending alignment then name, header padded with spaces to a multiple of 8."""
    import struct
    entries = sorted(tensors.items(), key=lambda kv: (-_ALIGN[_DTYPES[kv[1].dtype][0]], kv[0]))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, tensor in entries:
        raw = _tensor_bytes(tensor)
        header[name] = {"dtype": _DTYPES[tensor.dtype][0], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    import os
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for raw in blobs:
            f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic: never a half-written file at path


def load_safetensors(path):
    """Returns ({name: tensor}, metadata). Converts F16/BF16 to float32."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    kinds = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
             "F16": torch.float16, "BF16": torch.bfloat16}
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        buf = bytearray(data[base + begin:base + end])
        dtype = kinds[info["dtype"]]
        t = torch.frombuffer(buf, dtype=dtype) if end > begin else torch.zeros(0, dtype=dtype)
        t = t.reshape(info["shape"]).clone()
        out[name] = t.float() if dtype in (torch.float16, torch.bfloat16) else t
    return out, meta


def _tensor_bytes(tensor):
    """Raw little-endian bytes of a CPU tensor (torch + ctypes only, no numpy)."""
    import ctypes
    t = tensor.detach().contiguous().cpu()
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) if t.numel() else b""
