"""From-spec float64 PyTorch reference of U-DiG, the U-shape DiG (CPU, Debian python3-torch).

Spec: docs/MODEL.md "U-DiG" (this project's definition; no upstream code exists),
written independently of the C code (src/model/udig.c). The DiG blocks, embeddings and final
layer are dig_reference.py's. Parameter names are this project's (docs/MODEL.md "U-DiG"):

  pos_embed, x_embedder.*, t_embedder.*, y_embedder.*          as plain DiG, patch 1
  blocks.<i>.*                                                 DiG blocks, i = 0..depth-1 in
                                                               pipeline order (stage s holds
                                                               blocks s*depth/5 .. (s+1)*depth/5-1)
  downsample.<k>.weight [D, 4D], .bias [D]                     k = 0: E -> E/2, k = 1: E/2 -> E/4
  upsample.<k>.weight [4D, D], .bias [4D]                      k = 0: E/4 -> E/2, k = 1: E/2 -> E
  skip_fuse.<k>.weight [D, 2D], .bias [D]                      k = 0 with skip_2, k = 1 with skip_1
  final_layer.*                                                as plain DiG, patch 1

Pipeline (E = input_size, T = E*E): patch embed + pos_embed; encoder 1 (E) -> skip_1;
downsample; encoder 2 (E/2) -> skip_2; downsample; bottleneck (E/4); upsample; fuse with skip_2;
decoder 2 (E/2); upsample; fuse with skip_1; decoder 1 (E); final layer.
Each stage: depth/5 DiG blocks, SREM cycle R, Rr, C, Cr from R at its first block, and its tokens
put back in R order at its end. Token merge: 2x2 neighbourhood -> one 4D vector, sub-positions
(0,0), (0,1), (1,0), (1,1) as (row, col); depth-to-space the inverse; fuse input [current, skip].
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dig_reference as ref  # noqa: E402

STAGES = 5
# U-DiG-<size>: (depth, hidden, heads): the plain DiG width and heads, depth the multiple of five
# at or above the plain depth.
SIZES = {"S": (15, 384, 6), "B": (15, 768, 12), "L": (25, 1024, 16), "XL": (30, 1152, 18)}


def make_config(depth=15, hidden_size=384, num_heads=6, input_size=32, in_channels=4,
                num_classes=1000, learn_sigma=True):
    """The dig.config dict of a U-DiG (arch "udig", patch 1, no DiG long skips)."""
    if depth % STAGES:
        raise ValueError("U-DiG depth %d is not a multiple of 5" % depth)
    if input_size % 4:
        raise ValueError("U-DiG input_size %d is not a multiple of 4" % input_size)
    if hidden_size % num_heads or (hidden_size // 2) % num_heads:
        raise ValueError("hidden_size %d does not split into %d heads" % (hidden_size, num_heads))
    return {"arch": "udig", "depth": depth, "hidden_size": hidden_size, "num_heads": num_heads,
            "patch_size": 1, "input_size": input_size, "in_channels": in_channels,
            "num_classes": num_classes, "learn_sigma": bool(learn_sigma), "skip": False}


def preset(name):
    """'U-DiG-S' ... 'U-DiG-XL' with input 32, 4 channels, 1000 classes."""
    if not name.startswith("U-DiG-") or name[6:] not in SIZES:
        raise ValueError("unknown U-DiG preset %r" % name)
    depth, hidden, heads = SIZES[name[6:]]
    return make_config(depth, hidden, heads)


def as_dig(cfg):
    """The plain-DiG view of the config that dig_reference's helpers read (SwiGLU size, grid)."""
    return dict(cfg, arch="dig")


# ---------------------------------------------------------------- parameters

def param_shapes(cfg):
    """Ordered (name, shape, trainable): embedders, then per stage its transition and blocks,
    then the final layer."""
    dig = as_dig(cfg)
    plain = ref.param_shapes(dict(dig, depth=0))
    head, final = plain[:8], plain[8:]
    derived = ref.derived(dig)
    d, n_stage = cfg["hidden_size"], cfg["depth"] // STAGES
    out = list(head)
    for stage in range(STAGES):
        out += [(name, shape, True) for name, shape in _transition_shapes(stage, d)]
        for i in range(stage * n_stage, (stage + 1) * n_stage):
            out += [(name, shape, True) for name, shape in ref._dig_block_shapes(dig, derived, i)]
    return out + final


def _transition_shapes(stage, d):
    if stage in (1, 2):
        k = stage - 1
        return [("downsample.%d.weight" % k, (d, 4 * d)), ("downsample.%d.bias" % k, (d,))]
    if stage in (3, 4):
        k = stage - 3
        return [("upsample.%d.weight" % k, (4 * d, d)), ("upsample.%d.bias" % k, (4 * d,)),
                ("skip_fuse.%d.weight" % k, (d, 2 * d)), ("skip_fuse.%d.bias" % k, (d,))]
    return []


def param_count(cfg, trainable_only=False):
    return sum(math.prod(s) for _, s, tr in param_shapes(cfg) if tr or not trainable_only)


# ---------------------------------------------------------------- grid operations

def token_merge(h, side):
    """[N, side*side, D] (row-major) -> [N, (side/2)^2, 4D]; channel (2*dy + dx)*D + c of coarse
    token (i, j) is channel c of fine token (2i + dy, 2j + dx)."""
    n, _, d = h.shape
    half = side // 2
    grid = h.reshape(n, half, 2, half, 2, d)                   # (n, i, dy, j, dx, c)
    return grid.permute(0, 1, 3, 2, 4, 5).reshape(n, half * half, 4 * d)


def depth_to_space(h, half):
    """[N, half*half, 4D] -> [N, (2*half)^2, D], the inverse of token_merge."""
    n, _, d4 = h.shape
    d = d4 // 4
    grid = h.reshape(n, half, half, 2, 2, d)                   # (n, i, j, dy, dx, c)
    return grid.permute(0, 1, 3, 2, 4, 5).reshape(n, 4 * half * half, d)


def run_stage(params, h, c, cfg, stage):
    """depth/5 DiG blocks on this stage's grid. Each token's grid cell is tracked through the
    same reorderings, and the tokens are put back at their cells (R order) at the end."""
    dig, n_stage = as_dig(cfg), cfg["depth"] // STAGES
    cells = torch.arange(h.shape[1]).reshape(1, -1, 1).to(ref.DTYPE)  # R: position s holds cell s
    for j in range(n_stage):
        h = ref.srem_reorder(ref.dig_block(params, h, c, dig, stage * n_stage + j), j)
        cells = ref.srem_reorder(cells, j)
    order = cells.reshape(-1).long()                           # order[s] = cell at position s
    rows = torch.empty_like(h)
    rows[:, order] = h
    return rows


def fuse(params, h, skip, k):
    return ref.linear(torch.cat([h, skip], dim=-1), params, "skip_fuse.%d" % k)


def udig_forward(params, x, t, y, cfg):
    """x [N, C, E, E], t [N], y [N] -> [N, out, E, E] (docs/MODEL.md "U-DiG")."""
    dig, e = as_dig(cfg), cfg["input_size"]
    h = ref.patch_embed(params, x, dig)                        # [N, E*E, D]
    c = ref.condition(params, t, y)
    skip1 = run_stage(params, h, c, cfg, 0)
    h = ref.linear(token_merge(skip1, e), params, "downsample.0")
    skip2 = run_stage(params, h, c, cfg, 1)
    h = ref.linear(token_merge(skip2, e // 2), params, "downsample.1")
    h = run_stage(params, h, c, cfg, 2)
    h = depth_to_space(ref.linear(h, params, "upsample.0"), e // 4)
    h = run_stage(params, fuse(params, h, skip2, 0), c, cfg, 3)
    h = depth_to_space(ref.linear(h, params, "upsample.1"), e // 2)
    h = run_stage(params, fuse(params, h, skip1, 1), c, cfg, 4)
    return ref.final_layer(params, h, c, dig)


def forward(params, x, t, y, cfg):
    """Any arch: U-DiG here, DiG and DiT in dig_reference."""
    return udig_forward(params, x, t, y, cfg) if cfg["arch"] == "udig" else ref.forward(params, x, t, y, cfg)


def any_param_shapes(cfg):
    return param_shapes(cfg) if cfg["arch"] == "udig" else ref.param_shapes(cfg)
