"""Data pipeline for AlexNet: readers, decoding, the prepared store,
augmentation and a multi-process loader; and PyTorch's ``Dataset`` /
``TensorDataset`` / ``DataLoader`` for arrays in memory or any dataset.

Self-contained: depends only on NumPy, Pillow, tqdm and the standard
library, not on the rest of minitorch_alex.

Typical use::

    from minitorch_alex.data import prepare, open_store, StoreLoader

    root = prepare("data/synthetic-src", "data/synthetic", layout="synthetic")
    store = open_store(root)
    with StoreLoader(store.train, batch_size=128, train=True, workers=4, seed=0) as loader:
        for epoch in range(90):
            loader.set_epoch(epoch)
            for images, labels in loader:  # (128, 3, 224, 224) float32, (128,) int64
                ...

Modules, one idea each: ``readers`` (list files), ``decode`` (file ->
RGB array), ``synthetic`` (generated data set), ``fashion_mnist`` (IDX
files), ``stats`` (mean image, RGB PCA), ``prepare_store`` (build a store: ``prepare``),
``store`` (open a store), ``augment`` (the paper's augmentation),
``loader`` (``StoreLoader``: a store's batches with the paper's augmentation,
worker processes), ``dataset`` (``DataLoader`` over any map-style dataset).

Two loaders, two names: ``StoreLoader(split, ...)`` reads a packed store and
augments as the paper did; ``DataLoader(dataset, ...)`` batches anything with
``__len__``/``__getitem__``, as ``torch.utils.data.DataLoader`` does.
"""

from .augment import (
    center_crop,
    crop_to_chw,
    default_crop,
    pca_shift,
    sample_train_params,
    ten_crop,
    ten_crop_offsets,
    train_augment,
)
from .dataset import DataLoader, Dataset, TensorDataset, default_collate
from .decode import UnreadableImage, load_image, open_rgb, resize_center_crop
from .fashion_mnist import load_fashion_mnist, read_idx, write_idx
from .loader import StoreLoader, epoch_order
from .prepare_store import prepare
from .readers import Listing, read_ilsvrc, read_imagefolder, read_synset_list
from .stats import PixelStats, compute_stats
from .store import Store, StoreSplit, open_split, open_store
from .synthetic import make_synthetic_imagefolder

__all__ = [
    "DataLoader", "Dataset", "Listing", "PixelStats", "Store", "StoreLoader", "StoreSplit", "TensorDataset",
    "UnreadableImage", "default_collate",
    "center_crop", "compute_stats", "crop_to_chw", "default_crop", "epoch_order",
    "load_fashion_mnist", "load_image", "make_synthetic_imagefolder", "open_rgb",
    "open_split", "open_store", "pca_shift", "prepare", "read_idx", "read_ilsvrc",
    "read_imagefolder", "read_synset_list", "resize_center_crop", "sample_train_params",
    "ten_crop", "ten_crop_offsets", "train_augment", "write_idx",
]
