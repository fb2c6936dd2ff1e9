import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minitorch_alex.data import (
    center_crop,
    crop_to_chw,
    default_crop,
    pca_shift,
    sample_train_params,
    ten_crop,
    ten_crop_offsets,
    train_augment,
)

S, C = 32, 28


def _images(n, size=S, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _chw(patch_hwc):
    return patch_hwc.transpose(2, 0, 1).astype(np.float32)


def test_default_crop_is_the_papers_ratio():
    assert default_crop(256) == 224 and default_crop(32) == 28 and default_crop(64) == 56


def test_crop_offsets_cover_the_full_range_and_flip_rate_is_half():
    rng = np.random.default_rng(0)
    p = sample_train_params(rng, 20000, S, C)
    assert set(p.ys.tolist()) == set(range(S - C + 1)) == set(p.xs.tolist())  # 0..S-C inclusive
    counts = np.bincount(p.ys, minlength=S - C + 1)
    assert counts.min() > 0.8 * 20000 / (S - C + 1)  # roughly uniform
    assert abs(p.flips.mean() - 0.5) < 0.02
    assert p.alphas.shape == (20000, 3) and abs(p.alphas.std() - 0.1) < 0.005


def test_pca_noise_has_the_papers_covariance():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    lam = np.array([0.06, 0.01, 0.002])
    n = 200000
    noise = pca_shift(rng.normal(0, 0.1, (n, 3)), lam, q) / 255.0  # back to [0, 1] units
    expected = q @ np.diag(0.01 * lam**2) @ q.T
    measured = noise.T @ noise / n
    np.testing.assert_allclose(measured, expected, atol=0.02 * expected.max())
    # And it is not isotropic: the largest eigenvector carries most of the noise.
    assert np.var(noise @ q[:, 0]) > 50 * np.var(noise @ q[:, 2])


def test_train_augment_matches_the_formula_image_by_image():
    images = _images(6)
    mean = images.mean(0).astype(np.float32)
    q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(3, 3)))
    lam = np.array([0.05, 0.02, 0.01])
    out = train_augment(images, mean, lam, q, C, np.random.default_rng(42), scale=0.5)
    p = sample_train_params(np.random.default_rng(42), 6, S, C)  # same draws
    shift = 255 * (p.alphas * lam) @ q.T
    assert out.shape == (6, 3, C, C) and out.dtype == np.float32
    for i in range(6):
        y, x = p.ys[i], p.xs[i]
        patch = images[i, y:y + C, x:x + C].astype(np.float64) - mean[y:y + C, x:x + C] + shift[i]
        if p.flips[i]:
            patch = patch[:, ::-1]
        np.testing.assert_allclose(out[i], 0.5 * patch.transpose(2, 0, 1), rtol=1e-5, atol=1e-3)


def test_train_augment_is_deterministic_in_the_generator():
    images = _images(8)
    args = (images, None, np.ones(3) * 0.01, np.eye(3), C)
    a = train_augment(*args, np.random.default_rng(3))
    b = train_augment(*args, np.random.default_rng(3))
    c = train_augment(*args, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_index_reads_rows_without_gathering():
    images = _images(10)
    idx = np.array([7, 2, 2, 9])
    a = center_crop(images, None, C, index=idx)
    b = center_crop(images[idx], None, C)
    np.testing.assert_array_equal(a, b)


def test_ten_crop_geometry_and_order():
    images = _images(3)
    mean = _images(1, seed=9)[0].astype(np.float32)
    out = ten_crop(images, mean, C)
    assert out.shape == (3, 10, 3, C, C)
    d = S - C
    corners = [(0, 0), (0, d), (d, 0), (d, d), (d // 2, d // 2)]
    centred = images.astype(np.float32) - mean
    for n in range(3):
        for k, (y, x) in enumerate(corners):
            expected = _chw(centred[n, y:y + C, x:x + C])
            np.testing.assert_allclose(out[n, k], expected, atol=1e-4)
            np.testing.assert_array_equal(out[n, k + 5], out[n, k][:, :, ::-1])  # mirror image
    np.testing.assert_array_equal(out[:, 4], center_crop(images, mean, C))
    assert [o[:2] for o in ten_crop_offsets(S, C)] == corners * 2


def test_crops_can_reach_both_edges():
    images = _images(2)
    out = crop_to_chw(images, [0, S - C], [S - C, 0], [True, False], C)
    np.testing.assert_array_equal(out[0], _chw(images[0, :C, S - C:][:, ::-1]))
    np.testing.assert_array_equal(out[1], _chw(images[1, S - C:, :C]))


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 24), data=st.data())
def test_crop_geometry_on_random_sizes(size, data):
    crop = data.draw(st.integers(1, size))
    y = data.draw(st.integers(0, size - crop))
    x = data.draw(st.integers(0, size - crop))
    flip = data.draw(st.booleans())
    images = _images(2, size, seed=size)
    mean = _images(1, size, seed=size + 1)[0].astype(np.float32)
    shifts = np.array([[1.5, -2.0, 3.0], [0.0, 0.0, 0.0]])
    out = crop_to_chw(images, [y, y], [x, x], [flip, flip], crop, mean, shifts)
    for i in range(2):
        ref = images[i, y:y + crop, x:x + crop].astype(np.float64) - mean[y:y + crop, x:x + crop] + shifts[i]
        if flip:
            ref = ref[:, ::-1]
        np.testing.assert_allclose(out[i], ref.transpose(2, 0, 1), atol=1e-4)


def test_bad_crop_size_is_rejected():
    with pytest.raises(ValueError):
        sample_train_params(np.random.default_rng(0), 1, 8, 9)
