#!/usr/bin/python3
"""Self-checks of tools/fmnist_quality.py that need no trained classifier (ctest
fmnist_quality_py): the Frechet distance against closed forms, the .npz and folder loaders
(32x32 crop, grey from RGB, label sources) and their errors."""
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_quality as q  # noqa: E402


def check_frechet():
    eye = np.eye(3)
    # commuting: |mu|^2 + tr(I) + tr(4I) - 2 tr(2I) = 3 + 3 + 12 - 12
    assert abs(q.frechet_from_stats(np.zeros(3), eye, np.ones(3), 4 * eye) - 6.0) < 1e-9
    # non-commuting: tr((S1 S2)^(1/2)) = sum of the square roots of S1 S2's eigenvalues
    s1, s2 = np.diag([1.0, 4.0]), np.array([[2.0, 1.0], [1.0, 2.0]])
    want = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.linalg.eigvals(s1 @ s2).real).sum()
    assert abs(q.frechet_from_stats(np.zeros(2), s1, np.zeros(2), s2) - want) < 1e-9
    rows = np.random.default_rng(0).normal(size=(500, 4))
    assert abs(q.frechet_distance(rows, rows)) < 1e-9
    assert q.frechet_distance(rows, rows + 1.0) > 3.9  # mean shift of 1 in 4 dims


def check_loaders(tmp):
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (5, 32, 32), dtype=np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=3)
    labels = np.array([3, 1, 4, 1, 5])
    path = os.path.join(tmp, "s.npz")
    np.savez(path, rgb, labels)
    images, got = q.load_samples(path, None)
    assert images.shape == (5, 28, 28) and (images == grey[:, 2:30, 2:30]).all()
    assert list(got) == [3, 1, 4, 1, 5]
    with open(os.path.join(tmp, "labels.csv"), "w") as f:
        f.write("image,file,label,class_name\n")
        for i, y in enumerate(labels):
            f.write(f"{i},{i:06d}.png,{(y + 1) % 10},x\n")
    _, got = q.load_samples(path, os.path.join(tmp, "labels.csv"))
    assert list(got) == [4, 2, 5, 2, 6]
    from PIL import Image
    for i in range(5):
        Image.fromarray(grey[i, 2:30, 2:30]).save(os.path.join(tmp, f"{i:06d}.png"))
    images, got = q.load_samples(tmp, None)
    assert images.shape == (5, 28, 28) and (images == grey[:, 2:30, 2:30]).all()
    assert list(got) == [4, 2, 5, 2, 6]
    np.savez(path, rgb[:, :20, :20])
    for bad, message in ((path, "no arr_1 labels"),):
        try:
            q.load_samples(bad, None)
        except ValueError as e:
            assert message in str(e), e
        else:
            raise AssertionError("expected a ValueError")
    np.savez(path, rgb[:, :20, :20], labels)
    try:
        q.load_samples(path, None)
    except ValueError as e:
        assert "expected 28x28 or 32x32" in str(e), e
    else:
        raise AssertionError("expected a ValueError")


def main():
    check_frechet()
    with tempfile.TemporaryDirectory() as tmp:
        check_loaders(tmp)
    print("fmnist_quality self-checks passed")


if __name__ == "__main__":
    main()
