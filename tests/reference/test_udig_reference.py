#!/usr/bin/python3
"""Self-checks of the float64 U-DiG reference (run: /usr/bin/python3 tests/reference/test_udig_reference.py).

- preset counts equal a count written out from docs/MODEL.md "U-DiG" (plain DiG blocks, patch 1, six
  transition linears) and the numbers the C side prints (tests/test_model_config.c);
- token merge follows its definition element by element, depth-to-space inverts it;
- a stage of identity blocks is the identity for 1..8 blocks (its end restores R order), and a
  stage of position-marking blocks sees R, Rr, C, Cr, R, ... from its first block;
- with upstream's zero init (adaLN and final layer zero) the output is zero;
- the U-DiG committed fixtures reproduce (tests/reference/test_reference.py checks all of them).
"""
import math
import os
import sys
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dig_reference as ref  # noqa: E402
import udig_reference as udig  # noqa: E402


class CountTest(unittest.TestCase):
    def test_preset_counts(self):
        expected = {"S": (44325896, 43932680, 249), "B": (175060040, 174273608, 249),
                    "L": (505933896, 504885320, 399), "XL": (751222280, 750042632, 474)}
        for size, (total, trainable, tensors) in expected.items():
            cfg = udig.preset("U-DiG-" + size)
            self.assertEqual(udig.param_count(cfg), total, size)
            self.assertEqual(udig.param_count(cfg, trainable_only=True), trainable, size)
            self.assertEqual(len(udig.param_shapes(cfg)), tensors, size)

    def test_count_from_the_definition(self):
        for size, (depth, d, heads) in udig.SIZES.items():
            plain = ref.preset("DiG-%s/2" % size)
            block = (ref.param_count(dict(plain, depth=1)) - ref.param_count(dict(plain, depth=0)))
            c, tokens, out = 4, 32 * 32, 8
            embed = tokens * d + (d * c + d) + (256 * d + d + d * d + d) + 1001 * d
            final = (out * d + out) + (2 * d * d + 2 * d)
            transitions = 2 * (4 * d * d + d) + 2 * (4 * d * d + 4 * d) + 2 * (2 * d * d + d)
            self.assertEqual(udig.param_count(udig.preset("U-DiG-" + size)),
                             embed + depth * block + transitions + final, size)
        self.assertEqual(udig.preset("U-DiG-XL")["num_heads"], 18)


class GridTest(unittest.TestCase):
    def test_token_merge_definition(self):
        n, side, d = 2, 6, 3
        h = torch.randn(n, side * side, d, dtype=ref.DTYPE)
        merged = udig.token_merge(h, side)
        half = side // 2
        for i in range(half):
            for j in range(half):
                for dy in range(2):
                    for dx in range(2):
                        got = merged[:, i * half + j, (2 * dy + dx) * d:(2 * dy + dx + 1) * d]
                        want = h[:, (2 * i + dy) * side + 2 * j + dx]
                        self.assertTrue(torch.equal(got, want))
        self.assertTrue(torch.equal(udig.depth_to_space(merged, half), h))

    def test_stage_restores_rows(self):
        cfg = udig.make_config(depth=5, hidden_size=8, num_heads=2, input_size=8)
        seen = []

        def identity(params, h, c, cfg, i, skip=None):
            return h

        def marking(params, h, c, cfg, i, skip=None):
            seen.append(h[0, :, 0].long().tolist())
            return h

        original = ref.dig_block
        try:
            ref.dig_block = identity
            for n_stage in range(1, 9):
                cfg["depth"] = 5 * n_stage
                h = torch.randn(2, 36, 3, dtype=ref.DTYPE)
                self.assertTrue(torch.equal(udig.run_stage({}, h, None, cfg, 1), h), n_stage)
            ref.dig_block = marking
            cfg["depth"] = 30
            cells = torch.arange(16, dtype=ref.DTYPE).reshape(1, 16, 1)
            self.assertTrue(torch.equal(udig.run_stage({}, cells, None, cfg, 0), cells))
        finally:
            ref.dig_block = original
        grid = torch.arange(16).reshape(4, 4)
        orders = [grid.flatten(), grid.flatten().flip(0), grid.t().flatten(), grid.t().flatten().flip(0)]
        for j, cells_seen in enumerate(seen):
            self.assertEqual(cells_seen, orders[j % 4].tolist(), j)


class NetworkTest(unittest.TestCase):
    def test_zero_init_gives_zero_output(self):
        cfg = udig.make_config(depth=10, hidden_size=64, num_heads=2, input_size=8, num_classes=10)
        gen = torch.Generator().manual_seed(1)
        params = {n: torch.randn(s, generator=gen, dtype=ref.DTYPE) * 0.1 for n, s, _ in udig.param_shapes(cfg)}
        for name in params:
            if "adaLN_modulation" in name or name.startswith("final_layer"):
                params[name].zero_()
        out = udig.forward(params, torch.randn(2, 4, 8, 8, dtype=ref.DTYPE), torch.tensor([3, 999]),
                           torch.tensor([1, 10]), cfg)
        self.assertEqual(tuple(out.shape), (2, 8, 8, 8))
        self.assertEqual(float(out.abs().max()), 0.0)

    def test_gradients_reach_every_parameter(self):
        cfg = udig.make_config(depth=5, hidden_size=32, num_heads=2, input_size=8, num_classes=10)
        gen = torch.Generator().manual_seed(2)
        params = {n: (torch.randn(s, generator=gen, dtype=ref.DTYPE) * 0.2).requires_grad_(tr)
                  for n, s, tr in udig.param_shapes(cfg)}
        out = udig.forward(params, torch.randn(2, 4, 8, 8, dtype=ref.DTYPE), torch.tensor([3, 999]),
                           torch.tensor([1, 10]), cfg)
        out.pow(2).sum().backward()
        for name, p in params.items():
            if p.requires_grad:
                self.assertGreater(float(p.grad.abs().max()), 0.0, name)


if __name__ == "__main__":
    unittest.main()
