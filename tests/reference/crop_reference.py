#!/usr/bin/env python3
"""PIL reference for digcl's image-folder preprocessing (src/data/).

Writes small test images of every kind digcl decodes and, for each image and
crop size S, the expected S x S result of the upstream pipeline: torchvision's
ImageFolder loader (PIL Image.open(f).convert("RGB"), or "L" for one channel)
followed by ADM's center_crop_arr (guided-diffusion image_datasets.py, as in
DiT's and DiG's train.py). Expected crops are written as 8-bit PNGs named
<image>.<S>.<channels>.png.

  crop_reference.py OUT_DIR            write the fixtures (tests/reference/crop)
  crop_reference.py --check DIR        recompute the expected crops of DIR with
                                       this PIL and compare (exit 1 on a change)
  crop_reference.py --photo OUT F.jpg ...  expected crops of real photos into OUT
                                       (for measuring, never committed)
  crop_reference.py --bench-jpegs OUT N  N photo-like 341x256 JPEGs (quality 90) in two
                                       class folders, for `digcl bench data`
"""
import os
import sys

import numpy as np
from PIL import Image

SIZES = (16, 32, 64)


def center_crop_arr(pil_image, image_size):
    """ADM's center_crop_arr, verbatim (guided_diffusion/image_datasets.py)."""
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size),
                                 resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]


def photo_like(rng, h, w):
    """Smooth colour fields, hard edges and fine texture: what resampling sees in photos."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(4):
            fy, fx, ph = rng.uniform(0.5, 6, 2).tolist() + [rng.uniform(0, 6.3)]
            img[..., c] += np.sin(2 * np.pi * (fy * y / h + fx * x / w) + ph)
    img = 128 + 30 * img
    for _ in range(6):  # discs and bars with sharp borders
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, max(3, min(h, w) / 3))
        mask = (y - cy) ** 2 + (x - cx) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img[:, :: max(2, w // 9)] = 250
    img += rng.normal(0, 12, img.shape)  # sensor-like noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_images(out_dir):
    rng = np.random.default_rng(20240529)
    files = []

    def save(name, image, **kw):
        image.save(os.path.join(out_dir, name), **kw)
        files.append(name)

    save("photo_257x193.jpg", Image.fromarray(photo_like(rng, 193, 257)), quality=90)
    save("photo_150x150.png", Image.fromarray(photo_like(rng, 150, 150)))
    save("odd_67x45.png", Image.fromarray(photo_like(rng, 45, 67)))
    save("tiny_5x7.png", Image.fromarray(photo_like(rng, 7, 5)))
    save("wide_300x23.png", Image.fromarray(photo_like(rng, 23, 300)))
    save("tall_19x140.jpg", Image.fromarray(photo_like(rng, 140, 19)), quality=95)
    grey = photo_like(rng, 77, 101)[..., 0]
    save("grey_101x77.png", Image.fromarray(grey, "L"))
    save("grey_90x70.jpg", Image.fromarray(photo_like(rng, 70, 90)[..., 1], "L"), quality=92)
    rgba = np.dstack([photo_like(rng, 40, 48), rng.integers(0, 256, (40, 48), dtype=np.uint8)])
    save("rgba_48x40.png", Image.fromarray(rgba, "RGBA"))
    la = np.dstack([grey[:33, :35], grey[:33, :35][::-1]])
    save("grey_alpha_35x33.png", Image.fromarray(la, "LA"))
    save("palette_70x50.png", Image.fromarray(photo_like(rng, 50, 70)).quantize(colors=37))
    save("cmyk_64x48.jpg", Image.fromarray(photo_like(rng, 48, 64)).convert("CMYK"), quality=95)
    # 16-bit RGB through a raw PNG writer (PIL cannot write 16-bit RGB)
    files.append(write_png16(os.path.join(out_dir, "rgb16_40x36.png"), rng.integers(
        0, 65536, (36, 40, 3), dtype=np.uint16)))
    return files


def write_png16(path, array):
    import struct
    import zlib
    h, w, _ = array.shape
    raw = b"".join(b"\0" + array[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    return os.path.basename(path)


def expected(path, size, channels):
    with open(path, "rb") as f:
        image = Image.open(f).convert("RGB" if channels == 3 else "L")
    return center_crop_arr(image, size)


def cases(files):
    for name in files:
        for size in SIZES:
            for channels in (3, 1):
                if channels == 1 and size != 32:
                    continue
                yield name, size, channels


def expected_name(name, size, channels):
    return f"{name}.{size}.{channels}.png"


def write(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    files = make_images(out_dir)
    with open(os.path.join(out_dir, "cases.txt"), "w") as listing:
        listing.write("# image size channels expected (crop_reference.py)\n")
        for name, size, channels in cases(files):
            arr = expected(os.path.join(out_dir, name), size, channels)
            out = expected_name(name, size, channels)
            Image.fromarray(arr).save(os.path.join(out_dir, out))
            listing.write(f"{name} {size} {channels} {out}\n")
    print(f"wrote {len(files)} images and their crops to {out_dir}")


def check(directory):
    bad = 0
    count = 0
    with open(os.path.join(directory, "cases.txt")) as listing:
        for line in listing:
            if line.startswith("#") or not line.strip():
                continue
            name, size, channels, out = line.split()
            want = np.array(Image.open(os.path.join(directory, out)))
            got = expected(os.path.join(directory, name), int(size), int(channels))
            count += 1
            if got.shape != want.shape or np.any(got != want):
                print(f"{out}: this PIL gives a different crop")
                bad += 1
    print(f"{count} PIL crops checked, {bad} differ")
    return 1 if bad else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "--check":
        return check(argv[1])
    if len(argv) >= 3 and argv[0] == "--photo":
        out_dir = argv[1]
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "cases.txt"), "w") as listing:
            for path in argv[2:]:
                name = os.path.basename(path)
                os.system(f"cp '{path}' '{out_dir}/{name}'")
                for size in (32, 64, 128, 256):
                    out = expected_name(name, size, 3)
                    Image.fromarray(expected(path, size, 3)).save(os.path.join(out_dir, out))
                    listing.write(f"{name} {size} 3 {out}\n")
        return 0
    if len(argv) == 3 and argv[0] == "--bench-jpegs":
        rng = np.random.default_rng(1)
        for i in range(int(argv[2])):
            folder = os.path.join(argv[1], f"c{i % 2}")
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(photo_like(rng, 256, 341)).save(os.path.join(folder, f"{i:05d}.jpg"),
                                                            quality=90)
        return 0
    if len(argv) == 1:
        write(argv[0])
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
