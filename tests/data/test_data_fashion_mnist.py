import gzip
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from minitorch_alex.data import load_fashion_mnist, open_store, prepare, read_idx, write_idx
from minitorch_alex.data.fashion_mnist import CLASSES, DEFAULT_ROOT, FILES


def test_read_idx_hand_made_file(tmp_path):
    # Written byte by byte from the format description, not with write_idx.
    path = tmp_path / "tiny-idx3-ubyte"
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 4) + data.tobytes())
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, data)


def test_read_idx_big_endian_ints_and_gzip(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + struct.pack(">3i", 1, -2, 70000))
    out = read_idx(path)
    assert out.tolist() == [1, -2, 70000] and out.dtype == np.int32


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
       shape=st.lists(st.integers(0, 4), min_size=1, max_size=4), gz=st.booleans(), seed=st.integers(0, 99))
def test_write_then_read_roundtrip(tmp_path, dtype, shape, gz, seed):
    a = (np.random.default_rng(seed).normal(size=shape) * 100).astype(dtype)
    path = tmp_path / ("a.gz" if gz else "a")
    write_idx(path, a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("payload", [b"", b"\x01\x00\x08\x01", bytes([0, 0, 0x08, 1]) + struct.pack(">I", 5) + b"abc",
                                     bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"a"])
def test_read_idx_rejects_malformed_files(tmp_path, payload):
    path = tmp_path / "bad-idx"
    path.write_bytes(payload)
    with pytest.raises(ValueError):
        read_idx(path)


def _fake_fashion(root, n_train=12, n_val=5):
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("val", n_val)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(os.path.join(root, FILES[split][0]), images)
        write_idx(os.path.join(root, FILES[split][1]), labels)
        arrays[split] = (images, labels)
    return arrays


def test_load_fashion_mnist_from_a_given_folder(tmp_path):
    arrays = _fake_fashion(str(tmp_path / "fm"))
    data = load_fashion_mnist(tmp_path / "fm")
    for split in ("train", "val"):
        np.testing.assert_array_equal(data[split][0], arrays[split][0])
        assert data[split][1].dtype == np.int64
        np.testing.assert_array_equal(data[split][1], arrays[split][1])


def test_missing_files_say_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_prepare_fashion_mnist_is_grey_rgb_upscaled(tmp_path):
    arrays = _fake_fashion(str(tmp_path / "fm"))
    store = open_store(prepare(tmp_path / "fm", tmp_path / "store", layout="fashion-mnist", size=56, progress=False))
    assert store.classes == CLASSES
    images = np.asarray(store.train.images)
    assert images.shape == (12, 56, 56, 3)
    assert np.array_equal(images[..., 0], images[..., 1]) and np.array_equal(images[..., 0], images[..., 2])
    # Each image is the 28x28 source upscaled with Pillow's bilinear filter.
    for i in (0, 11):
        ref = np.asarray(Image.fromarray(arrays["train"][0][i]).resize((56, 56), Image.Resampling.BILINEAR))
        assert np.abs(images[i, :, :, 0].astype(int) - ref).max() <= 1
    np.testing.assert_array_equal(store.train.labels, np.arange(12) % 10)
    assert store.manifest["splits"]["val"]["count"] == 5


@pytest.mark.skipif(not os.path.isdir(DEFAULT_ROOT), reason="dataset-fashion-mnist is not installed")
def test_real_debian_package_files():
    data = load_fashion_mnist()
    assert data["train"][0].shape == (60000, 28, 28) and data["val"][0].shape == (10000, 28, 28)
    assert np.bincount(data["train"][1]).tolist() == [6000] * 10
