"""Shared builders for the data-pipeline tests (imported by the test modules;
conftest.py puts this folder on sys.path): small image trees on disk,
including the kinds of broken and unusual files real data sets contain."""

import io
import os

import numpy as np
from PIL import Image

from minitorch_alex.data import StoreSplit


def save(img: Image.Image, path, fmt=None, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, format=fmt, **kw)
    return str(path)


def jpeg_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_bytes(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def make_odd_files(folder) -> dict:
    """Write one file of each odd kind into ``folder``.

    Returns {"good": {name: expected constant RGB or None}, "bad": [names]}.
    Expected colours are exact where the image is constant (bilinear resize
    of a constant image is that constant).
    """
    folder = str(folder)
    good = {}
    save(Image.new("L", (40, 30), 100), os.path.join(folder, "grey.png"))
    good["grey.png"] = (100, 100, 100)
    save(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), os.path.join(folder, "cmyk.jpg"), "JPEG", quality=100)
    good["cmyk.jpg"] = None  # JPEG is lossy: checked as "red-ish" separately
    pal = Image.new("P", (30, 30), 0)
    pal.putpalette([10, 200, 30] + [0, 0, 0] * 255)
    save(pal, os.path.join(folder, "palette.png"))
    good["palette.png"] = (10, 200, 30)
    save(Image.new("RGBA", (30, 30), (200, 0, 0, 0)), os.path.join(folder, "rgba_clear.png"))
    good["rgba_clear.png"] = (255, 255, 255)  # fully transparent -> white
    save(Image.new("LA", (30, 30), (0, 255)), os.path.join(folder, "la_opaque.png"))
    good["la_opaque.png"] = (0, 0, 0)
    save(Image.fromarray(np.full((20, 20), 257 * 100, np.uint16)), os.path.join(folder, "grey16.png"))
    good["grey16.png"] = (100, 100, 100)  # 16-bit 25700 -> 8-bit 100
    save(Image.new("RGB", (1, 1), (7, 8, 9)), os.path.join(folder, "one_pixel.png"))
    good["one_pixel.png"] = (7, 8, 9)
    wide = np.zeros((10, 2000, 3), np.uint8)
    wide[..., 0] = (np.arange(2000) % 256).astype(np.uint8)[None, :]  # red = column mod 256
    save(Image.fromarray(wide), os.path.join(folder, "wide.png"))
    good["wide.png"] = None  # checked separately: centre columns 995..1004
    bad = []
    rng = np.random.default_rng(0)
    data = jpeg_bytes(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    write_bytes(os.path.join(folder, "truncated.jpg"), data[: len(data) // 2])
    write_bytes(os.path.join(folder, "empty.jpg"), b"")
    write_bytes(os.path.join(folder, "text.jpg"), b"this is a text file, not an image\n")
    bad += ["truncated.jpg", "empty.jpg", "text.jpg"]
    write_bytes(os.path.join(folder, "notes.txt"), b"not listed: wrong extension\n")
    write_bytes(os.path.join(folder, ".hidden.jpg"), b"not listed: hidden\n")
    return {"good": good, "bad": bad}


def make_plain_tree(root, classes=("a", "b", "c"), per_class=(4, 2), size=(48, 40)):
    """ImageFolder tree of constant-colour JPEG-free PNGs: class k has
    red = 60 * k + 10, image i has green = 20 * i (so every image differs)."""
    for split, count in zip(("train", "val"), per_class):
        for k, name in enumerate(classes):
            for i in range(count):
                colour = (60 * k + 10, 20 * i, 128)
                save(Image.new("RGB", size, colour), os.path.join(str(root), split, name, f"img{i}.png"))
    return str(root)


def index_split(n=40, size=16, num_classes=4) -> StoreSplit:
    """A store split where image i is the constant value i (so any crop of it
    tells which sample it is), zero mean and zero PCA (no jitter)."""
    images = (np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, size, size, 3), np.uint8))
    return StoreSplit(
        images=images,
        labels=(np.arange(n) % num_classes).astype(np.int64),
        mean=np.zeros((size, size, 3), np.float32),
        eigvals=np.zeros(3, np.float32),
        eigvecs=np.eye(3, dtype=np.float32),
    )


def random_split(n=50, size=16, seed=0) -> StoreSplit:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return StoreSplit(
        images=images,
        labels=rng.integers(0, 5, n).astype(np.int64),
        mean=images.mean(axis=0).astype(np.float32),
        eigvals=np.array([0.05, 0.01, 0.002], np.float32),
        eigvecs=q.astype(np.float32),
    )
