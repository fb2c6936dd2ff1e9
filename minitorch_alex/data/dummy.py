"""Random images for timing the trainer alone (``--dummy``): no files, no decoding, no packing.

    from minitorch_alex.data.dummy import dummy_store
    store = dummy_store(num_classes=1000)      # ImageNet's split sizes, 256 x 256 images
    Trainer(cfg, store.train, store.val, store.classes)

``dummy_store`` returns a ``Store`` whose splits are ordinary ``StoreSplit``s, so the ``StoreLoader``
(crops, flips, PCA jitter, worker processes) runs exactly as on a packed store; only reading and
decoding are gone. Pixels are uniform random uint8 and labels uniform random classes, both fixed
by ``seed``; the mean image and the PCA statistics are those of such noise.

Memory: the N images are N overlapping windows, ``stride`` bytes apart, into one random byte
buffer (a read-only ``as_strided`` view), so ImageNet's 1.28 million 256 x 256 images take
1.28 M x 64 bytes + one image = 82 MB instead of 252 GB. (Neighbouring images are shifted copies
of each other, which does not matter for timing.)
"""
from __future__ import annotations

import numpy as np

from .store import Store, StoreSplit

IMAGENET_SIZES = {"train": 1_281_167, "val": 50_000}
SPLIT_IDS = {"train": 0, "val": 1}
STRIDE = 64  # bytes between the starts of consecutive images in the shared buffer


class DummySplit(StoreSplit):
    """A ``StoreSplit`` of random images; sent to a 'spawn' worker as its recipe, not its pixels."""

    def __reduce_ex__(self, protocol):
        return (dummy_split, self.recipe)


def dummy_split(n, num_classes=1000, size=256, name="train", seed=0) -> DummySplit:
    """``n`` random (size, size, 3) uint8 images with random labels in [0, num_classes)."""
    if n < 1 or num_classes < 1 or size < 1:
        raise ValueError(f"dummy_split: expected n, num_classes and size >= 1, got {n}, {num_classes}, {size}")
    rng = np.random.default_rng([seed, SPLIT_IDS.get(name, 2)])
    image_bytes = size * size * 3
    buffer = rng.integers(0, 256, (n - 1) * STRIDE + image_bytes, dtype=np.uint8)
    images = np.lib.stride_tricks.as_strided(buffer, (n, size, size, 3), (STRIDE, size * 3, 3, 1), writeable=False)
    split = DummySplit(
        images=images,
        labels=rng.integers(0, num_classes, n).astype(np.int64),
        mean=np.full((size, size, 3), 127.5, np.float32),  # the mean of uniform 0..255 noise
        eigvals=np.full(3, 1 / 12, np.float32),  # each channel's variance in [0, 1] units; uncorrelated
        eigvecs=np.eye(3, dtype=np.float32),
        classes=[f"class{i:04d}" for i in range(num_classes)],
        name=name,
    )
    split.recipe, split.buffer = (n, num_classes, size, name, seed), buffer
    return split


def dummy_store(num_classes=1000, train_size=None, val_size=None, size=256, seed=0) -> Store:
    """A ``Store`` of random data; split sizes default to ILSVRC-2012's (1,281,167 and 50,000)."""
    train = dummy_split(train_size or IMAGENET_SIZES["train"], num_classes, size, "train", seed)
    val = dummy_split(val_size or IMAGENET_SIZES["val"], num_classes, size, "val", seed)
    manifest = {"classes": train.classes, "counts": {"train": len(train), "val": len(val)}, "size": size,
                "source": "dummy"}
    return Store("<dummy>", manifest, train, val)
