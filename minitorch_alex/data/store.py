"""Reading a prepared data store (the output of :func:`prepare`).

A store is a folder of raw ``.npy`` files plus a JSON manifest::

    manifest.json         classes, counts, skipped files, sizes, source
    train_images.npy      (N_train, S, S, 3) uint8
    train_labels.npy      (N_train,) int64
    val_images.npy        (N_val, S, S, 3) uint8
    val_labels.npy        (N_val,) int64
    mean.npy              (S, S, 3) float32, training mean image, 0..255
    pca_eigvals.npy       (3,) float32, descending, RGB in [0, 1] units
    pca_eigvecs.npy       (3, 3) float32, column k = eigenvector k

Images are opened as read-only memory maps: nothing is read until used,
and every process opening the same store shares the OS page cache. Nothing
is ever unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

MANIFEST = "manifest.json"
FORMAT = "minitorch_alex.data/store-v1"
SPLITS = ("train", "val")


def images_file(split: str) -> str:
    return f"{split}_images.npy"


def labels_file(split: str) -> str:
    return f"{split}_labels.npy"


STATS_FILES = {"mean": "mean.npy", "eigvals": "pca_eigvals.npy", "eigvecs": "pca_eigvecs.npy"}


@dataclass
class StoreSplit:
    """One split of a store, with the training statistics the augmentation needs.

    Can also be built directly from in-memory arrays (tests, small data).
    ``root`` is set when the split comes from a store on disk; worker
    processes started with 'spawn' then reopen the files instead of
    receiving a pickled copy of the images.
    """

    images: np.ndarray  # (N, S, S, 3) uint8
    labels: np.ndarray  # (N,) int64
    mean: np.ndarray  # (S, S, 3) float32
    eigvals: np.ndarray  # (3,) float32
    eigvecs: np.ndarray  # (3, 3) float32
    classes: list[str] = field(default_factory=list)
    name: str = "train"
    root: str | None = None

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"images must be (N, S, S, 3), got {self.images.shape}")
        if self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {self.images.dtype}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.mean.shape != self.images.shape[1:]:
            raise ValueError(f"mean image {self.mean.shape} does not match images {self.images.shape[1:]}")

    @property
    def size(self) -> int:
        """Side S of the stored square images."""
        return self.images.shape[1]

    def __len__(self) -> int:
        return len(self.images)

    def __reduce_ex__(self, protocol):
        # Sending a split to a 'spawn' worker: reopen the memory maps there
        # rather than copying gigabytes of images through a pipe.
        if self.root is not None:
            return (open_split, (self.root, self.name))
        return super().__reduce_ex__(protocol)


@dataclass
class Store:
    """A prepared store: ``store.train``, ``store.val``, ``store.manifest``."""

    root: str
    manifest: dict
    train: StoreSplit
    val: StoreSplit

    @property
    def classes(self) -> list[str]:
        return self.manifest["classes"]


def _load(root: str, name: str, mmap: bool = False) -> np.ndarray:
    return np.load(os.path.join(root, name), mmap_mode="r" if mmap else None, allow_pickle=False)


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a *complete* store; raises ``FileNotFoundError`` if
    the folder is missing or was never finished (no manifest)."""
    path = os.path.join(os.fspath(root), MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no complete data store at {os.fspath(root)} (missing {MANIFEST})")
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown store format {manifest.get('format')!r}")
    return manifest


def open_split(root: str | os.PathLike, name: str) -> StoreSplit:
    """Open one split (``'train'`` or ``'val'``) of the store at ``root``."""
    root = os.path.abspath(os.fspath(root))
    manifest = read_manifest(root)
    stats = {key: _load(root, fname) for key, fname in STATS_FILES.items()}
    return StoreSplit(
        images=_load(root, images_file(name), mmap=True),
        labels=_load(root, labels_file(name)),
        classes=list(manifest["classes"]),
        name=name,
        root=root,
        **stats,
    )


def open_store(root: str | os.PathLike) -> Store:
    """Open a store written by :func:`minitorch_alex.data.prepare`."""
    root = os.path.abspath(os.fspath(root))
    return Store(root, read_manifest(root), open_split(root, "train"), open_split(root, "val"))
