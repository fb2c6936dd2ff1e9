"""The paper's augmentation on the GPU, fed by an asynchronous copy pipeline.

Same results as the CPU path (``augment.py`` through ``StoreLoader``): for a given seed the GPU
batches have the same images, crops, flips and PCA shifts, because the random draws happen on
the host in exactly the CPU loader's order (``epoch_order``, then ``sample_train_params`` from
``default_rng([seed, epoch, 1, b])``). Only the pixel work moves to the GPU:

    store (uint8 memmap) --gather--> pinned host buffer --async copy, copy stream--> GPU uint8
        --crop/flip/mean/PCA, compute stream--> (N, 3, C, C) float32 on the GPU

uint8 pixels are a quarter of the float32 batch, so the bus carries 4x less than copying
augmented batches; the gather of batch b+2 and the copy of batch b+1 overlap the training step
on batch b (two pinned slots, one CUDA event per slot each way so neither side overwrites what
the other still uses). ``Trainer`` uses it for training batches on CUDA devices.

``crop_flip_normalize`` is the pixel math, written for any array module (NumPy or CuPy):
``tests/gpu/test_gpu_augment.py`` checks it on NumPy against ``augment.crop_to_chw`` (bit for bit),
and ``tests/gpu/test_gpu.py`` checks the CuPy pipeline against it on a GPU.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..device import Device
from .augment import default_crop, pca_shift, sample_train_params
from .loader import epoch_order, epoch_range, shard_bounds


def crop_flip_normalize(xp, images, ys, xs, flips, crop, mean=None, shifts=None, scale=1.0, index=None):
    """``out[i] = scale * (flip_i(crop_i(images[index[i]] - mean)) + shifts[i])`` as (N, 3, C, C)
    float32, with every array on the device of ``xp``.

    images (B, S, S, 3) uint8; ys, xs (N,) int crop offsets; flips (N,) bool; mean (S, S, 3)
    float32 or None; shifts (N, 3) or None; index (N,) rows of ``images`` (default 0..N-1).
    One gather with broadcast index arrays instead of a loop over images: on a GPU, one kernel
    for the batch. The arithmetic is in the order of ``augment.crop_to_chw`` (float32 pixel
    minus mean, plus the float32 shift, times scale), so the results agree bit for bit.
    """
    n = len(ys)
    ar = xp.arange(crop)
    rows = xp.asarray(ys)[:, None] + ar  # (N, C) input rows of each crop
    cols = xp.asarray(xs)[:, None] + xp.where(xp.asarray(flips)[:, None], crop - 1 - ar, ar)  # (N, C), mirrored
    which = xp.arange(n) if index is None else xp.asarray(index)
    r, c = rows[:, :, None], cols[:, None, :]  # broadcast to (N, C, C)
    out = images[which[:, None, None], r, c].astype(xp.float32)  # (N, C, C, 3)
    if mean is not None:
        out -= mean[r, c]
    if shifts is not None:
        out += xp.asarray(shifts).astype(xp.float32)[:, None, None, :]
    out = xp.ascontiguousarray(out.transpose(0, 3, 1, 2))
    if scale != 1.0:
        out *= xp.float32(scale)
    return out


def batch_plan(split, batch_size, seed, epoch, b, crop, alpha_std=0.1, shuffle=True, rank=0, world_size=1):
    """The host-side draws of training batch ``b``, identical to the CPU ``StoreLoader``'s
    (``loader.make_batch``): (index (k,), ys, xs, flips, shifts (k, 3)) of this rank's rows
    (``shard_bounds``) of the global batch, whose crops, flips and PCA draws are made for all of
    its rows, so an image is augmented alike on any number of ranks."""
    rows = epoch_order(len(split), seed, epoch, shuffle)[b * batch_size:(b + 1) * batch_size]
    p = sample_train_params(np.random.default_rng([seed, epoch, 1, b]), len(rows), split.images.shape[1], crop,
                            alpha_std)
    mine = slice(*shard_bounds(len(rows), world_size, rank))
    return rows[mine], p.ys[mine], p.xs[mine], p.flips[mine], pca_shift(p.alphas[mine], split.eigvals, split.eigvecs)


def _empty_pinned(shape, dtype):
    """A NumPy array in page-locked host memory (the asynchronous copy needs it)."""
    from cupyx import empty_pinned  # noqa: PLC0415 (CuPy is optional)

    return empty_pinned(shape, dtype=dtype)


class GPUAugmenter:
    """Training batches of a ``StoreSplit`` made on ``device`` (a 'cuda:N' name), with the
    interface of ``StoreLoader`` (``len``, ``set_epoch(epoch, start_batch, stop_batch)``,
    iteration), so the trainer takes either.

    Iteration yields (images (k, 3, C, C) float32 CuPy array on the device, labels (k,) int64
    NumPy array): this rank's rows of each global batch of ``batch_size``, the same as
    ``StoreLoader(split, batch_size, train=True, seed=seed, crop=crop, scale=scale, rank=rank,
    world_size=world_size)`` bit for bit (drop_last=False). The labels stay on the host: the
    loss checks them there before its one upload, and no step reads the device for them.

    The pipeline, per batch b: a background thread gathers batch b+2's uint8 pixels into a
    pinned slot while the GPU runs step b, batch b+1's copy is queued on the copy stream before
    step b is handed out, and b's augmentation is queued on the compute stream behind its copy's
    event. Two pinned and two device slots; CUDA events keep either side from overwriting what
    the other still reads (the host waits only for a copy out of a pinned slot it refills).
    """

    def __init__(self, split, batch_size=128, crop=None, device="cuda:0", seed=0, alpha_std=0.1, scale=1.0,
                 shuffle=True, rank=0, world_size=1):
        self.device = Device(device)
        if self.device.type != "cuda":
            raise ValueError(f"GPUAugmenter: expected a 'cuda:N' device, got {self.device}")
        if batch_size < 1:
            raise ValueError(f"GPUAugmenter: expected batch_size >= 1, got {batch_size}")
        cp = self.device.xp  # raises the clear error when CuPy or a GPU is missing
        self.cp, self.split, self.batch_size = cp, split, batch_size
        size = split.images.shape[1]
        self.crop = crop if crop is not None else default_crop(size)
        if not 0 < self.crop <= size:
            raise ValueError(f"GPUAugmenter: expected a crop in 1..{size}, got {self.crop}")
        shard_bounds(0, world_size, rank)  # checks the rank
        self.seed, self.alpha_std, self.scale, self.shuffle = seed, alpha_std, scale, shuffle
        self.rank, self.world_size = rank, world_size
        self._epoch, self._start, self._stop = 0, 0, len(self)
        rows = -(-batch_size // world_size)  # the most rows this rank takes of one batch
        with self.device.context():
            self.mean = cp.asarray(split.mean, dtype=cp.float32)
            self.copy_stream = cp.cuda.Stream(non_blocking=True)
            shape = (rows,) + split.images.shape[1:]
            self.pinned = [_empty_pinned(shape, np.uint8) for _ in range(2)]
            self.staged = [cp.empty(shape, dtype=cp.uint8) for _ in range(2)]
            self.copied = [None, None]  # event: the copy out of pinned slot s (into staged s) is done
            self.consumed = [None, None]  # event: the augmentation that read staged slot s is done
        self._gatherer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpu-augment-gather")

    def __len__(self):
        return -(-len(self.split) // self.batch_size)

    def set_epoch(self, epoch, start_batch=0, stop_batch=None):
        """The next iteration covers batches ``start_batch .. stop_batch - 1`` of ``epoch``."""
        self._epoch, self._start, self._stop = epoch_range(epoch, start_batch, stop_batch, len(self))

    def _gather(self, epoch, b):
        """Batch b's draws and uint8 pixels in pinned slot b % 2 (run on the gather thread)."""
        slot = b % 2
        idx, ys, xs, flips, shifts = batch_plan(self.split, self.batch_size, self.seed, epoch, b, self.crop,
                                                self.alpha_std, self.shuffle, self.rank, self.world_size)
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()  # the copy out of this pinned slot (two batches ago) has finished
        n = len(idx)
        np.take(self.split.images, idx, axis=0, out=self.pinned[slot][:n])
        return slot, n, (ys, xs, flips, shifts), np.asarray(self.split.labels)[idx].astype(np.int64)

    def _upload(self, job):
        """Queue the copy of a gathered batch on the copy stream, behind the augmentation that last
        read its device slot."""
        slot, n = job[0], job[1]
        cp = self.cp
        with self.device.context():
            if self.consumed[slot] is not None:
                self.copy_stream.wait_event(self.consumed[slot])
            self.staged[slot][:n].set(self.pinned[slot][:n], stream=self.copy_stream)
            copied = cp.cuda.Event(disable_timing=True)
            copied.record(self.copy_stream)
            self.copied[slot] = copied

    def _finish(self, job):
        """Queue the augmentation of an uploaded batch on the current stream; (images, labels)."""
        slot, n, (ys, xs, flips, shifts), labels = job
        cp = self.cp
        with self.device.context():
            stream = cp.cuda.get_current_stream()
            stream.wait_event(self.copied[slot])
            out = crop_flip_normalize(cp, self.staged[slot][:n], cp.asarray(ys), cp.asarray(xs), cp.asarray(flips),
                                      self.crop, self.mean, cp.asarray(shifts), self.scale)
            consumed = cp.cuda.Event(disable_timing=True)
            consumed.record(stream)
            self.consumed[slot] = consumed
            return out, labels

    def __iter__(self):
        epoch, start, stop = self._epoch, self._start, self._stop
        if start >= stop:
            return
        job = self._gather(epoch, start)
        self._upload(job)
        gathering = self._gatherer.submit(self._gather, epoch, start + 1) if start + 1 < stop else None
        for b in range(start, stop):
            out = self._finish(job)
            if gathering is not None:  # batch b+1: gathered during step b-1, its copy queued behind step b
                job = gathering.result()
                self._upload(job)
                gathering = self._gatherer.submit(self._gather, epoch, b + 2) if b + 2 < stop else None
            yield out

    def batches(self, epoch=0):
        """All batches of ``epoch`` (``set_epoch(epoch)`` then iterate)."""
        self.set_epoch(epoch)
        return iter(self)

    def close(self):
        self._gatherer.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
