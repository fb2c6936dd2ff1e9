"""Training-set statistics needed by the augmentation: the mean image and
the principal components of RGB pixel values.

* ``mean``: (S, S, 3) float32, the per-position mean over training images,
  in 0..255 units (subtracted from 0..255 pixels).
* ``cov``: (3, 3) float64, the covariance of all training pixels' RGB
  values **scaled to [0, 1]** (value / 255). [0, 1] is the scale of the
  usual AlexNet re-implementations; the paper adds ``alpha * lambda`` to
  pixels, which only gives a small, sensible shift when lambda is measured
  in [0, 1] units (see :mod:`minitorch_alex.data.augment`).
* ``eigvals``: (3,) float32, eigenvalues of ``cov`` in descending order.
* ``eigvecs``: (3, 3) float32, column k is the unit eigenvector of
  ``eigvals[k]``, so ``cov == eigvecs @ diag(eigvals) @ eigvecs.T``.

Sums are accumulated exactly in integers, so the result does not depend on
chunking or order and does not lose precision over a million images.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from tqdm import tqdm


class PixelStats(NamedTuple):
    mean: np.ndarray  # (S, S, 3) float32, 0..255
    cov: np.ndarray  # (3, 3) float64, [0, 1] units
    eigvals: np.ndarray  # (3,) float32, descending
    eigvecs: np.ndarray  # (3, 3) float32, columns


def compute_stats(images: np.ndarray, chunk: int = 32, progress: bool = False) -> PixelStats:
    """Mean image and RGB covariance/PCA of ``images`` (N, S, S, 3) uint8.

    Reads ``chunk`` images at a time, so a memory-mapped store larger than
    RAM is fine.
    """
    n, size = len(images), images.shape[1]
    if n == 0:
        raise ValueError("cannot compute statistics of an empty training set")
    image_sum = np.zeros(images.shape[1:], dtype=np.int64)
    rgb_sum = np.zeros(3, dtype=np.int64)
    outer_sum = np.zeros((3, 3), dtype=np.int64)
    # One image's pixels as a (3, S*S) float64 plane: small enough to stay in
    # cache, and channel-major so plane @ plane.T is one fast BLAS call.
    plane = np.empty((3, size * size), dtype=np.float64)
    for start in tqdm(range(0, n, chunk), desc="stats", unit="chunk", disable=not progress):
        block = np.asarray(images[start:start + chunk])
        image_sum += block.sum(axis=0, dtype=np.int64)
        for image in block:
            np.copyto(plane, image.reshape(-1, 3).T)
            # Integer-valued and below 2**53 for any image size used here
            # (S*S*255**2), so the float64 sums are exact.
            rgb_sum += np.rint(plane.sum(axis=1)).astype(np.int64)
            outer_sum += np.rint(plane @ plane.T).astype(np.int64)
    count = n * size * size
    mean_rgb = rgb_sum / count
    cov = (outer_sum / count - np.outer(mean_rgb, mean_rgb)) / 255.0**2
    eigvals, eigvecs = np.linalg.eigh(cov)  # ascending
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = eigvals[order], eigvecs[:, order]
    mean = (image_sum / n).astype(np.float32)
    return PixelStats(mean, cov, np.clip(eigvals, 0, None).astype(np.float32), eigvecs.astype(np.float32))
