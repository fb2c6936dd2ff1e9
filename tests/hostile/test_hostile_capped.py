"""--max-val-batches selects its images by index (issue 26, Low #12): a cap just under the
validation size copied those images into memory (3.7 GB RSS against ~1.2 GB), now nothing is
read until a batch is made, and the scores are those of the same images copied."""
import numpy as np
from hostile_helpers import small_net

from minitorch_alex.data import StoreSplit
from minitorch_alex.train import TrainConfig, Trainer
from minitorch_alex.train.trainer import spread_over_classes


class CountingImages:
    """(N, S, S, 3) uint8 images that count the rows read through them."""

    def __init__(self, images):
        self.images, self.rows = images, 0
        self.shape, self.dtype, self.ndim = images.shape, images.dtype, images.ndim

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        out = self.images[key]
        first = key[0] if isinstance(key, tuple) else key
        self.rows += 1 if np.ndim(first) == 0 and not isinstance(first, slice) else len(out)
        return out


def _split(images, labels, name):
    mean = np.asarray(images[:]).mean(axis=0).astype(np.float32)
    return StoreSplit(images, labels, mean, np.array([0.2, 0.05, 0.01], np.float32), np.eye(3, dtype=np.float32),
                      ["a", "b", "c"], name)


def test_a_capped_validation_set_is_selected_by_index_not_copied(tmp_path):
    rng = np.random.default_rng(0)
    pixels, labels = rng.integers(0, 255, (40, 16, 16, 3)).astype(np.uint8), (np.arange(40) % 3).astype(np.int64)
    counting = CountingImages(pixels)
    train = _split(pixels[:12].copy(), labels[:12], "train")
    cfg = TrainConfig(epochs=1, batch_size=4, workers=0, out=str(tmp_path), plots=False, progress=False,
                      max_val_batches=9)  # 36 of the 40 images
    trainer = Trainer(cfg, train, _split(counting, labels, "val"), ["a", "b", "c"], model=small_net())
    counting.rows = 0  # (the test's own mean image read them all)
    capped = trainer._capped(trainer.val_split)
    assert len(capped) == 36 and counting.rows == 0  # selected, nothing read or copied yet
    result = trainer.evaluate()
    assert counting.rows <= 36 + 4  # each image read once, as the batches are made
    idx = spread_over_classes(labels, 36)
    copied = _split(pixels[idx].copy(), labels[idx], "val")
    copied.mean = trainer.val_split.mean
    trainer.cfg.max_val_batches = None
    assert trainer.evaluate(copied) == result  # the same images, the same scores
