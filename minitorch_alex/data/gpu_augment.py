"""The paper's augmentation on the GPU, fed by an asynchronous copy pipeline.

Same results as the CPU path (``augment.py`` through ``DataLoader``): for a given seed the GPU
batches have the same images, crops, flips and PCA shifts, because the random draws happen on
the host in exactly the CPU loader's order (``epoch_order``, then ``sample_train_params`` from
``default_rng([seed, epoch, 1, b])``). Only the pixel work moves to the GPU:

    store (uint8 memmap) --gather--> pinned host buffer --async copy, copy stream--> GPU uint8
        --crop/flip/mean/PCA, compute stream--> (N, 3, C, C) float32 on the GPU

uint8 pixels are a quarter of the float32 batch, so the bus carries 4x less than copying
augmented batches; the copy of batch b+1 overlaps the training step on batch b (two pinned
slots, one CUDA event per slot each way so neither side overwrites what the other still uses).

``crop_flip_normalize`` is the pixel math, written for any array module (NumPy or CuPy):
``tests/test_gpu_augment.py`` checks it on NumPy against ``augment.crop_to_chw`` (bit for bit),
and ``tests/test_gpu.py`` checks the CuPy pipeline against it on a GPU.
"""
from __future__ import annotations

import numpy as np

from ..device import Device
from .augment import pca_shift, sample_train_params
from .loader import epoch_order


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


def batch_plan(split, batch_size, seed, epoch, b, crop, alpha_std=0.1, shuffle=True):
    """The host-side draws of training batch ``b``, identical to the CPU ``DataLoader``'s:
    (index (N,), ys, xs, flips, shifts (N, 3) float64)."""
    idx = epoch_order(len(split), seed, epoch, shuffle)[b * batch_size:(b + 1) * batch_size]
    p = sample_train_params(np.random.default_rng([seed, epoch, 1, b]), len(idx), split.images.shape[1], crop,
                            alpha_std)
    return idx, p.ys, p.xs, p.flips, pca_shift(p.alphas, split.eigvals, split.eigvecs)


class GPUAugmenter:
    """Training batches of a ``StoreSplit`` made on ``device`` (a 'cuda:N' name).

    ``batches(epoch)`` yields (images (N, 3, C, C) float32, labels (N,) int64), both CuPy arrays
    on the device, the same batches as ``DataLoader(split, batch_size, train=True, seed=seed,
    crop=crop, scale=scale)`` (drop_last=False).
    """

    def __init__(self, split, batch_size=128, crop=None, device="cuda:0", seed=0, alpha_std=0.1, scale=1.0,
                 shuffle=True):
        self.device = Device(device)
        if self.device.type != "cuda":
            raise ValueError(f"GPUAugmenter: expected a 'cuda:N' device, got {self.device}")
        cp = self.device.xp  # raises the clear error when CuPy or a GPU is missing
        self.cp, self.split, self.batch_size = cp, split, batch_size
        size = split.images.shape[1]
        self.crop = crop if crop is not None else int(round(size * 224 / 256))
        self.seed, self.alpha_std, self.scale, self.shuffle = seed, alpha_std, scale, shuffle
        with self.device.context():
            self.mean = cp.asarray(split.mean, dtype=cp.float32)
            self.copy_stream = cp.cuda.Stream(non_blocking=True)
            shape = (batch_size,) + split.images.shape[1:]
            from cupyx import empty_pinned  # noqa: PLC0415

            self.pinned = [empty_pinned(shape, dtype=np.uint8) for _ in range(2)]
            self.staged = [cp.empty(shape, dtype=cp.uint8) for _ in range(2)]
            self.copied = [cp.cuda.Event(disable_timing=True) for _ in range(2)]  # copy of slot done
            self.consumed = [None, None]  # augmentation that read slot's GPU buffer, once launched

    def __len__(self):
        return -(-len(self.split) // self.batch_size)

    def _submit(self, epoch, b):
        """Gather batch b into a pinned slot and start its copy on the copy stream."""
        slot = b % 2
        idx, ys, xs, flips, shifts = batch_plan(self.split, self.batch_size, self.seed, epoch, b, self.crop,
                                                self.alpha_std, self.shuffle)
        n = len(idx)
        self.copied[slot].synchronize()  # the previous copy out of this pinned slot has finished
        np.take(self.split.images, idx, axis=0, out=self.pinned[slot][:n])
        with self.device.context():
            if self.consumed[slot] is not None:  # don't overwrite pixels an augmentation still reads
                self.copy_stream.wait_event(self.consumed[slot])
            self.staged[slot][:n].set(self.pinned[slot][:n], stream=self.copy_stream)
            self.copied[slot].record(self.copy_stream)
        return slot, n, (ys, xs, flips, shifts), self.split.labels[idx]

    def _finish(self, job):
        slot, n, (ys, xs, flips, shifts), labels = job
        cp = self.cp
        with self.device.context():
            stream = cp.cuda.get_current_stream()
            stream.wait_event(self.copied[slot])
            out = crop_flip_normalize(cp, self.staged[slot][:n], cp.asarray(ys), cp.asarray(xs), cp.asarray(flips),
                                      self.crop, self.mean, cp.asarray(shifts), self.scale)
            self.consumed[slot] = stream.record()
            return out, cp.asarray(labels)

    def batches(self, epoch=0):
        pending = self._submit(epoch, 0) if len(self) else None
        for b in range(len(self)):
            upcoming = self._submit(epoch, b + 1) if b + 1 < len(self) else None  # overlaps this step
            yield self._finish(pending)
            pending = upcoming

    __iter__ = batches
