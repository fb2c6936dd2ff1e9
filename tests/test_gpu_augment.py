"""The GPU augmentation's math on NumPy: ``crop_flip_normalize`` is bit-identical to the CPU
path (``augment.crop_to_chw``) for the same crop offsets, flips and PCA shifts, and the batch
plan draws what the CPU ``DataLoader`` draws. (The CuPy pipeline itself: tests/test_gpu.py.)"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_alex.data import DataLoader, StoreSplit
from minitorch_alex.data.augment import crop_to_chw, pca_shift, sample_train_params
from minitorch_alex.data.gpu_augment import GPUAugmenter, batch_plan, crop_flip_normalize


def make_split(rng, n=7, size=12):
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    cov = np.cov(images.reshape(-1, 3).T / 255.0)
    eigvals, eigvecs = np.linalg.eigh(cov)
    return StoreSplit(images=images, labels=rng.integers(0, 5, n), mean=images.mean(0).astype(np.float32),
                      eigvals=eigvals.astype(np.float32), eigvecs=eigvecs.astype(np.float32))


@given(seed=st.integers(0, 2**16), crop=st.integers(1, 12), use_mean=st.booleans(), use_shift=st.booleans(),
       use_index=st.booleans(), scale=st.sampled_from([1.0, 0.5, 1 / 255]))
def test_crop_flip_normalize_is_bit_identical_to_the_cpu_kernel(seed, crop, use_mean, use_shift, use_index, scale):
    rng = np.random.default_rng(seed)
    split = make_split(rng)
    n = 5
    p = sample_train_params(rng, n, 12, crop)
    shifts = pca_shift(p.alphas, split.eigvals, split.eigvecs) if use_shift else None
    mean = split.mean if use_mean else None
    index = rng.integers(0, len(split.images), n) if use_index else None
    images = split.images if use_index else split.images[:n]
    expected = crop_to_chw(images, p.ys, p.xs, p.flips, crop, mean, shifts, scale, index=index)
    got = crop_flip_normalize(np, images, p.ys, p.xs, p.flips, crop, mean, shifts, scale, index=index)
    assert got.dtype == np.float32 and got.shape == (n, 3, crop, crop) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def test_flip_mirrors_columns(rng):
    images = rng.integers(0, 256, (1, 4, 4, 3), dtype=np.uint8)
    plain = crop_flip_normalize(np, images, [0], [1], [False], 3)
    mirrored = crop_flip_normalize(np, images, [0], [1], [True], 3)
    np.testing.assert_array_equal(mirrored, plain[..., ::-1])
    np.testing.assert_array_equal(plain[0], images[0, 0:3, 1:4].transpose(2, 0, 1))


def test_batch_plan_draws_what_the_cpu_loader_draws(rng):
    split = make_split(rng, n=9)
    loader = DataLoader(split, batch_size=4, train=True, seed=11, crop=10, workers=0)
    loader.set_epoch(2)
    for b, (images, labels) in enumerate(loader):
        images = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
        idx, ys, xs, flips, shifts = batch_plan(split, 4, 11, 2, b, 10)
        got = crop_flip_normalize(np, split.images, ys, xs, flips, 10, split.mean, shifts, index=idx)
        np.testing.assert_array_equal(got, images)
        np.testing.assert_array_equal(split.labels[idx], np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels))
    assert b == 2  # 9 images in batches of 4


def test_gpu_augmenter_needs_a_cuda_device(rng):
    with pytest.raises(ValueError, match="cuda"):
        GPUAugmenter(make_split(rng), device="cpu")
