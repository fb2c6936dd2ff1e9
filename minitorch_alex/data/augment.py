"""AlexNet's data augmentation (Krizhevsky et al. 2012, section 4.1) on
uint8 batches from the store.

Input: ``images`` of shape ``(N, S, S, 3)`` uint8 (S = 256 in the paper),
or a larger array plus an ``index`` array picking N rows (so a loader can
crop straight out of a memory-mapped store without gathering first).
Output: float32 in NCHW layout, ``(N, 3, C, C)`` (C = 224 in the paper).

Training (``train_augment``), per image:

1. a random ``C x C`` crop, offsets uniform in ``0..S-C`` inclusive;
2. a horizontal flip with probability 1/2;
3. PCA colour jitter: ``alpha ~ N(0, 0.1^2)`` per eigenvector, and
   ``V @ (alpha * lambda)`` is added to every pixel of that image;
4. mean subtraction: the paper subtracts the mean image from the 256x256
   image *before* taking patches. We subtract the mean image cropped (and
   flipped) exactly like the image, which gives the same result.

Units: pixels and the mean image are in 0..255. The eigen-decomposition
(``eigvals``, ``eigvecs``) is of the RGB covariance of pixels scaled to
[0, 1] (see :mod:`minitorch_alex.data.stats`), so the jitter is computed in
[0, 1] units and multiplied by 255 before it is added. With 0..255
eigenvalues the jitter would be ~255 times larger than intended. The result
is multiplied by ``scale`` (default 1, i.e. mean-centred 0..255 values).

Test time: ``center_crop`` (one crop) and ``ten_crop``: the four corner
crops and the centre crop, then the horizontal flips of those five, in the
order given by ``ten_crop_offsets``: top-left, top-right, bottom-left,
bottom-right, centre, then the same five mirrored.

All randomness comes from the ``numpy.random.Generator`` passed in, and the
draws happen in a fixed order (offsets y, offsets x, flips, alphas), so a
generator seeded the same way gives the same batch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def default_crop(size: int) -> int:
    """The paper's crop size for a store size: 224 for 256, 28 for 32."""
    return int(round(size * 224 / 256))


class TrainParams(NamedTuple):
    """Random choices for a batch of N images."""

    ys: np.ndarray  # (N,) int64 crop top rows in 0..S-C
    xs: np.ndarray  # (N,) int64 crop left columns in 0..S-C
    flips: np.ndarray  # (N,) bool, True = mirror left-right
    alphas: np.ndarray  # (N, 3) float64 PCA coefficients, N(0, alpha_std^2)


def sample_train_params(rng: np.random.Generator, n: int, size: int, crop: int,
                        alpha_std: float = 0.1) -> TrainParams:
    """Draw the per-image crop offsets, flips and PCA coefficients."""
    if not 0 < crop <= size:
        raise ValueError(f"crop {crop} must be in 1..{size}")
    ys = rng.integers(0, size - crop + 1, size=n)
    xs = rng.integers(0, size - crop + 1, size=n)
    flips = rng.random(n) < 0.5
    alphas = rng.normal(0.0, alpha_std, size=(n, 3))
    return TrainParams(ys, xs, flips, alphas)


def pca_shift(alphas: np.ndarray, eigvals: np.ndarray, eigvecs: np.ndarray) -> np.ndarray:
    """Per-image RGB offsets ``255 * V @ (alpha * lambda)``, shape (N, 3).

    ``alphas`` (N, 3); ``eigvals`` (3,) and ``eigvecs`` (3, 3) (column k is
    eigenvector k) of the covariance of [0, 1]-scaled RGB pixels. The result
    is in 0..255 pixel units. Its covariance over images is
    ``255^2 * V diag(alpha_std^2 * lambda^2) V^T``.
    """
    return 255.0 * (alphas * eigvals) @ np.asarray(eigvecs, dtype=np.float64).T


def crop_to_chw(images: np.ndarray, ys, xs, flips, crop: int, mean: np.ndarray | None = None,
                shifts: np.ndarray | None = None, scale: float = 1.0, out: np.ndarray | None = None,
                index: np.ndarray | None = None) -> np.ndarray:
    """The one kernel every mode uses: crop, flip, centre, shift, to NCHW.

    ``out[i] = scale * (flip_i(crop_i(images[index[i]] - mean)) + shifts[i])``
    transposed to (3, C, C). ``ys``, ``xs``, ``flips``: (N,) per-image crop
    offsets and flips; ``mean``: (S, S, 3) float32 or None; ``shifts``:
    (N, 3) or None; ``out``: a preallocated (N, 3, C, C) float32 array to
    fill (e.g. a shared-memory slot), allocated when None.

    Only the C x C window of each image is read, which matters when
    ``images`` is a memory map of a data set larger than RAM.
    """
    n = len(ys)
    if out is None:
        out = np.empty((n, 3, crop, crop), dtype=np.float32)
    for i in range(n):
        y, x = int(ys[i]), int(xs[i])
        img = images[i if index is None else index[i]]
        window = (slice(y, y + crop), slice(x, x + crop))
        if flips[i]:
            window = (window[0], slice(x + crop - 1, x - 1 if x > 0 else None, -1))
        patch = img[window].transpose(2, 0, 1)  # (3, C, C) view, no copy yet
        if mean is not None:
            np.subtract(patch, mean[window].transpose(2, 0, 1), out=out[i], dtype=np.float32)
        else:
            out[i] = patch
        if shifts is not None:
            out[i] += shifts[i].astype(np.float32)[:, None, None]
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def train_augment(images: np.ndarray, mean: np.ndarray | None, eigvals: np.ndarray, eigvecs: np.ndarray,
                  crop: int, rng: np.random.Generator, alpha_std: float = 0.1, scale: float = 1.0,
                  out: np.ndarray | None = None, index: np.ndarray | None = None) -> np.ndarray:
    """Random crop + flip + PCA jitter + mean subtraction: (N, 3, C, C) float32."""
    n = len(images) if index is None else len(index)
    p = sample_train_params(rng, n, images.shape[1], crop, alpha_std)
    shifts = pca_shift(p.alphas, eigvals, eigvecs)
    return crop_to_chw(images, p.ys, p.xs, p.flips, crop, mean, shifts, scale, out, index)


def center_crop(images: np.ndarray, mean: np.ndarray | None, crop: int, scale: float = 1.0,
                out: np.ndarray | None = None, index: np.ndarray | None = None) -> np.ndarray:
    """The central C x C crop, mean-subtracted: (N, 3, C, C) float32."""
    n = len(images) if index is None else len(index)
    offset = (images.shape[1] - crop) // 2
    at = np.full(n, offset)
    return crop_to_chw(images, at, at, np.zeros(n, bool), crop, mean, None, scale, out, index)


def ten_crop_offsets(size: int, crop: int) -> list[tuple[int, int, bool]]:
    """``(y, x, flip)`` of the ten test crops, in output order: top-left,
    top-right, bottom-left, bottom-right, centre, then the same mirrored."""
    far, mid = size - crop, (size - crop) // 2
    five = [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
    return [(y, x, False) for y, x in five] + [(y, x, True) for y, x in five]


def ten_crop(images: np.ndarray, mean: np.ndarray | None, crop: int, scale: float = 1.0,
             out: np.ndarray | None = None, index: np.ndarray | None = None) -> np.ndarray:
    """The paper's ten test patches per image: (N, 10, 3, C, C) float32.

    The network's softmax outputs are averaged over axis 1 at test time.
    """
    n = len(images) if index is None else len(index)
    if out is None:
        out = np.empty((n, 10, 3, crop, crop), dtype=np.float32)
    for k, (y, x, flip) in enumerate(ten_crop_offsets(images.shape[1], crop)):
        # out[:, k] is a strided view whose rows out[i, k] are contiguous: fill it in place.
        crop_to_chw(images, np.full(n, y), np.full(n, x), np.full(n, flip),
                    crop, mean, None, scale, out[:, k], index)
    return out
