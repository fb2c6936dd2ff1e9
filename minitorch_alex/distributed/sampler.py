"""Sharding the single-process run's global batches across ranks.

The N-rank run must see exactly the batches of the 1-rank run (``data.loader.StoreLoader``
with the same seed): the epoch's order is ``loader.epoch_order(n, seed, epoch, shuffle)``,
global batch ``b`` is ``order[b * B:(b + 1) * B]`` (the last one smaller unless
``drop_last``), and rank ``r`` takes rows ``start:stop`` of it, a contiguous slice:

* a full batch of B rows gives every rank B / N rows (B must be a multiple of N);
* the last, partial batch of m < B rows is split as evenly as possible, the first
  ``m % N`` ranks taking one row more (a rank may get none when m < N).

So each sample is visited once per epoch, by exactly one rank. A rank's loss is the mean over
its rows, so its gradient enters the average with weight ``rows / global rows``
(:attr:`Shard.weight`, handed to :class:`GradientAverager`): the weighted sum over ranks is the
gradient of the mean over the global batch, as in the 1-rank run, also for the last batch.

Augmentation: the loader draws batch ``b``'s crops, flips and PCA coefficients for all its
rows from ``default_rng([seed, epoch, 1, b])``; :func:`shard_batch` draws the same for the
whole global batch and applies only rows ``start:stop``, so every image gets the same crop,
flip and colour shift on any number of ranks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.augment import default_crop
from ..data.loader import epoch_order, epoch_range, make_batch, shard_bounds


def check_global_batch(batch_size: int, world_size: int) -> None:
    """Raise ValueError unless the global batch splits evenly over the ranks."""
    if batch_size % world_size:
        raise ValueError(f"the global batch size {batch_size} must be a multiple of the number of ranks "
                         f"{world_size} (each rank takes batch_size / ranks samples)")


@dataclass(frozen=True)
class Shard:
    """This rank's part of global batch ``batch`` of ``epoch``: sample ``indices`` (k,) int64,
    rows ``start:stop`` of the ``global_size`` rows of the global batch."""

    epoch: int
    batch: int
    indices: np.ndarray
    start: int
    stop: int
    global_size: int

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def weight(self) -> float:
        """Share of this rank's rows in the global batch: the weight of its mean-loss gradient."""
        return len(self) / self.global_size


class ShardedSampler:
    """The global batches of a dataset of ``n`` samples, as seen by one rank.

    ``batch_size`` is the *global* batch (the paper's 128), a multiple of ``world_size``.
    ``rank`` / ``world_size`` default to the current world (:func:`init`). Iterating yields one
    :class:`Shard` per global batch, on every rank the same number (``len(sampler)``, the
    1-rank loader's ``len``) so that all ranks take part in every step's collectives.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True, drop_last: bool = False,
                 rank: int | None = None, world_size: int | None = None):
        if rank is None or world_size is None:
            from .world import get_world
            world = get_world()
            rank = world.rank if rank is None else rank
            world_size = world.size if world_size is None else world_size
        if n < 0 or batch_size < 1 or seed < 0 or world_size < 1:
            raise ValueError(f"need n >= 0, batch_size >= 1, seed >= 0, world_size >= 1; got n={n}, "
                             f"batch_size={batch_size}, seed={seed}, world_size={world_size}")
        check_global_batch(batch_size, world_size)
        shard_bounds(0, world_size, rank)  # checks the rank
        self.n, self.batch_size, self.seed, self.shuffle, self.drop_last = n, batch_size, seed, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch, self.stop_batch = 0, 0, len(self)
        self._order_epoch, self._order = None, None

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    @property
    def local_batch_size(self) -> int:
        """Rows of a full global batch that each rank takes."""
        return self.batch_size // self.world_size

    def set_epoch(self, epoch: int, start_batch: int = 0, stop_batch: int | None = None) -> None:
        """As ``StoreLoader.set_epoch``: the epoch, and optionally only batches
        ``start_batch .. stop_batch - 1`` of it (resuming mid-epoch)."""
        self.epoch, self.start_batch, self.stop_batch = epoch_range(epoch, start_batch, stop_batch, len(self))

    def global_indices(self, b: int) -> np.ndarray:
        """Sample indices of global batch ``b`` of the current epoch (all ranks' rows)."""
        if not 0 <= b < len(self):
            raise IndexError(f"batch {b} out of range 0..{len(self) - 1}")
        if self._order_epoch != self.epoch:  # cached: every batch of an epoch needs it
            self._order = epoch_order(self.n, self.seed, self.epoch, self.shuffle)
            self._order_epoch = self.epoch
        return self._order[b * self.batch_size:(b + 1) * self.batch_size]

    def shard(self, b: int) -> Shard:
        """This rank's part of global batch ``b`` of the current epoch."""
        rows = self.global_indices(b)
        start, stop = shard_bounds(len(rows), self.world_size, self.rank)
        return Shard(self.epoch, b, rows[start:stop], start, stop, len(rows))

    def __iter__(self):
        for b in range(self.start_batch, self.stop_batch):
            yield self.shard(b)


def shard_batch(split, shard: Shard, seed: int, train: bool = True, crop: int | None = None,
                ten_crop: bool = False, alpha_std: float = 0.1, scale: float = 1.0):
    """Images and labels of ``shard`` from a ``StoreSplit``: rows ``start:stop`` of what
    ``StoreLoader(split, batch_size, train=train, seed=seed, ...)`` yields for the shard's
    global batch, bit for bit.

    Returns ``images`` float32 ``(k, 3, C, C)`` (``(k, 10, 3, C, C)`` with ``ten_crop``) and
    ``labels`` int64 ``(k,)``.
    """
    crop = default_crop(split.size) if crop is None else crop
    shape = (len(shard), 10, 3, crop, crop) if ten_crop else (len(shard), 3, crop, crop)
    images = make_batch(split, shard.indices, shard.start, shard.global_size, seed, shard.epoch, shard.batch, train,
                        crop, ten_crop, alpha_std, scale, np.empty(shape, np.float32))
    return images, split.labels[shard.indices]
