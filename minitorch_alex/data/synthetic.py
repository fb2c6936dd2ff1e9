"""A generated image-classification set that needs no download.

Each class is a geometric pattern (stripes at a class-specific angle,
checkerboard, rings, disc, square, cross, triangle, dots, waves) drawn in
two random colours, with random position, scale and rotation jitter and
pixel noise. Foreground and background colours are drawn independently of
the class, so the mean colour of an image says nothing about its class: a
network has to look at shape and texture, which is what AlexNet's
convolutions are for. The images are written as JPEGs in an ImageFolder
tree so the same decode path as for real data is exercised.

Determinism: image ``i`` of class ``k`` in split ``s`` is drawn from
``np.random.default_rng([seed, s, k, i])``, independently of all other
images, and JPEGs are written with fixed settings, so the same seed gives
the same bytes (for a given NumPy and Pillow/libjpeg version).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
from PIL import Image

PATTERNS = [
    "vstripes", "hstripes", "diag45", "diag135", "checker", "rings",
    "disc", "square", "cross", "triangle", "dots", "waves",
]

_SPLIT_CODES = {"train": 0, "val": 1}
_MARKER = ".synthetic.json"


def class_names(num_classes: int) -> list[str]:
    """Folder names, numbered so that sorted order == class index order."""
    if not 1 <= num_classes <= len(PATTERNS):
        raise ValueError(f"num_classes must be in 1..{len(PATTERNS)}, got {num_classes}")
    return [f"{k:02d}_{PATTERNS[k]}" for k in range(num_classes)]


def _soft(d: np.ndarray, pixel: float) -> np.ndarray:
    """Signed distance (positive inside) -> coverage in [0, 1] with a
    one-pixel antialiased edge, so edges do not alias into moire."""
    return np.clip(0.5 + d / pixel, 0.0, 1.0)


def _stripes(t: np.ndarray, period: float, pixel: float) -> np.ndarray:
    # sin(2*pi*t/p) * p/(2*pi) is ~ the distance to the nearest stripe edge.
    return _soft(np.sin(2 * np.pi * t / period) * period / (2 * np.pi), pixel)


def pattern_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Foreground coverage of one random instance of pattern ``kind``.

    Returns ``(size, size)`` float32 in [0, 1]. Coordinates run over
    [-1, 1]; position, scale and angle are jittered with ``rng``.
    """
    pixel = 2.0 / size
    # float32 halves the work; the patterns need nowhere near float64 precision.
    coords = ((np.arange(size) + 0.5) * pixel - 1.0).astype(np.float32)
    x, y = np.meshgrid(coords, coords)  # x to the right, y down
    cx, cy = rng.uniform(-0.3, 0.3, size=2).astype(np.float32)
    scale = np.float32(rng.uniform(0.75, 1.25))
    jitter = np.deg2rad(rng.uniform(-12, 12))
    x, y = x - cx, y - cy

    def rotate(angle):
        c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        return c * x + s * y, -s * x + c * y

    if kind in ("vstripes", "hstripes", "diag45", "diag135"):
        angle = {"vstripes": 0, "hstripes": 90, "diag45": 45, "diag135": 135}[kind]
        t, _ = rotate(np.deg2rad(angle) + jitter)
        return _stripes(t, 0.28 * scale, pixel)
    u, v = rotate(jitter)
    if kind == "checker":
        a, b = _stripes(u, 0.5 * scale, pixel), _stripes(v, 0.5 * scale, pixel)
        return a * (1 - b) + b * (1 - a)  # soft XOR
    r = np.hypot(u, v)
    if kind == "rings":
        return _stripes(r, 0.3 * scale, pixel)
    if kind == "disc":
        return _soft(0.45 * scale - r, pixel)
    if kind == "square":
        return _soft(0.4 * scale - np.maximum(np.abs(u), np.abs(v)), pixel)
    if kind == "cross":
        half_width, half_length = 0.13 * scale, 0.55 * scale
        bar1 = np.minimum(half_width - np.abs(u), half_length - np.abs(v))
        bar2 = np.minimum(half_width - np.abs(v), half_length - np.abs(u))
        return _soft(np.maximum(bar1, bar2), pixel)
    if kind == "triangle":
        # Intersection of three half-planes whose outward normals are 120 deg apart.
        normals = np.deg2rad([-90, 30, 150])
        d = np.min([0.3 * scale - (u * float(np.cos(a)) + v * float(np.sin(a))) for a in normals], axis=0)
        return _soft(d, pixel)
    if kind == "dots":
        cell = 0.4 * scale
        du = (u / cell - np.round(u / cell)) * cell
        dv = (v / cell - np.round(v / cell)) * cell
        return _soft(0.3 * cell - np.hypot(du, dv), pixel)
    if kind == "waves":
        amplitude, wavelength = 0.12 * scale, 0.7 * scale
        return _stripes(v + amplitude * np.sin(2 * np.pi * u / wavelength), 0.3 * scale, pixel)
    raise ValueError(f"unknown pattern {kind!r}")


def _two_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Independent random foreground/background colours that still differ
    enough (Euclidean RGB distance >= 120) for the pattern to be visible."""
    while True:
        fg, bg = rng.uniform(0, 255, size=(2, 3))
        if np.linalg.norm(fg - bg) >= 120:
            return fg, bg


def synthetic_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 image of class ``label``."""
    mask = pattern_mask(PATTERNS[label], size, rng)[..., None]
    fg, bg = (c.astype(np.float32) for c in _two_colours(rng))
    image = mask * (fg - bg)  # in-place steps below: fewer temporaries, noticeably faster
    image += bg
    noise = rng.standard_normal(size=image.shape, dtype=np.float32)
    noise *= np.float32(rng.uniform(4, 16))
    image += noise
    np.rint(image, out=image)
    np.clip(image, 0, 255, out=image)
    return image.astype(np.uint8)


def make_synthetic_imagefolder(
    root: str | os.PathLike,
    num_classes: int = 10,
    train_per_class: int = 300,
    val_per_class: int = 100,
    size: int = 256,
    seed: int = 0,
    quality: int = 90,
) -> str:
    """Write ``root/{train,val}/<class>/<class>_<i>.jpg`` and return ``root``.

    ``size x size`` colour JPEGs, ``train_per_class`` + ``val_per_class``
    per class. The tree is written to ``<root>.partial`` and renamed to
    ``root`` when complete, so an interrupted run never leaves a tree that
    looks finished. If ``root`` already holds a tree made with the same
    parameters it is reused; one made with other parameters is replaced.
    """
    root = os.path.abspath(os.fspath(root))
    params = dict(num_classes=num_classes, train_per_class=train_per_class,
                  val_per_class=val_per_class, size=size, seed=seed, quality=quality)
    marker = os.path.join(root, _MARKER)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            if json.load(f) == params:
                return root
    elif os.path.isdir(root) and os.listdir(root):
        raise FileExistsError(f"{root} exists and is not a synthetic data tree; not overwriting it")
    names = class_names(num_classes)
    partial = root + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for label, name in enumerate(names):
            folder = os.path.join(partial, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng([seed, _SPLIT_CODES[split], label, i])
                image = Image.fromarray(synthetic_image(label, size, rng), mode="RGB")
                # Fixed encoder settings (no optimize/progressive/EXIF) keep bytes reproducible.
                image.save(os.path.join(folder, f"{name}_{i:05d}.jpg"), format="JPEG", quality=quality)
    with open(os.path.join(partial, _MARKER), "w", encoding="utf-8") as f:
        json.dump(params, f)
    if os.path.isdir(root):
        shutil.rmtree(root)  # only reached for an older synthetic tree (it had our marker) or an empty dir
    os.replace(partial, root)
    return root
