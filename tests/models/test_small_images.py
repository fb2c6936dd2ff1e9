"""Fashion-MNIST stored at 28 x 28 and enlarged in the loader: the same pixels as a 256-px store."""
import dataclasses
import pickle

import numpy as np
import pytest

from minitorch_alex.data import StoreLoader, open_store, prepare, write_idx
from minitorch_alex.data.fashion_mnist import FILES
from minitorch_alex.data.resized import ResizedImages, upscale_store


@pytest.fixture(scope="module")
def idx_root(tmp_path_factory):
    """A fake Fashion-MNIST: 20 training and 10 test images of 28 x 28."""
    root = tmp_path_factory.mktemp("fm")
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("val", 10)):
        images, labels = FILES[split]
        write_idx(root / images, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / labels, (np.arange(n) % 10).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def stores(idx_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("stores")
    small = open_store(prepare(str(idx_root), str(out / "s28"), layout="fashion-mnist", size=28, progress=False))
    big = open_store(prepare(str(idx_root), str(out / "s256"), layout="fashion-mnist", size=256, progress=False))
    return small, big


def test_the_28px_store_enlarged_on_reading_equals_the_256px_store(stores):
    small, big = stores
    assert small.train.images.shape == (20, 28, 28, 3) and small.train.images.nbytes == 20 * 28 * 28 * 3
    seen = upscale_store(small, 256)
    assert seen.train.size == 256 and seen.manifest["stored_image_size"] == 28
    np.testing.assert_array_equal(seen.train.images[3], big.train.images[3])
    np.testing.assert_array_equal(seen.val.images[[1, 4]], big.val.images[[1, 4]])
    np.testing.assert_array_equal(seen.train.images[2:5, 10:20, :, 1], big.train.images[2:5, 10:20, :, 1])
    assert np.abs(seen.train.mean - big.train.mean).max() < 0.5  # only the enlarged images' rounding
    # the colour PCA (training jitter) is the stored images' own; given the same, batches agree
    big_split = dataclasses.replace(big.train, eigvals=small.train.eigvals, eigvecs=small.train.eigvecs)
    for train in (True, False):
        with StoreLoader(seen.train, batch_size=8, train=train, seed=1) as a, \
                StoreLoader(big_split, batch_size=8, train=train, seed=1) as b:
            for (xa, ya), (xb, yb) in zip(a, b):
                assert xa.shape == (len(ya), 3, 224, 224)
                np.testing.assert_array_equal(ya, yb)
                np.testing.assert_allclose(xa, xb, atol=0.5)


def test_enlarged_splits_go_to_spawn_workers_as_the_small_files(stores):
    seen = upscale_store(stores[0], 256)
    blob = pickle.dumps(seen.train)
    assert len(blob) < 200_000  # the small split reopens its files; no 256-px pixels travel
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.images[0], seen.train.images[0])
    with StoreLoader(seen.train, batch_size=10, train=False, workers=1, start_method="spawn") as loader:
        x, _ = next(iter(loader))
    with StoreLoader(seen.train, batch_size=10, train=False) as loader:
        np.testing.assert_array_equal(next(iter(loader))[0], x)


def test_resized_images_index_like_an_array():
    src = np.random.default_rng(1).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    view = ResizedImages(src, 16)
    assert view.shape == (4, 16, 16, 3) and len(view) == 4 and view[np.int64(2)].shape == (16, 16, 3)
    assert view[1:3].shape == (2, 16, 16, 3) and view[[0, 3], 5].shape == (2, 16, 3)
    assert np.asarray(view).shape == (4, 16, 16, 3)


def test_fashion_mnist_has_a_short_run_preset():
    from minitorch_alex.train.options import PRESETS, build_parser, explicit_flags, make_config, resolve_settings

    preset = PRESETS["fashion-mnist"][0]

    def config_of(argv):
        args = build_parser().parse_args(argv)
        return make_config(args, resolve_settings(args, explicit_flags(argv), preset, None, None, print), ("cpu",))

    cfg = config_of(["--data", "fashion-mnist"])
    assert (cfg.epochs, cfg.max_steps, cfg.max_val_batches, cfg.batch_size, cfg.init, cfg.input_scale,
            cfg.warmup_steps, cfg.patience) == (4, 250, 60, 32, "kaiming", 1 / 64, 50, 1)
    cfg = config_of(["--data", "fashion-mnist", "--max-steps", "7", "--evaluate"])
    assert cfg.max_steps == 7 and cfg.max_val_batches is None  # flags win; --evaluate scores the whole set


def test_the_cli_packs_fashion_mnist_at_28px_and_trains_at_224(idx_root, tmp_path, monkeypatch):
    from minitorch_alex.data import fashion_mnist
    from minitorch_alex.train.cli import main

    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOT", str(idx_root))
    lines = []
    main(["--data", "fashion-mnist", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
          "--epochs", "1", "--max-steps", "1", "--max-val-batches", "1", "--batch-size", "2", "--workers", "0",
          "--no-plots", "--no-progress"], echo=lines.append)
    stored = np.load(tmp_path / "data" / "fashion-mnist-28px-store" / "train_images.npy", mmap_mode="r")
    assert stored.shape == (20, 28, 28, 3)
    assert any("images of 256px" in line and "Fashion-MNIST's short-run preset" in line for line in lines)


def test_the_cli_trains_the_torchvision_variant_on_dummy_data(tmp_path):
    """--arch picks the architecture and --dummy the random data source; the checkpoint records
    the architecture, so --resume rebuilds the same network (and --evaluate loads into it)."""
    from minitorch_alex.checkpoint import read_meta
    from minitorch_alex.train.cli import main

    out = tmp_path / "run"
    lines = []
    main(["--dummy", "--arch", "alexnet-torchvision", "--out", str(out), "--epochs", "1", "--max-steps", "1",
          "--max-val-batches", "1", "--batch-size", "2", "--workers", "0", "--no-plots", "--no-progress"],
         echo=lines.append)
    assert any("--dummy" in line for line in lines)
    meta = read_meta(str(out / "last.npz"), ("config",))
    assert meta["config"]["arch"] == "alexnet-torchvision" and len(meta["classes"]) == 1000
