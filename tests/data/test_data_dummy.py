"""--dummy data: random images with the packed store's interface, small in memory."""
import pickle

import numpy as np
import pytest

from minitorch_alex.data import StoreLoader
from minitorch_alex.data.dummy import dummy_split, dummy_store


def test_dummy_store_feeds_the_data_loader_like_a_packed_store():
    store = dummy_store(num_classes=7, train_size=20, val_size=5, size=64, seed=3)
    assert store.classes == [f"class{i:04d}" for i in range(7)] and len(store.val) == 5
    with StoreLoader(store.train, batch_size=8, train=True, seed=0) as loader:
        batches = list(loader)
    assert [b[0].shape for b in batches] == [(8, 3, 56, 56)] * 2 + [(4, 3, 56, 56)]
    labels = np.concatenate([b[1] for b in batches])
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 7
    with StoreLoader(store.val, batch_size=5, train=False, ten_crop=True) as loader:
        assert next(iter(loader))[0].shape == (5, 10, 3, 56, 56)
    again = dummy_store(num_classes=7, train_size=20, val_size=5, size=64, seed=3)
    np.testing.assert_array_equal(again.train.images, store.train.images)  # fixed by the seed
    assert not np.array_equal(store.train.images[0], store.val.images[0])


def test_imagenet_sized_dummy_data_is_small_and_pickles_as_its_recipe():
    split = dummy_split(1_281_167, num_classes=1000, size=256)
    assert split.images.shape == (1_281_167, 256, 256, 3) and split.images.dtype == np.uint8
    assert split.buffer.nbytes < 100e6 and np.shares_memory(split.images[-1], split.buffer)  # not 252 GB
    assert not split.images.flags.writeable
    assert not np.array_equal(split.images[0], split.images[1])
    blob = pickle.dumps(split)  # what a 'spawn' worker receives
    assert len(blob) < 1000
    np.testing.assert_array_equal(pickle.loads(blob).images[-1], split.images[-1])
    with pytest.raises(ValueError, match="expected n, num_classes and size >= 1"):
        dummy_split(0)


def test_the_trainer_runs_on_dummy_data(tmp_path):
    import minitorch_alex as mt
    from minitorch_alex import nn
    from minitorch_alex.train import TrainConfig, Trainer

    store = dummy_store(num_classes=3, train_size=16, val_size=8, size=16)
    cfg = TrainConfig(epochs=1, batch_size=8, workers=0, out=str(tmp_path), plots=False, progress=False)
    mt.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 3))
    trainer = Trainer(cfg, store.train, store.val, store.classes, model=net)
    trainer.fit(echo=lambda *a, **k: None)
    assert trainer.step == 2
