import json
import os

import numpy as np
import pytest
from data_helpers import make_plain_tree

import minitorch_alex.data.prepare_store as prepare_mod
from minitorch_alex.data import compute_stats, open_store, prepare
from minitorch_alex.data.prepare_store import truncate_npy_rows

S = 32


def test_prepare_imagefolder_outputs(tmp_path):
    src = make_plain_tree(tmp_path / "src", classes=("a", "b", "c"), per_class=(4, 2))
    out = prepare(src, tmp_path / "store", size=S, progress=False)
    store = open_store(out)
    m = store.manifest
    assert m["classes"] == ["a", "b", "c"] and m["image_size"] == S and m["crop_size"] == 28
    assert m["splits"]["train"]["count"] == 12 and m["splits"]["val"]["count"] == 6 and m["total"] == 18
    assert m["splits"]["train"]["counts_per_class"] == [4, 4, 4]
    assert m["source"] == os.path.abspath(src)
    tr = store.train
    assert tr.images.shape == (12, S, S, 3) and tr.images.dtype == np.uint8
    assert isinstance(tr.images, np.memmap) and not tr.images.flags.writeable
    assert tr.labels.dtype == np.int64 and tr.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # Each source image is constant (red = 60k + 10, green = 20i): check pixels and order.
    for row, (k, i) in enumerate((k, i) for k in range(3) for i in range(4)):
        assert tuple(tr.images[row, 5, 7]) == (60 * k + 10, 20 * i, 128)
    assert store.val.images.shape == (6, S, S, 3)
    assert store.train.mean.shape == (S, S, 3) and store.train.mean.dtype == np.float32
    np.testing.assert_allclose(store.train.mean, tr.images.astype(np.float64).mean(0), atol=1e-4)
    # Only the documented files; nothing pickled, no leftovers.
    assert sorted(os.listdir(out)) == sorted(["manifest.json", "mean.npy", "pca_eigvals.npy", "pca_eigvecs.npy",
                                              "train_images.npy", "train_labels.npy", "val_images.npy",
                                              "val_labels.npy"])
    assert not os.path.exists(out + ".partial")


def test_prepare_skips_and_reports_bad_files(odd_tree, tmp_path):
    src, info = odd_tree
    with pytest.warns(UserWarning, match="skipped 3 of"):
        out = prepare(src, tmp_path / "store", size=S, progress=False)
    with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
        m = json.load(f)
    skipped = m["splits"]["train"]["skipped"]
    assert sorted(os.path.basename(s["path"]) for s in skipped) == sorted(info["bad"])
    assert all(s["reason"] for s in skipped)
    n_odd = len(info["good"]) + 3  # odd files that decode + 3 plain images in train/odd
    assert m["splits"]["train"]["counts_per_class"] == [n_odd, 3]
    assert m["splits"]["train"]["listed"] == n_odd + 3 + len(info["bad"])
    store = open_store(out)
    assert store.train.images.shape == (n_odd + 3, S, S, 3)  # tail left by skipped files was cut
    assert m["skipped_total"] == 3


def test_pixel_stats_pca_is_consistent():
    rng = np.random.default_rng(0)
    # Correlated colours so the covariance is far from diagonal.
    base = rng.integers(0, 200, (20, 8, 8, 1))
    images = np.clip(base + rng.integers(0, 56, (20, 8, 8, 3)) * [1, 0.5, 0.2], 0, 255).astype(np.uint8)
    stats = compute_stats(images, chunk=3)  # odd chunking must not matter
    pixels = images.reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(stats.cov, np.cov(pixels.T, bias=True), rtol=1e-9, atol=1e-12)
    v, lam = stats.eigvecs.astype(np.float64), stats.eigvals.astype(np.float64)
    np.testing.assert_allclose(v.T @ v, np.eye(3), atol=1e-6)  # orthonormal
    np.testing.assert_allclose(v @ np.diag(lam) @ v.T, stats.cov, atol=1e-6)  # reconstructs
    assert lam[0] >= lam[1] >= lam[2] >= 0
    np.testing.assert_allclose(stats.mean, images.mean(0), atol=1e-4)


def test_store_stats_match_training_images(tmp_path):
    src = make_plain_tree(tmp_path / "src", per_class=(4, 2))
    store = open_store(prepare(src, tmp_path / "store", size=16, progress=False))
    ref = compute_stats(np.asarray(store.train.images))
    np.testing.assert_allclose(store.train.eigvals, ref.eigvals)
    np.testing.assert_allclose(store.manifest["pixel_stats"]["cov"], ref.cov, rtol=1e-12)


def _boom_after(monkeypatch, n_ok):
    """Make the (n_ok+1)-th image decode raise, like a crash or Ctrl-C."""
    real = prepare_mod.load_image
    calls = {"n": 0}

    def flaky(path, size):
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise KeyboardInterrupt("simulated crash")
        return real(path, size)

    monkeypatch.setattr(prepare_mod, "load_image", flaky)
    return calls


def test_crash_leaves_no_complete_looking_output_and_resume_matches(tmp_path, monkeypatch):
    src = make_plain_tree(tmp_path / "src", classes=("a", "b", "c", "d"), per_class=(5, 2))
    out = str(tmp_path / "store")
    _boom_after(monkeypatch, 13)
    with pytest.raises(KeyboardInterrupt):
        prepare(src, out, size=S, chunk_size=4, progress=False)
    assert not os.path.exists(out)
    with pytest.raises(FileNotFoundError):
        open_store(out)
    assert os.path.exists(out + ".partial") and not os.path.exists(os.path.join(out + ".partial", "manifest.json"))

    monkeypatch.undo()
    calls = _boom_after(monkeypatch, 10**9)  # count decodes only
    prepare(src, out, size=S, chunk_size=4, progress=False)
    # 13 decoded before the crash, the last checkpoint was after 12: 20 - 12 train + 8 val remain.
    assert calls["n"] == 20 - 12 + 8
    monkeypatch.undo()
    fresh = prepare(src, tmp_path / "fresh", size=S, chunk_size=4, progress=False)
    a, b = open_store(out), open_store(fresh)
    np.testing.assert_array_equal(a.train.images, b.train.images)
    np.testing.assert_array_equal(a.train.labels, b.train.labels)
    np.testing.assert_array_equal(a.val.images, b.val.images)
    np.testing.assert_array_equal(a.train.mean, b.train.mean)


def test_crash_in_the_final_steps_leaves_no_output(tmp_path, monkeypatch):
    src = make_plain_tree(tmp_path / "src", per_class=(2, 1))
    out = str(tmp_path / "store")

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(prepare_mod, "compute_stats", fail)
    with pytest.raises(OSError, match="disk full"):
        prepare(src, out, size=S, progress=False)
    assert not os.path.exists(out)


def test_existing_store_is_reused_or_protected(tmp_path):
    src = make_plain_tree(tmp_path / "src", per_class=(2, 1))
    out = prepare(src, tmp_path / "store", size=S, progress=False)
    stamp = os.stat(os.path.join(out, "train_images.npy")).st_mtime_ns
    assert prepare(src, out, size=S, progress=False) == out  # same settings: nothing redone
    assert os.stat(os.path.join(out, "train_images.npy")).st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="overwrite"):
        prepare(src, out, size=16, progress=False)
    prepare(src, out, size=16, overwrite=True, progress=False)
    assert open_store(out).train.size == 16
    other = tmp_path / "not_a_store"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        prepare(src, other, size=S, overwrite=True, progress=False)
    assert (other / "precious.txt").exists()


def test_prepare_with_worker_processes_gives_the_same_store(odd_tree, tmp_path):
    src, _ = odd_tree
    with pytest.warns(UserWarning):
        a = open_store(prepare(src, tmp_path / "a", size=S, chunk_size=3, progress=False))
    with pytest.warns(UserWarning):
        b = open_store(prepare(src, tmp_path / "b", size=S, chunk_size=3, workers=2, progress=False))
    np.testing.assert_array_equal(a.train.images, b.train.images)
    np.testing.assert_array_equal(a.train.labels, b.train.labels)
    assert a.manifest["splits"] == b.manifest["splits"]


def test_truncate_npy_rows(tmp_path):
    path = str(tmp_path / "x.npy")
    data = np.arange(12 * 5, dtype=np.int64).reshape(12, 5)
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.int64, shape=data.shape)
    mm[:] = data
    del mm
    truncate_npy_rows(path, 7)
    back = np.load(path, allow_pickle=False)
    np.testing.assert_array_equal(back, data[:7])
    truncate_npy_rows(path, 0)
    assert np.load(path, allow_pickle=False).shape == (0, 5)
    with pytest.raises(ValueError):
        truncate_npy_rows(path, 1)


def test_prepare_synthetic_layout(tmp_path):
    out = prepare(tmp_path / "src", tmp_path / "store", layout="synthetic", size=S, progress=False,
                  synthetic_options={"num_classes": 4, "train_per_class": 3, "val_per_class": 2})
    store = open_store(out)
    assert store.manifest["layout"] == "synthetic" and len(store.classes) == 4
    assert store.train.images.shape == (12, S, S, 3) and store.val.images.shape == (8, S, S, 3)
    assert store.manifest["splits"]["val"]["counts_per_class"] == [2, 2, 2, 2]
