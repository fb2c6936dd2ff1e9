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

Opening checks the manifest against the arrays before trusting either:
each ``.npy`` header (shape, dtype, file size) against the manifest's
counts and image size, labels in range and matching the per-class counts,
finite mean image and PCA. A mismatch is a ``ValueError`` naming the file,
what was expected and what was found.
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


class IndexedImages:
    """Rows ``index`` of ``images`` (an (N, S, S, 3) array or memory map), seen as an
    ``(len(index), S, S, 3)`` array without reading or copying them: a row is read when indexed.
    Supports what the data pipeline uses (as ``resized.ResizedImages``): ``len``,
    ``shape``/``dtype``/``ndim``, and indexing by an int, a slice or an index array on the first
    axis, followed by any index of the rest."""

    def __init__(self, images, index):
        self.source, self.index = images, np.asarray(index, np.int64)
        self.shape = (len(self.index),) + tuple(images.shape[1:])
        self.dtype, self.ndim = np.dtype(images.dtype), len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        rows, rest = self.index[key[0]], key[1:]
        if np.ndim(rows) == 0:
            out = np.asarray(self.source[int(rows)])
            return out[rest] if rest else out
        out = np.asarray(self.source[rows])
        return out[(slice(None),) + rest] if rest else out

    def __array__(self, dtype=None, copy=None):
        out = self[:]  # every row: len(index) images
        return out if dtype is None else out.astype(dtype)


class SubsetSplit(StoreSplit):
    """A ``StoreSplit`` of some rows of another (``subset``); sent to a 'spawn' worker as the
    split and the row numbers, never the pixels."""

    def __reduce_ex__(self, protocol):
        return (subset, (self.parent, self.index))


def subset(split: StoreSplit, index) -> StoreSplit:
    """The rows ``index`` of ``split`` as a split of their own, selected by index: nothing is read
    or copied until the loader asks for a batch (a capped validation set of nearly the whole
    split copied it into memory)."""
    index = np.asarray(index, np.int64)
    out = SubsetSplit(images=IndexedImages(split.images, index), labels=np.asarray(split.labels)[index],
                      mean=split.mean, eigvals=split.eigvals, eigvecs=split.eigvecs, classes=list(split.classes),
                      name=split.name, root=None)
    out.parent, out.index = split, index
    out.watched = getattr(split, "watched", {})
    return out


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


def _npy_header(path: str):
    """(shape, dtype) of the .npy file at ``path``, read from its header alone; its size on
    disk must be what the header says (so loading it cannot allocate more than the file)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = reader(f)
            offset = f.tell()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (expected a file of the data store)") from None
    except (ValueError, SyntaxError, EOFError, OSError) as exc:
        raise ValueError(f"{path}: not a readable .npy file ({type(exc).__name__}: {exc})") from None
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if dtype.hasobject or os.path.getsize(path) != offset + nbytes:
        raise ValueError(f"{path}: damaged (expected {offset + nbytes} bytes for {shape} {dtype} "
                         f"vs {os.path.getsize(path)})")
    return tuple(shape), dtype


def _load(root: str, name: str, mmap: bool = False, shape=None, dtype=None) -> np.ndarray:
    path = os.path.join(root, name)
    found_shape, found_dtype = _npy_header(path)
    if (shape is not None and found_shape != tuple(shape)) or (dtype is not None and found_dtype != np.dtype(dtype)):
        raise ValueError(f"{path}: does not match {MANIFEST} (expected {tuple(shape)} {np.dtype(dtype)} "
                         f"vs {found_shape} {found_dtype})")
    array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if not mmap and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{path}: holds NaN or infinite values (expected finite statistics)")
    return array


def _check_manifest(path: str, manifest) -> None:
    def bad(what, expected, got):
        raise ValueError(f"{path}: bad {what} (expected {expected} vs {got!r})")

    if not isinstance(manifest, dict):
        bad("manifest", "a JSON object", type(manifest).__name__)
    classes = manifest.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        bad("classes", "a non-empty list of names", classes)
    if manifest.get("num_classes", len(classes)) != len(classes):
        bad("num_classes", len(classes), manifest.get("num_classes"))
    size = manifest.get("image_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        bad("image_size", "a positive integer", size)
    splits = manifest.get("splits")
    for name in SPLITS:
        entry = splits.get(name) if isinstance(splits, dict) else None
        count = entry.get("count") if isinstance(entry, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            bad(f"splits.{name}.count", "an image count", count)
        per_class = entry.get("counts_per_class")
        if per_class is not None and (not isinstance(per_class, list) or len(per_class) != len(classes)
                                      or sum(per_class) != count):
            bad(f"splits.{name}.counts_per_class", f"{len(classes)} counts summing to {count}", per_class)


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a *complete* store; raises ``FileNotFoundError`` if
    the folder is missing or was never finished (no manifest)."""
    path = os.path.join(os.fspath(root), MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no complete data store at {os.fspath(root)} (missing {MANIFEST})")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{path}: unknown store format (expected {FORMAT!r} vs {got!r})")
    _check_manifest(path, manifest)
    return manifest


def open_split(root: str | os.PathLike, name: str) -> StoreSplit:
    """Open one split (``'train'`` or ``'val'``) of the store at ``root``."""
    root = os.path.abspath(os.fspath(root))
    manifest = read_manifest(root)
    size, count = manifest["image_size"], manifest["splits"][name]["count"]
    shapes = {"mean": (size, size, 3), "eigvals": (3,), "eigvecs": (3, 3)}
    stats = {key: _load(root, fname, shape=shapes[key], dtype=np.float32) for key, fname in STATS_FILES.items()}
    labels = _load(root, labels_file(name), shape=(count,), dtype=np.int64)
    num_classes = len(manifest["classes"])
    if count and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(f"{os.path.join(root, labels_file(name))}: labels out of range (expected 0..{num_classes - 1} "
                         f"vs {int(bad[0])}, {len(bad)} such labels)")
    per_class = manifest["splits"][name].get("counts_per_class")
    if per_class is not None and np.bincount(labels, minlength=num_classes).tolist() != per_class:
        raise ValueError(f"{os.path.join(root, labels_file(name))}: labels do not match {MANIFEST} "
                         f"(expected per-class counts {per_class[:5]}... vs {np.bincount(labels, minlength=num_classes)[:5].tolist()}...)")
    images_path = os.path.join(root, images_file(name))
    split = StoreSplit(
        images=_load(root, images_file(name), mmap=True, shape=(count, size, size, 3), dtype=np.uint8),
        labels=labels,
        classes=list(manifest["classes"]),
        name=name,
        root=root,
        **stats,
    )
    split.watched = {images_path: os.path.getsize(images_path)}  # memory-mapped: see check_unchanged
    return split


class StoreChanged(RuntimeError):
    """A memory-mapped file of the store was truncated, replaced or removed under the run."""


def check_unchanged(split) -> None:
    """Raise ``StoreChanged``, naming the file, when a memory-mapped images file of ``split`` (as
    recorded by ``open_split`` in ``split.watched``) no longer has the size it had when opened:
    reading a truncated memory map kills the process with SIGBUS (a bare "Bus error"), so the
    loader checks before every batch."""
    for path, size in getattr(split, "watched", {}).items():
        try:
            now = os.stat(path).st_size
        except OSError:
            now = None
        if now != size:
            raise StoreChanged(f"{path} changed under the run (expected the {size} bytes it had when the run opened "
                               f"it vs {'no file' if now is None else f'{now} bytes'}): a store must not be repacked, "
                               "truncated or removed while a job reads it")


def open_store(root: str | os.PathLike) -> Store:
    """Open a store written by :func:`minitorch_alex.data.prepare`."""
    root = os.path.abspath(os.fspath(root))
    return Store(root, read_manifest(root), open_split(root, "train"), open_split(root, "val"))
