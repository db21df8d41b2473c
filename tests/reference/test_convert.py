#!/usr/bin/python3
"""Tests of tools/convert_pytorch.py (run: /usr/bin/python3 tests/reference/test_convert.py)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest
from argparse import Namespace

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import convert_pytorch  # noqa: E402
import dig_reference as ref  # noqa: E402

TINY = dict(depth=4, hidden_size=64, num_heads=2, patch_size=2, input_size=8, in_channels=4,
            num_classes=10, learn_sigma=True, skip=False)


def random_state(cfg, seed=0, prefix=""):
    gen = torch.Generator().manual_seed(seed)
    return {prefix + name: torch.randn(shape, generator=gen) for name, shape, _ in ref.param_shapes(cfg)}


def upstream_training_checkpoint(cfg, steps=2, seed=0):
    """model, ema, AdamW state after `steps` steps on random gradients, as upstream saves it."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(shape, generator=gen), requires_grad=name != "pos_embed")
              for name, shape, _ in ref.param_shapes(cfg)]
    names = [name for name, _, _ in ref.param_shapes(cfg)]
    opt = torch.optim.AdamW(params, lr=3e-4, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.01)
    for _ in range(steps):
        for p in params:
            if p.requires_grad:
                p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    model = {n: p.detach().clone() for n, p in zip(names, params)}
    ema = {n: t + 0.5 for n, t in model.items()}
    return {"model": model, "ema": ema, "opt": opt.state_dict(),
            "args": Namespace(model="DiG-S/2-bid-layer-dwconv-qdir", global_seed=3)}, params, opt


class ConvertTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def run_convert(self, *argv):
        return convert_pytorch.main(list(argv))

    def test_training_checkpoint_both_ways(self):
        cfg = ref.make_config("dig", **TINY)
        ckpt, params, opt = upstream_training_checkpoint(cfg)
        torch.save(ckpt, self.path("up.pt"))
        flags = ["--arch", "dig", "--depth", "4", "--hidden-size", "64", "--num-heads", "2",
                 "--input-size", "8", "--num-classes", "10"]
        out = self.path("train.safetensors")
        self.assertEqual(self.run_convert(self.path("up.pt"), out, "--training", "--steps-per-epoch", "3",
                                          *flags), 0)
        tensors, meta = ref.load_safetensors(out)
        state = json.loads(meta["train.state"])
        self.assertEqual((state["step"], state["epoch"], state["batch_in_epoch"]), (2, 0, 2))
        self.assertEqual(state["rng"]["seed"], "3")
        self.assertEqual(json.loads(meta["train.args"])["lr"], 3e-4)
        self.assertNotIn("opt.exp_avg.pos_embed", tensors)
        for name in ckpt["model"]:
            self.assertTrue(torch.equal(tensors[name], ckpt["model"][name]), name)
            self.assertTrue(torch.equal(tensors["ema." + name], ckpt["ema"][name]), name)
        back = self.path("back.pt")
        self.assertEqual(self.run_convert(out, back, "--to-pytorch"), 0)
        again = torch.load(back, map_location="cpu", weights_only=False)
        self.assertEqual(again["train_steps"], 2)
        # upstream resumes: the restored optimizer takes the same next step as the original
        names = [name for name, _, _ in ref.param_shapes(cfg)]
        restored = [torch.nn.Parameter(again["model"][n].clone(), requires_grad=n != "pos_embed") for n in names]
        opt2 = torch.optim.AdamW(restored, lr=1.0)
        opt2.load_state_dict(again["opt"])
        gen = torch.Generator().manual_seed(9)
        for p, q in zip(params, restored):
            if p.requires_grad:
                p.grad = torch.randn(p.shape, generator=gen)
                q.grad = p.grad.clone()
        opt.step()
        opt2.step()
        for n, p, q in zip(names, params, restored):
            self.assertTrue(torch.equal(p.detach(), q.detach()), n)
        self.assertNotEqual(self.run_convert(back, self.path("x.pt"), "--to-pytorch"), 0)

    def test_training_checkpoint_ema_and_model(self):
        cfg = ref.make_config("dig", **TINY)
        ckpt = {"model": random_state(cfg, 1, "module."), "ema": random_state(cfg, 2),
                "opt": {"state": {}}, "args": Namespace(model="DiG-S/2-bid-layer-dwconv-qdir")}
        torch.save(ckpt, self.path("ckpt.pt"))
        flags = ["--arch", "dig", "--depth", "4", "--hidden-size", "64", "--num-heads", "2",
                 "--input-size", "8", "--num-classes", "10"]
        for which in ("ema", "model"):
            out = self.path(which + ".safetensors")
            self.assertEqual(self.run_convert(self.path("ckpt.pt"), out, "--weights", which, *flags), 0)
            tensors, meta = ref.load_safetensors(out)
            source = ckpt[which]
            for name, tensor in tensors.items():
                key = name if which == "ema" else "module." + name
                self.assertEqual(tensor.dtype, torch.float32)
                self.assertTrue(torch.equal(tensor, source[key]), name)
            self.assertEqual(len(tensors), len(source))
            self.assertEqual(json.loads(meta["dig.config"]), cfg)
            self.assertEqual(meta["weights"], which)

    def test_bare_state_dict_with_preset_and_f16(self):
        cfg = ref.preset("DiT-S/8")
        cfg.update(input_size=16, depth=4, hidden_size=96)  # preset flags overridden: keep it small
        state = {k: v.half() for k, v in random_state(cfg, 3).items()}
        torch.save(state, self.path("dit.pt"))
        out = self.path("dit.safetensors")
        self.assertEqual(self.run_convert(self.path("dit.pt"), out, "--preset", "DiT-S/8", "--input-size", "16",
                                          "--depth", "4", "--hidden-size", "96"), 0)
        tensors, meta = ref.load_safetensors(out)
        self.assertTrue(torch.equal(tensors["blocks.3.attn.qkv.weight"], state["blocks.3.attn.qkv.weight"].float()))
        got = json.loads(meta["dig.config"])
        self.assertEqual(got["arch"], "dit")
        self.assertEqual(got["num_heads"], 6)
        self.assertIs(got["learn_sigma"], True)
        self.assertIs(got["skip"], False)

    def test_config_from_saved_args(self):
        cfg = ref.preset("DiG-S/8-skip")
        torch.save({"ema": random_state(cfg, 4), "model": {}, "args": Namespace(
            model="DiG-S/8-bid-layer-dwconv-qdir-skip", image_size=256)}, self.path("c.pt"))
        self.assertEqual(self.run_convert(self.path("c.pt"), self.path("c.safetensors")), 0)
        _, meta = ref.load_safetensors(self.path("c.safetensors"))
        self.assertEqual(json.loads(meta["dig.config"]), cfg)

    def test_mismatch_is_reported(self):
        cfg = ref.make_config("dig", **TINY)
        state = random_state(cfg, 5)
        state["blocks.0.attn.q_proj.weight"] = torch.zeros(3, 3)
        del state["pos_embed"]
        state["extra.weight"] = torch.zeros(2)
        torch.save(state, self.path("bad.pt"))
        args = convert_pytorch.parse_args([self.path("bad.pt"), self.path("bad.safetensors"), "--arch", "dig",
                                           "--depth", "4", "--hidden-size", "64", "--num-heads", "2",
                                           "--input-size", "8", "--num-classes", "10"])
        with self.assertRaises(convert_pytorch.ConvertError) as e:
            convert_pytorch.convert(args)
        text = str(e.exception)
        self.assertIn("missing tensor 'pos_embed' (expected shape [1, 16, 64])", text)
        self.assertIn("tensor 'blocks.0.attn.q_proj.weight' has shape [3, 3], expected [32, 64]", text)
        self.assertIn("unexpected tensor 'extra.weight' [2]", text)
        self.assertFalse(os.path.exists(self.path("bad.safetensors")))

    def test_errors_exit_nonzero(self):
        torch.save({"model": {}}, self.path("empty.pt"))
        with open(self.path("junk.pt"), "wb") as f:
            f.write(b"not a checkpoint")
        self.assertEqual(self.run_convert(self.path("junk.pt"), self.path("o.safetensors"), "--preset", "DiG-S/2"), 1)
        self.assertEqual(self.run_convert(self.path("empty.pt"), self.path("o.safetensors"), "--preset", "DiG-S/2"), 1)
        self.assertEqual(self.run_convert(self.path("empty.pt"), self.path("o.safetensors"), "--weights", "model",
                                          "--preset", "DiG-Q/2"), 1)

    def test_command_line(self):
        cfg = ref.make_config("dig", **TINY)
        torch.save(random_state(cfg, 6), self.path("s.pt"))
        result = subprocess.run([sys.executable, os.path.join(HERE, "..", "..", "tools", "convert_pytorch.py"),
                                 self.path("s.pt"), self.path("s.safetensors"), "--preset", "DiG-S/2",
                                 "--depth", "4", "--hidden-size", "64", "--num-heads", "2", "--input-size", "8",
                                 "--num-classes", "10"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("wrote", result.stdout)


if __name__ == "__main__":
    unittest.main()
