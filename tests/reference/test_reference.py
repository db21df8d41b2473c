#!/usr/bin/python3
"""Self-checks of the float64 reference (run: /usr/bin/python3 tests/reference/test_reference.py).

- parameter counts equal param_counts.txt; names/shapes equal the upstream state_dict dumps;
- the per-token GLA recurrence equals an independent closed form;
- SREM: block i sees R, Rr, C, Cr for i mod 4 = 0..3, and depth 4 ends in R;
- unpatchify inverts patchify; the sin-cos table matches its formula;
- with upstream's zero init (adaLN and final layer zero) the output is zero;
- the committed fixtures load and agree with a fresh forward pass.
"""
import json
import math
import os
import sys
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dig_reference as ref  # noqa: E402
import make_fixtures  # noqa: E402
import udig_reference as udig  # noqa: E402


def read_state_dict_dump(name):
    rows = []
    with open(os.path.join(HERE, name)) as f:
        for line in f:
            if line.strip():
                key, shape = line.rstrip("\n").split("\t")
                rows.append((key, tuple(json.loads(shape))))
    return rows


class ShapesTest(unittest.TestCase):
    def test_param_counts(self):
        with open(os.path.join(HERE, "param_counts.txt")) as f:
            rows = [l.split("\t") for l in f if l.strip() and not l.startswith("#")]
        self.assertEqual(len(rows), 12)
        for name, total, _, trainable, _ in rows:
            cfg = ref.preset(name)
            self.assertEqual(ref.param_count(cfg), int(total), name)
            self.assertEqual(ref.param_count(cfg, trainable_only=True), int(trainable), name)

    def test_state_dict_names(self):
        for preset, dump in (("DiG-S/2", "dig_s2_state_dict.txt"), ("DiT-S/2", "dit_s2_state_dict.txt")):
            got = [(n, tuple(s)) for n, s, _ in ref.param_shapes(ref.preset(preset))]
            self.assertEqual(got, read_state_dict_dump(dump))


class GlaTest(unittest.TestCase):
    def test_recurrence_matches_closed_form(self):
        gen = torch.Generator().manual_seed(0)
        n, nh, t_len, dk, dv = 2, 3, 7, 4, 5
        q, k = (torch.randn(n, nh, t_len, dk, generator=gen, dtype=ref.DTYPE) for _ in range(2))
        v = torch.randn(n, nh, t_len, dv, generator=gen, dtype=ref.DTYPE)
        g = torch.nn.functional.logsigmoid(torch.randn(n, nh, t_len, dk, generator=gen, dtype=ref.DTYPE)) / 16
        cum = g.cumsum(2)  # o_t = sum_{s<=t} (q_t * exp(G_t - G_s) . k_s) v_s * dk^-0.5
        want = torch.zeros(n, nh, t_len, dv, dtype=ref.DTYPE)
        for t in range(t_len):
            for s in range(t + 1):
                score = (q[:, :, t] * torch.exp(cum[:, :, t] - cum[:, :, s]) * k[:, :, s]).sum(-1)
                want[:, :, t] += score.unsqueeze(-1) * v[:, :, s] * dk ** -0.5
        self.assertTrue(torch.allclose(ref.gla_recurrence(q, k, v, g), want, rtol=1e-12, atol=1e-12))


class LayoutTest(unittest.TestCase):
    def test_srem_orders(self):
        e = 3
        idx = torch.arange(e * e, dtype=ref.DTYPE).reshape(1, e * e, 1)
        r = list(range(e * e))
        c = [row * e + col for col in range(e) for row in range(e)]  # transposed grid, row-major
        expected = [r, r[::-1], c, c[::-1]]
        h = idx
        for i in range(8):
            self.assertEqual([int(v) for v in h.flatten()], expected[i % 4], "block %d" % i)
            h = ref.srem_reorder(h, i)
        self.assertEqual([int(v) for v in h.flatten()], r)

    def test_unpatchify_inverts_patchify(self):
        cfg = ref.make_config("dig", depth=4, hidden_size=64, num_heads=2, patch_size=2, input_size=6,
                              in_channels=2, num_classes=3, learn_sigma=False)
        x = torch.randn(2, 2, 6, 6, dtype=ref.DTYPE)
        p, e = 2, 3  # token (row, col) holds its p x p patch, flattened (p, q, c)
        tokens = x.reshape(2, 2, e, p, e, p).permute(0, 2, 4, 3, 5, 1).reshape(2, e * e, p * p * 2)
        self.assertTrue(torch.equal(ref.unpatchify(tokens, cfg), x))

    def test_sincos_table(self):
        d, e = 16, 4
        table = ref.sincos_pos_embed(d, e)
        for t in range(e * e):
            row, col = divmod(t, e)
            for i in range(d // 4):
                w = 1.0 / 10000 ** (i / (d / 4))
                self.assertAlmostEqual(float(table[t, i]), math.sin(col * w), places=12)
                self.assertAlmostEqual(float(table[t, d // 4 + i]), math.cos(col * w), places=12)
                self.assertAlmostEqual(float(table[t, d // 2 + i]), math.sin(row * w), places=12)
                self.assertAlmostEqual(float(table[t, 3 * d // 4 + i]), math.cos(row * w), places=12)


class NetworkTest(unittest.TestCase):
    def test_zero_init_gives_zero_output(self):
        for arch in ("dig", "dit"):
            cfg = ref.make_config(arch, depth=4, hidden_size=64, num_heads=2, patch_size=2, input_size=8,
                                  in_channels=4, num_classes=10)
            gen = torch.Generator().manual_seed(1)
            params = {n: torch.randn(s, generator=gen, dtype=ref.DTYPE) * 0.1 for n, s, _ in ref.param_shapes(cfg)}
            for name in params:
                if "adaLN_modulation" in name or name.startswith("final_layer"):
                    params[name].zero_()
            x = torch.randn(2, 4, 8, 8, dtype=ref.DTYPE)
            out = ref.forward(params, x, torch.tensor([3, 999]), torch.tensor([1, 10]), cfg)
            self.assertEqual(tuple(out.shape), (2, 8, 8, 8))
            self.assertEqual(float(out.abs().max()), 0.0)

    def test_committed_fixtures_reproduce(self):
        folder = os.path.join(HERE, "fixtures_committed")
        with open(os.path.join(folder, "manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual(set(manifest["fixtures"]), set(make_fixtures.fixture_configs("small")))
        total = 0
        for name in manifest["fixtures"]:
            weights, meta = ref.load_safetensors(os.path.join(folder, name, "weights.safetensors"))
            inputs, _ = ref.load_safetensors(os.path.join(folder, name, "inputs.safetensors"))
            expected, _ = ref.load_safetensors(os.path.join(folder, name, "expected.safetensors"))
            cfg = json.loads(meta["dig.config"])
            self.assertEqual(cfg, make_fixtures.fixture_configs("small")[name])
            params = {k: v.to(ref.DTYPE) for k, v in weights.items()}
            out = udig.forward(params, inputs["x"].to(ref.DTYPE), inputs["t"], inputs["y"], cfg)
            self.assertTrue(torch.allclose(out.float(), expected["out"], rtol=1e-5, atol=1e-6), name)
            names = {n for n, _, tr in udig.any_param_shapes(cfg) if tr}
            self.assertEqual({k[5:] for k in expected if k.startswith("grad.") and k != "grad.x"}, names)
            self.assertEqual(int(inputs["y"][1]), cfg["num_classes"])
            total += sum(os.path.getsize(os.path.join(folder, name, f)) for f in os.listdir(os.path.join(folder, name)))
        self.assertLess(total, 9 * 1024 * 1024)  # 4.8 MiB DiG/DiT + 3.7 MiB U-DiG


if __name__ == "__main__":
    unittest.main()
