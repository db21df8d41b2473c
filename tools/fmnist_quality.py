#!/usr/bin/python3
"""Sample quality of a Fashion-MNIST model, measured by an independent classifier.

    /usr/bin/python3 tools/fmnist_quality.py samples.npz|DIR [--labels labels.csv] [--json out.json]

Reads the samples that `digcl sample --npz` writes (uint8 [N, H, W, 3] under arr_0, the
intended labels under arr_1, or from a labels.csv of `--output-dir`), or a folder that
`digcl sample --output-dir` wrote (labels.csv and its PNGs, read with PIL), and reports
  (a) class accuracy: how often a small CNN classifier trained on Fashion-MNIST assigns a
      sample to its intended class (overall and per class);
  (b) Frechet distance (FD) between the classifier's penultimate features (128-d) of the
      samples and of the 10,000 test images, with the same formula as FID
      (|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))), computed in float64.
As a scale it also prints the FD of as many real training images as there are samples
against the test set: the floor a perfect generator reaches with that many samples (the
estimate is biased upwards for small N, so compare runs at the same N).

The classifier (two conv blocks, 128-d penultimate layer) is trained once on the 60,000
training images from Debian's dataset-fashion-mnist (3 epochs, about a minute or two on a
CPU core) and its weights cached under $XDG_CACHE_HOME/digcl (else ~/.cache/digcl), keyed by
the classifier version. Its test accuracy is printed with every report. Samples of 32x32
(Fashion-MNIST padded as the IDX loader does) are cropped to the centre 28x28 first.
See docs/TRAINING.md, "Sample quality".
"""
import argparse
import csv
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

CLASSIFIER_VERSION = 1
DATA_DIRS = ("/usr/share/datasets/fashion-mnist", "/usr/share/dataset-fashion-mnist")
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")


def read_idx(path):
    """An IDX file (optionally gzip'ed) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, rank = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def find_file(data_dir, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{data_dir}: no {stem}[.gz] (install dataset-fashion-mnist)")


def load_split(data_dir, split):
    images = read_idx(find_file(data_dir, f"{split}-images-idx3-ubyte"))
    labels = read_idx(find_file(data_dir, f"{split}-labels-idx1-ubyte"))
    return images, labels.astype(np.int64)


def to_tensor(images):
    """uint8 [N, 28, 28] -> float [N, 1, 28, 28] in [-1, 1] (the model's pixel range)."""
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        def block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                                 nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                                 nn.MaxPool2d(2))
        self.features = nn.Sequential(block(1, 16), block(16, 32), nn.Flatten(),
                                      nn.Dropout(0.25), nn.Linear(32 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        features = self.features(x)
        return self.head(features), features


def evaluate(model, x, batch=500):
    """(logits, penultimate features) for x [N, 1, 28, 28], in eval mode."""
    model.eval()
    logits, features = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out, feat = model(x[i:i + batch])
            logits.append(out)
            features.append(feat)
    return torch.cat(logits), torch.cat(features)


def train_classifier(data_dir, log):
    torch.manual_seed(0)
    images, labels = load_split(data_dir, "train")
    x, y = to_tensor(images), torch.from_numpy(labels)
    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs, batch = 3, 128
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, epochs=epochs,
                                                   steps_per_epoch=(len(x) + batch - 1) // batch)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            index = order[i:i + batch]
            xb = x[index]
            flip = torch.rand(len(xb)) < 0.5
            xb[flip] = xb[flip].flip(-1)
            loss = nn.functional.cross_entropy(model(xb)[0], y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        log(f"classifier epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.3f}")
    return model


def cache_path():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "digcl", f"fmnist_classifier_v{CLASSIFIER_VERSION}.pt")


def get_classifier(data_dir, log):
    """The cached classifier, trained first if needed; returns (model, test accuracy)."""
    path = cache_path()
    model = Classifier()
    if os.path.exists(path):
        model.load_state_dict(torch.load(path))
    else:
        log(f"training the Fashion-MNIST classifier once (cached in {path})")
        model = train_classifier(data_dir, log)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = path + ".tmp"
        torch.save(model.state_dict(), temp)
        os.replace(temp, path)
    images, labels = load_split(data_dir, "t10k")
    logits, _ = evaluate(model, to_tensor(images))
    accuracy = (logits.argmax(1).numpy() == labels).mean()
    return model, float(accuracy)


def matrix_sqrt_psd(m):
    values, vectors = np.linalg.eigh(m)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a, b):
    """FD between Gaussians fitted to feature rows a [N, F] and b [M, F] (float64)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return frechet_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def frechet_from_stats(mu_a, cov_a, mu_b, cov_b):
    root_a = matrix_sqrt_psd(cov_a)
    # tr((S_a S_b)^(1/2)) = tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), a symmetric PSD product.
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def read_labels_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "label" not in rows[0]:
        raise ValueError(f"{path}: expected a CSV with a 'label' column (digcl sample --output-dir)")
    return np.array([int(r["label"]) for r in rows], dtype=np.int64)


def load_folder(folder):
    """The PNGs and labels of a `digcl sample --output-dir` folder: uint8 [N, H, W, 3], labels."""
    from PIL import Image
    with open(os.path.join(folder, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    images = [np.asarray(Image.open(os.path.join(folder, r["file"])).convert("RGB")) for r in rows]
    return np.stack(images), np.array([int(r["label"]) for r in rows], dtype=np.int64)


def load_samples(npz_path, labels_path):
    """uint8 samples [N, 28, 28] (grey) and their intended labels [N]."""
    if os.path.isdir(npz_path):
        images, labels = load_folder(npz_path)
        return check_samples(npz_path, images, labels)
    with np.load(npz_path) as archive:
        if "arr_0" not in archive:
            raise ValueError(f"{npz_path}: no arr_0 (expected digcl sample --npz output)")
        images = archive["arr_0"]
        labels = archive["arr_1"] if "arr_1" in archive else None
    if labels_path:
        labels = read_labels_csv(labels_path)
    if labels is None:
        raise ValueError(f"{npz_path}: no arr_1 labels; pass --labels labels.csv")
    return check_samples(npz_path, images, labels)


def check_samples(npz_path, images, labels):
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3):
        raise ValueError(f"{npz_path}: arr_0 is {images.dtype} {images.shape}, expected uint8 [N, H, W, 3]")
    if len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} samples")
    grey = images.astype(np.float32).mean(axis=3)
    if grey.shape[1:] == (32, 32):
        grey = grey[:, 2:30, 2:30]
    if grey.shape[1:] != (28, 28):
        raise ValueError(f"{npz_path}: samples are {images.shape[1]}x{images.shape[2]}, expected 28x28 or 32x32")
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8), labels.astype(np.int64)


def report(args):
    log = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr))
    data_dir = args.data_dir or next((d for d in DATA_DIRS if os.path.isdir(d)), DATA_DIRS[0])
    samples, labels = load_samples(args.npz, args.labels)
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError("labels must be in [0, 10)")
    torch.set_num_threads(args.threads)
    model, test_accuracy = get_classifier(data_dir, log)
    logits, features = evaluate(model, to_tensor(samples))
    predicted = logits.argmax(1).numpy()
    test_images, _ = load_split(data_dir, "t10k")
    _, test_features = evaluate(model, to_tensor(test_images))
    train_images, _ = load_split(data_dir, "train")
    floor_rows = np.random.default_rng(0).choice(len(train_images), size=min(len(samples), len(train_images)),
                                                 replace=False)
    _, floor_features = evaluate(model, to_tensor(train_images[floor_rows]))
    per_class = {}
    for c in range(10):
        mask = labels == c
        if mask.any():
            per_class[CLASS_NAMES[c]] = float((predicted[mask] == c).mean())
    return {
        "samples": int(len(samples)),
        "classifier_test_accuracy": test_accuracy,
        "class_accuracy": float((predicted == labels).mean()),
        "per_class_accuracy": per_class,
        "frechet_distance": frechet_distance(features.numpy(), test_features.numpy()),
        "frechet_distance_floor_real": frechet_distance(floor_features.numpy(), test_features.numpy()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("npz", help="samples.npz of digcl sample --npz, or a folder of --output-dir")
    parser.add_argument("--labels", help="labels.csv (default: arr_1 of the .npz)")
    parser.add_argument("--data-dir", help="Fashion-MNIST IDX files (default: Debian's)")
    parser.add_argument("--json", help="also write the report as JSON here")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args()
    try:
        result = report(args)
    except (OSError, ValueError) as e:
        print(f"fmnist_quality: {e}", file=sys.stderr)
        return 1
    print(f"classifier test accuracy  {100 * result['classifier_test_accuracy']:.2f} %")
    print(f"samples                   {result['samples']}")
    print(f"class accuracy            {100 * result['class_accuracy']:.1f} %")
    print("per class                 " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in
                                                   result["per_class_accuracy"].items()))
    print(f"Frechet distance          {result['frechet_distance']:.3f}"
          f"  (floor: {result['samples']} real training images vs test {result['frechet_distance_floor_real']:.3f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
