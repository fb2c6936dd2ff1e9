"""Fashion-MNIST from the IDX files of Debian's ``dataset-fashion-mnist``.

``apt-get install dataset-fashion-mnist`` puts the four original files in
``/usr/share/datasets/fashion-mnist/``::

    train-images-idx3-ubyte.gz  (60000, 28, 28) uint8
    train-labels-idx1-ubyte.gz  (60000,)        uint8
    t10k-images-idx3-ubyte.gz   (10000, 28, 28) uint8
    t10k-labels-idx1-ubyte.gz   (10000,)        uint8

The IDX format (LeCun's MNIST format) is: two zero bytes, one byte giving
the element type, one byte giving the number of dimensions ``d``, then
``d`` big-endian uint32 sizes, then the elements in C order, big-endian.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"

CLASSES = [
    "t-shirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
]

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# IDX element type byte -> big-endian NumPy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed if the name ends in ``.gz``).

    Returns an array of the stored shape in native byte order; uint8 data
    stays uint8.
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: {len(data) - header} data bytes, shape {shape} needs {expected}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def fashion_mnist_paths(root: str | os.PathLike | None = None) -> dict[str, tuple[str, str]]:
    """``{'train': (images, labels), 'val': (images, labels)}`` file paths.

    Raises ``FileNotFoundError`` with install instructions if any is missing.
    """
    root = os.fspath(root) if root is not None else DEFAULT_ROOT
    paths = {split: tuple(os.path.join(root, name) for name in names) for split, names in FILES.items()}
    missing = [p for pair in paths.values() for p in pair if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files not found: {missing}. Install them with "
            f"`apt-get install dataset-fashion-mnist` (files go to {DEFAULT_ROOT}), "
            "or pass the folder holding the four *-ubyte.gz files explicitly."
        )
    return paths


def load_fashion_mnist(root: str | os.PathLike | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{'train': (images (60000,28,28) uint8, labels (60000,) int64),
    'val': (images (10000,28,28) uint8, labels (10000,) int64)}``.

    The official test set is used as ``val``.
    """
    out = {}
    for split, (image_path, label_path) in fashion_mnist_paths(root).items():
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{image_path}: shapes {images.shape} / {labels.shape} do not match")
        out[split] = (images.astype(np.uint8), labels.astype(np.int64))
    return out


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip if ``path`` ends in ``.gz``).
    Used by tests to make small fake data sets."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, codes[dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array).astype(_IDX_DTYPES[codes[dtype]]).tobytes()
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)
