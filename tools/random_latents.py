#!/usr/bin/env python3
"""Writes a latents data set of random values for benchmarks (`digcl train --data
latents:FILE`): `latents` [N, C, H, W] F32 from N(0, 1) and `labels` [N] I64, with no
dependency beyond Python (numpy is used when present). Example, DiG-S/2 at 256 px
(4 x 32 x 32 latents, 1000 classes):

    tools/random_latents.py bench-latents.safetensors --count 8192
"""
import argparse
import json
import random
import struct
import sys


def random_values(count, seed):
    try:
        import numpy as np
        return np.random.default_rng(seed).standard_normal(count, dtype=np.float32).tobytes()
    except ImportError:
        rng = random.Random(seed)
        return struct.pack("<%df" % count, *(rng.gauss(0.0, 1.0) for _ in range(count)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=8192)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    values = a.count * a.channels * a.size * a.size
    latents = random_values(values, a.seed)
    rng = random.Random(a.seed + 1)
    labels = struct.pack("<%dq" % a.count, *(rng.randrange(a.classes) for _ in range(a.count)))
    header = {
        "labels": {"dtype": "I64", "shape": [a.count], "data_offsets": [0, len(labels)]},
        "latents": {"dtype": "F32", "shape": [a.count, a.channels, a.size, a.size],
                    "data_offsets": [len(labels), len(labels) + len(latents)]},
        "__metadata__": {"num_classes": str(a.classes), "vae": "random"},
    }
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(a.out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + labels + latents)
    print("%s: %d latents of %d x %d x %d, %d classes" % (a.out, a.count, a.channels, a.size,
                                                          a.size, a.classes), file=sys.stderr)


if __name__ == "__main__":
    main()
