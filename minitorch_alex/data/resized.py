"""Small images stored at their own size and enlarged as the loader reads them (Fashion-MNIST).

Packing Fashion-MNIST's 28 x 28 images at the paper's 256 x 256 made a 13 GB store of a 30 MB
data set. Stored at 28 x 28 (RGB, 141 MB for the 60,000 training images) and seen through
``upscale_store(store, 256)``, the splits look to the ``StoreLoader`` and the ``Trainer`` exactly
like a 256-px store: each image is enlarged when it is read, by the same ``resize_center_crop``
(Pillow bilinear) that packing used, so the pixels are those of the old 256-px store.

The mean image is the 28-px training mean enlarged the same way (in float32); it differs from
the mean of the enlarged images only by their rounding to uint8 (< 0.5 of 255). The colour
PCA is the stored one (enlarging does not change the colours).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .decode import resize_center_crop
from .store import Store, StoreSplit


class ResizedImages:
    """``images`` (N, s, s, 3) uint8 seen as (N, S, S, 3): item i is enlarged when indexed.

    Supports what the data pipeline uses: ``len``, ``shape``/``dtype``/``ndim``, and indexing
    by an int, a slice or an index array on the first axis, followed by any index of the rest."""

    def __init__(self, images, size: int):
        self.source, self.size = images, int(size)
        self.shape = (len(images), self.size, self.size, 3)
        self.dtype, self.ndim = np.dtype(np.uint8), 4

    def __len__(self) -> int:
        return self.shape[0]

    def _one(self, i) -> np.ndarray:
        return resize_center_crop(Image.fromarray(np.asarray(self.source[i]), mode="RGB"), self.size)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)):
            out = self._one(int(first))
        else:
            which = np.arange(len(self))[first]
            out = np.empty((len(which),) + self.shape[1:], np.uint8)
            for j, i in enumerate(which):
                out[j] = self._one(i)
            rest = (slice(None),) + rest
        return out[rest] if rest else out

    def __array__(self, dtype=None, copy=None):
        out = self[:]  # every image, enlarged: N x S x S x 3 bytes
        return out if dtype is None else out.astype(dtype)


def resize_mean(mean: np.ndarray, size: int) -> np.ndarray:
    """An (s, s, 3) float32 mean image enlarged to (size, size, 3), bilinear like the images."""
    channels = [resize_center_crop_float(mean[..., c], size) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.float32)


def resize_center_crop_float(plane: np.ndarray, size: int) -> np.ndarray:
    """``resize_center_crop``'s geometry for one float32 plane (Pillow mode 'F')."""
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) / 2.0, (h - side) / 2.0
    out = img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
    return np.asarray(out, dtype=np.float32)


class ResizedSplit(StoreSplit):
    """A ``StoreSplit`` whose images are enlarged on reading; a 'spawn' worker gets the small
    split (which reopens its files) and the size, never the pixels."""

    def __reduce_ex__(self, protocol):
        return (upscale_split, (self.small, self.size))


def upscale_split(split: StoreSplit, size: int) -> StoreSplit:
    """``split`` as seen at ``size`` x ``size`` (itself if it already is)."""
    if split.size == size:
        return split
    out = ResizedSplit(images=ResizedImages(split.images, size), labels=split.labels,
                       mean=resize_mean(split.mean, size), eigvals=split.eigvals, eigvecs=split.eigvecs,
                       classes=split.classes, name=split.name, root=None)
    out.small = split
    out.watched = getattr(split, "watched", {})
    return out


def upscale_store(store: Store, size: int = 256) -> Store:
    """``store`` with both splits seen at ``size`` x ``size`` (see the module docstring)."""
    manifest = dict(store.manifest, image_size=size, stored_image_size=store.train.size)
    return Store(store.root, manifest, upscale_split(store.train, size), upscale_split(store.val, size))
