"""Datasets and batches for data that is not a packed image store: arrays in memory, or any object
with ``__len__`` and ``__getitem__`` (PyTorch's map-style ``Dataset``).

    from minitorch_alex.data import TensorDataset, DataLoader
    train = TensorDataset(images, labels)              # (N, 1, 28, 28) float32, (N,) int64
    loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
    for epoch in range(3):
        loader.set_epoch(epoch)                        # a new order each epoch, the same for a seed
        for x, y in loader:                            # NumPy arrays: (64, 1, 28, 28), (64,)
            loss = F.cross_entropy(model(mt.tensor(x)), mt.tensor(y))

Batches are NumPy arrays (this package does not depend on the rest of minitorch_alex); wrap them in
``mt.tensor``. The packed-store loader with the paper's augmentation is ``StoreLoader`` (``data/loader.py``).

Determinism: epoch ``e``'s order is ``default_rng([seed, e]).permutation(n)``, whatever the number
of workers; workers only change who calls ``__getitem__``.
"""
from __future__ import annotations

import multiprocessing
from collections import deque
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Dataset(Protocol):
    """What a DataLoader reads: ``len(ds)`` samples, ``ds[i]`` the i-th (an array, a number or a
    tuple of them)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index): ...


class TensorDataset:
    """Samples ``(a[i], b[i], ...)`` of arrays that share their first dimension (as PyTorch's).
    Takes NumPy arrays, lists, or anything with ``.numpy()`` (an ``mt.Tensor`` on the CPU)."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array, got none")
        self.arrays = tuple(np.asarray(a.numpy() if hasattr(a, "numpy") else a) for a in arrays)
        sizes = [len(a) if a.ndim else None for a in self.arrays]
        if None in sizes or len(set(sizes)) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(f"TensorDataset: expected arrays with the same first dimension, got shapes {shapes}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def batch(self, indices):
        """The samples at ``indices`` stacked, by one fancy index per array (no Python loop)."""
        return tuple(a[indices] for a in self.arrays)


def default_collate(samples):
    """Stack a list of samples: arrays/numbers -> one array with a leading batch dimension; tuples
    (and lists) -> a tuple of such arrays, field by field; dicts -> a dict of them."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError(f"collate: expected samples of {len(first)} fields each, got "
                             f"{sorted({len(s) for s in samples})}")
        return tuple(default_collate([s[k] for s in samples]) for k in range(len(first)))
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    return np.stack([np.asarray(s) for s in samples])


def _make_batch(dataset, indices, collate_fn):
    if collate_fn is None and isinstance(dataset, TensorDataset):
        return dataset.batch(indices)
    return (collate_fn or default_collate)([dataset[int(i)] for i in indices])


_worker_state = {}


def _worker_init(dataset, collate_fn):
    _worker_state["dataset"], _worker_state["collate_fn"] = dataset, collate_fn


def _worker_batch(indices):
    return _make_batch(_worker_state["dataset"], indices, _worker_state["collate_fn"])


class DataLoader:
    """Batches of ``dataset`` (PyTorch's map-style DataLoader, the common options).

    batch_size: samples per batch; the last batch is smaller unless ``drop_last``.
    shuffle: a new order every epoch from ``seed`` and ``set_epoch`` (deterministic; ``seed=None``
        draws one seed when the loader is made, like an unseeded PyTorch loader).
    workers: 0 (default) makes batches in this process; N > 0 in N worker processes (``fork``
        where available), useful when ``__getitem__`` is expensive (decoding files); batches come
        back in order and are the same as with 0 workers. The dataset goes to each worker once.
    collate_fn: list of samples -> batch (``default_collate``: stack field by field).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, workers=0,
                 collate_fn=None, prefetch=2):
        from .store import Store, StoreSplit  # packed images want augmentation, not raw batches
        if isinstance(dataset, (Store, StoreSplit)):
            raise TypeError(f"DataLoader: expected a dataset of samples, got a packed {type(dataset).__name__}; "
                            f"batch it with minitorch_alex.data.StoreLoader (the paper's augmentation)")
        if not isinstance(dataset, Dataset):
            raise TypeError(f"DataLoader: expected a dataset with __len__ and __getitem__, got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: expected batch_size an integer >= 1, got {batch_size!r}")
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
            raise ValueError(f"DataLoader: expected workers an integer >= 0, got {workers!r}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), bool(shuffle), bool(drop_last)
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self.workers, self.collate_fn, self.prefetch = int(workers), collate_fn, max(1, int(prefetch))
        self.epoch = 0
        self._pool = None

    def set_epoch(self, epoch):
        """The epoch whose order the next iteration uses."""
        self.epoch = int(epoch)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self):
        """This epoch's sample order, (len(dataset),) int64."""
        n = len(self.dataset)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)

    def batch_indices(self):
        order = self.order()
        return [order[start:start + self.batch_size] for start in range(0, len(self) * self.batch_size, self.batch_size)]

    def __iter__(self):
        batches = self.batch_indices()
        if self.workers == 0:
            for indices in batches:
                yield _make_batch(self.dataset, indices, self.collate_fn)
            return
        pool = self._start()
        pending = deque()
        for indices in batches:  # keep workers * prefetch batches in flight, hand them out in order
            pending.append(pool.apply_async(_worker_batch, (indices,)))
            if len(pending) >= self.workers * self.prefetch:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def _start(self):
        if self._pool is None:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = multiprocessing.get_context(method).Pool(
                self.workers, initializer=_worker_init, initargs=(self.dataset, self.collate_fn))
        return self._pool

    def close(self):
        """Stop the worker processes (also on ``with`` exit and when the loader is collected)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the pool may be half gone
            pass


__all__ = ["DataLoader", "Dataset", "TensorDataset", "default_collate"]
