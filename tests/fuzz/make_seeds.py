#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_safetensors.c (pure Python, no deps).

usage: python3 tests/fuzz/make_seeds.py [OUTDIR]   (default tests/fuzz/corpus_safetensors)
"""
import json
import os
import struct
import sys

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "F64": 8, "U8": 1, "BOOL": 1}


def safetensors_bytes(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, offset, blobs = {}, 0, []
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def seeds():
    f32 = struct.pack("<6f", 1.0, -2.5, 0.0, 3.25, 1e-3, -7.0)
    yield "f32_meta", safetensors_bytes(
        [("a.weight", "F32", [2, 3], f32), ("b", "F32", [1], struct.pack("<f", 4.0))],
        {"dig.config": '{"arch":"dig","depth":4}', "format": "pt"})
    yield "f16_bf16", safetensors_bytes(
        [("h", "F16", [3], struct.pack("<3H", 0x3C00, 0xC000, 0x0001)),
         ("b", "BF16", [2], struct.pack("<2H", 0x3F80, 0xFF80))])
    yield "ints", safetensors_bytes(
        [("t", "I64", [2], struct.pack("<2q", 999, 0)), ("y", "I32", [2], struct.pack("<2i", 1000, 3)),
         ("m", "U8", [2, 2], bytes([0, 1, 2, 255])), ("flag", "BOOL", [], b"\x01")])
    yield "scalar_zero_size", safetensors_bytes(
        [("s", "F64", [], struct.pack("<d", 0.5)), ("empty", "F32", [0, 4], b""),
         ("z", "F32", [2], struct.pack("<2f", 1.0, 2.0))])
    yield "empty", safetensors_bytes([], None)
    yield "meta_only", safetensors_bytes([], {"k": "v"}, pad=False)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus_safetensors")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
