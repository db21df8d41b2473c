#!/usr/bin/python3
"""Converts an upstream DiG/DiT PyTorch checkpoint to digcl safetensors (F32).

usage:
  /usr/bin/python3 tools/convert_pytorch.py CKPT.pt OUT.safetensors --preset DiG-S/2 [--weights ema]
  /usr/bin/python3 tools/convert_pytorch.py CKPT.pt OUT.safetensors --arch dig --depth 12 \\
      --hidden-size 384 --num-heads 6 --patch-size 2 --input-size 32

CKPT is either an upstream training checkpoint (a dict with 'model', 'ema', 'opt', 'args'
entries; hustvl/DiG train-multi-nodes.py and facebookresearch/DiT train.py save this) or a bare
state_dict (as DiT's download.py gives for DiT-XL/2). --weights picks 'ema' (default; what
upstream samples with) or 'model' from a training checkpoint. DDP "module." prefixes are removed.

The config comes from --preset (DiG-S/2, DiG-XL/2-skip, DiT-B/4, ...), or --arch with the size
flags, or (when neither is given) from the checkpoint's saved args (args.model, args.image_size).
Flags given next to --preset override it. Every tensor name and shape is checked against the
config's upstream state_dict (tests/reference/dig_reference.py param_shapes); any missing,
unexpected or misshaped tensor is an error naming it. The config is stored as JSON under
__metadata__["dig.config"], which digcl reads back.

Training checkpoints, both ways (a run started in PyTorch continues in digcl and back):
  /usr/bin/python3 tools/convert_pytorch.py CKPT.pt OUT.safetensors --training [config flags]
      upstream's {'model', 'ema', 'opt' (AdamW state_dict), 'args'} -> a digcl training
      checkpoint: the weights, ema.<name>, opt.exp_avg.<name>, opt.exp_avg_sq.<name> and
      train.state (step = the optimizer's step; --steps-per-epoch E places the data position,
      else the data order restarts at epoch 0) and train.args (lr, betas, eps, wd of the
      optimizer).
  /usr/bin/python3 tools/convert_pytorch.py CKPT.safetensors OUT.pt --to-pytorch
      a digcl training checkpoint -> {'model', 'ema', 'opt', 'args', 'train_steps'} that
      upstream's train.py resumes with model.load_state_dict, ema.load_state_dict and
      opt.load_state_dict (optimizer indices follow model.parameters(), i.e. the state_dict
      order; the frozen pos_embed has no optimizer state).

Needs Debian's python3-torch (run with /usr/bin/python3); no other packages.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("convert_pytorch.py: needs torch; run it with /usr/bin/python3 (Debian python3-torch)")
import dig_reference as ref  # noqa: E402

SIZE_FLAGS = ("depth", "hidden_size", "num_heads", "patch_size", "input_size", "in_channels",
              "num_classes")


class ConvertError(Exception):
    pass


def load_checkpoint(path):
    try:
        return torch.load(path, map_location="cpu")
    except Exception as e:  # pickle, zip and file errors alike
        raise ConvertError("%s: cannot load as a PyTorch checkpoint: %s" % (path, e))


def is_state_dict(obj):
    return isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())


def pick_state_dict(ckpt, which, path):
    """The 'model' or 'ema' entry of a training checkpoint, or the checkpoint itself."""
    if is_state_dict(ckpt):
        return ckpt
    if not isinstance(ckpt, dict):
        raise ConvertError("%s: expected a dict (training checkpoint or state_dict), got %s"
                           % (path, type(ckpt).__name__))
    if which not in ckpt:
        raise ConvertError("%s: no '%s' entry (keys: %s)" % (path, which, ", ".join(map(str, ckpt))))
    if not is_state_dict(ckpt[which]):
        raise ConvertError("%s: entry '%s' is not a state_dict of tensors" % (path, which))
    return ckpt[which]


def strip_prefixes(state):
    """Removes DDP/compile prefixes ("module.", "_orig_mod.") from every key."""
    out = {}
    for name, tensor in state.items():
        for prefix in ("module.", "_orig_mod."):
            while name.startswith(prefix):
                name = name[len(prefix):]
        if name in out:
            raise ConvertError("tensor '%s' appears twice after removing prefixes" % name)
        out[name] = tensor
    return out


def config_from_saved_args(ckpt):
    """Upstream saves argparse args: args.model ('DiG-S/2-bid-layer-dwconv-qdir'), args.image_size."""
    args = ckpt.get("args") if isinstance(ckpt, dict) else None
    model = getattr(args, "model", None)
    if not model:
        return None
    name = model.replace("-bid-layer-dwconv-qdir", "").replace("-head18", "")
    cfg = ref.preset(name)
    image_size = getattr(args, "image_size", None)
    if image_size:
        cfg["input_size"] = image_size // 8  # VAE downsampling factor 8
    num_classes = getattr(args, "num_classes", None)
    if num_classes:
        cfg["num_classes"] = num_classes
    return cfg


def build_config(args, ckpt):
    if args.preset:
        try:
            cfg = ref.preset(args.preset.replace("-bid-layer-dwconv-qdir", "").replace("-head18", ""))
        except ValueError as e:
            raise ConvertError(str(e))
    elif args.arch:
        missing = [f for f in ("depth", "hidden_size", "num_heads") if getattr(args, f) is None]
        if missing:
            raise ConvertError("--arch needs --%s" % ", --".join(m.replace("_", "-") for m in missing))
        cfg = ref.make_config(args.arch, args.depth, args.hidden_size, args.num_heads)
    else:
        cfg = config_from_saved_args(ckpt)
        if cfg is None:
            raise ConvertError("no config: give --preset or --arch (the checkpoint has no saved args.model)")
    for flag in SIZE_FLAGS:
        if getattr(args, flag) is not None:
            cfg[flag] = getattr(args, flag)
    if args.learn_sigma is not None:
        cfg["learn_sigma"] = args.learn_sigma
    if args.skip is not None:
        cfg["skip"] = args.skip
    try:
        return ref.make_config(**cfg)
    except (TypeError, ValueError) as e:
        raise ConvertError("bad config: %s" % e)


def check_against_config(state, cfg, path):
    """Every expected name present with its shape, nothing unexpected."""
    expected = {name: tuple(shape) for name, shape, _ in ref.param_shapes(cfg)}
    problems = []
    for name, shape in expected.items():
        if name not in state:
            problems.append("missing tensor '%s' (expected shape %s)" % (name, list(shape)))
        elif tuple(state[name].shape) != shape:
            problems.append("tensor '%s' has shape %s, expected %s"
                            % (name, list(state[name].shape), list(shape)))
    problems += ["unexpected tensor '%s' %s" % (n, list(state[n].shape)) for n in state if n not in expected]
    if problems:
        shown = problems[:10] + (["... %d more" % (len(problems) - 10)] if len(problems) > 10 else [])
        raise ConvertError("%s does not match config %s:\n  %s"
                           % (path, json.dumps(cfg, separators=(",", ":")), "\n  ".join(shown)))


def to_f32(state, path):
    out = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            raise ConvertError("%s: tensor '%s' has dtype %s, expected floating point" % (path, name, tensor.dtype))
        out[name] = tensor.detach().to(torch.float32).contiguous()
    return out


def convert(args):
    ckpt = load_checkpoint(args.input)
    state = strip_prefixes(pick_state_dict(ckpt, args.weights, args.input))
    cfg = build_config(args, ckpt)
    check_against_config(state, cfg, args.input)
    metadata = {"dig.config": json.dumps(cfg, separators=(",", ":")),
                "source": os.path.basename(args.input), "weights": args.weights,
                "converter": "digcl tools/convert_pytorch.py"}
    ref.save_safetensors(args.output, to_f32(state, args.input), metadata)
    return cfg, len(state)


# ---------------------------------------------------------------- training checkpoints

EMA, EXP_AVG, EXP_AVG_SQ = "ema.", "opt.exp_avg.", "opt.exp_avg_sq."


def frozen(name):
    return name == "pos_embed"


def opt_state_by_name(opt, names, path):
    """{name: (exp_avg, exp_avg_sq)} and the step from an AdamW state_dict."""
    if not isinstance(opt, dict) or "state" not in opt or "param_groups" not in opt:
        raise ConvertError("%s: 'opt' is not an optimizer state_dict" % path)
    order = [i for g in opt["param_groups"] for i in g["params"]]
    if len(order) != len(names):
        raise ConvertError("%s: the optimizer holds %d parameters, the model %d" % (path, len(order), len(names)))
    moments, steps = {}, set()
    for index, name in zip(order, names):
        entry = opt["state"].get(index)
        if entry is None:
            if not frozen(name):
                raise ConvertError("%s: no optimizer state for '%s' (index %d)" % (path, name, index))
            continue
        moments[name] = (entry["exp_avg"], entry["exp_avg_sq"])
        steps.add(int(torch.as_tensor(entry["step"]).item()))
    if len(steps) != 1:
        raise ConvertError("%s: optimizer steps differ between parameters: %s" % (path, sorted(steps)))
    group = opt["param_groups"][0]
    hyper = {"lr": group.get("lr"), "beta1": group["betas"][0], "beta2": group["betas"][1],
             "adam_eps": group.get("eps"), "wd": group.get("weight_decay")}
    return moments, steps.pop(), hyper


def train_state_json(step, steps_per_epoch, seed):
    epoch, position = (step // steps_per_epoch, step % steps_per_epoch) if steps_per_epoch else (0, 0)
    return json.dumps({"step": step, "epoch": epoch, "batch_in_epoch": position,
                       "rng": {"generator": "philox4x32-10", "seed": str(seed), "step": step,
                               "data_order_epoch": epoch},
                       "log_interval": {"count": 0, "loss": 0, "mse": 0, "vb": 0, "grad_norm": 0,
                                        "data_wait_ms": 0}}, separators=(",", ":"))


def to_digcl_training(args):
    ckpt = load_checkpoint(args.input)
    if not isinstance(ckpt, dict) or not all(k in ckpt for k in ("model", "ema", "opt")):
        raise ConvertError("%s: --training needs an upstream training checkpoint with 'model', 'ema' and "
                           "'opt'" % args.input)
    cfg = build_config(args, ckpt)
    model = strip_prefixes(pick_state_dict(ckpt, "model", args.input))
    ema = strip_prefixes(pick_state_dict(ckpt, "ema", args.input))
    check_against_config(model, cfg, args.input + " ('model')")
    check_against_config(ema, cfg, args.input + " ('ema')")
    names = [name for name, _, _ in ref.param_shapes(cfg)]
    moments, step, hyper = opt_state_by_name(ckpt["opt"], names, args.input)
    tensors = dict(to_f32(model, args.input))
    tensors.update({EMA + n: t for n, t in to_f32(ema, args.input).items()})
    for name, (m, v) in moments.items():
        tensors[EXP_AVG + name] = m.detach().to(torch.float32).contiguous()
        tensors[EXP_AVG_SQ + name] = v.detach().to(torch.float32).contiguous()
    saved = ckpt.get("args")
    seed = int(getattr(saved, "global_seed", 0) or 0) if saved is not None else 0
    train_args = dict(hyper, global_seed=seed)
    metadata = {"dig.config": json.dumps(cfg, separators=(",", ":")),
                "train.state": train_state_json(step, args.steps_per_epoch, seed),
                "train.args": json.dumps(train_args, separators=(",", ":")),
                "source": os.path.basename(args.input), "converter": "digcl tools/convert_pytorch.py"}
    ref.save_safetensors(args.output, tensors, metadata)
    return cfg, len(tensors)


def to_pytorch(args):
    from argparse import Namespace
    try:
        tensors, meta = ref.load_safetensors(args.input)
    except Exception as e:  # not safetensors at all
        raise ConvertError("%s: cannot read as safetensors: %s" % (args.input, e))
    if "train.state" not in meta or "dig.config" not in meta:
        raise ConvertError("%s: not a digcl training checkpoint (no train.state / dig.config metadata)"
                           % args.input)
    cfg = ref.make_config(**json.loads(meta["dig.config"]))
    step = json.loads(meta["train.state"])["step"]
    train_args = json.loads(meta.get("train.args", "{}"))
    names = [name for name, _, _ in ref.param_shapes(cfg)]
    model = {n: tensors[n] for n in names if n in tensors}
    ema = {n[len(EMA):]: t for n, t in tensors.items() if n.startswith(EMA)}
    check_against_config(model, cfg, args.input)
    check_against_config(ema, cfg, args.input + " (ema.)")
    state = {}
    for index, name in enumerate(names):
        if frozen(name):
            continue
        if EXP_AVG + name not in tensors or EXP_AVG_SQ + name not in tensors:
            raise ConvertError("%s: no optimizer moments for '%s'" % (args.input, name))
        state[index] = {"step": torch.tensor(float(step)), "exp_avg": tensors[EXP_AVG + name],
                        "exp_avg_sq": tensors[EXP_AVG_SQ + name]}
    group = {"lr": train_args.get("lr", 1e-4),
             "betas": (train_args.get("beta1", 0.9), train_args.get("beta2", 0.999)),
             "eps": train_args.get("adam_eps", 1e-8), "weight_decay": train_args.get("wd", 0.0),
             "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
             "differentiable": False, "fused": None, "params": list(range(len(names)))}
    upstream_name = "%s-%s/%d" % (cfg["arch"].replace("dig", "DiG").replace("dit", "DiT"),
                                  "custom", cfg["patch_size"])
    ckpt = {"model": model, "ema": ema, "opt": {"state": state, "param_groups": [group]},
            "args": Namespace(model=upstream_name, image_size=cfg["input_size"] * 8,
                              num_classes=cfg["num_classes"]),
            "train_steps": step}
    torch.save(ckpt, args.output)
    return cfg, len(model)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("input", help="upstream .pt checkpoint or state_dict")
    p.add_argument("output", help="output .safetensors")
    p.add_argument("--weights", choices=("ema", "model"), default="ema",
                   help="which weights of a training checkpoint (default ema)")
    p.add_argument("--preset", help="DiG-S/2, DiG-XL/2-skip, DiT-B/4, ... (sizes S B L XL, patch 2 4 8)")
    p.add_argument("--arch", choices=("dig", "dit"))
    for flag in SIZE_FLAGS:
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, type=int)
    p.add_argument("--learn-sigma", dest="learn_sigma", action="store_true", default=None)
    p.add_argument("--no-learn-sigma", dest="learn_sigma", action="store_false")
    p.add_argument("--skip", dest="skip", action="store_true", default=None, help="DiG long skips")
    p.add_argument("--no-skip", dest="skip", action="store_false")
    p.add_argument("--training", action="store_true",
                   help="upstream training checkpoint -> digcl training checkpoint (model, EMA, AdamW)")
    p.add_argument("--to-pytorch", action="store_true",
                   help="digcl training checkpoint (.safetensors) -> upstream training checkpoint (.pt)")
    p.add_argument("--steps-per-epoch", type=int, default=0,
                   help="--training: batches per epoch, to place the data position (default: epoch 0)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.training and args.to_pytorch:
            raise ConvertError("--training and --to-pytorch are opposite directions; give one")
        cfg, count = (to_digcl_training if args.training else to_pytorch if args.to_pytorch
                      else convert)(args)
    except ConvertError as e:
        print("convert_pytorch.py: error: %s" % e, file=sys.stderr)
        return 1
    print("wrote %s: %d tensors, %d parameters, config %s"
          % (args.output, count, ref.param_count(cfg), json.dumps(cfg, separators=(",", ":"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
