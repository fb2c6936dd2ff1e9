import hashlib
import os

import numpy as np
import pytest

from minitorch_alex.data import load_image, make_synthetic_imagefolder, read_imagefolder
from minitorch_alex.data.synthetic import PATTERNS, class_names, synthetic_image


def _tree_digest(root):
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    kw = dict(num_classes=3, train_per_class=2, val_per_class=1, size=32)
    a = make_synthetic_imagefolder(tmp_path / "a", seed=0, **kw)
    b = make_synthetic_imagefolder(tmp_path / "b", seed=0, **kw)
    c = make_synthetic_imagefolder(tmp_path / "c", seed=1, **kw)
    assert _tree_digest(a) == _tree_digest(b) != _tree_digest(c)


def test_tree_layout_and_real_jpegs(tmp_path):
    root = make_synthetic_imagefolder(tmp_path / "s", num_classes=4, train_per_class=3, val_per_class=2, size=40)
    train = read_imagefolder(root, "train")
    val = read_imagefolder(root, "val", train.classes)
    assert train.classes == class_names(4) and len(train.samples) == 12 and len(val.samples) == 8
    path = train.samples[0][0]
    with open(path, "rb") as f:
        assert f.read(3) == b"\xff\xd8\xff"  # JPEG magic
    image = load_image(path, 40)
    assert image.shape == (40, 40, 3) and image.std() > 20  # a colourful pattern, not blank


def test_regenerates_only_when_parameters_change(tmp_path):
    root = make_synthetic_imagefolder(tmp_path / "s", num_classes=2, train_per_class=2, val_per_class=1, size=16)
    stamp = os.stat(os.path.join(root, "train", class_names(2)[0], f"{class_names(2)[0]}_00000.jpg")).st_mtime_ns
    make_synthetic_imagefolder(root, num_classes=2, train_per_class=2, val_per_class=1, size=16)
    assert os.stat(os.path.join(root, "train", class_names(2)[0],
                                f"{class_names(2)[0]}_00000.jpg")).st_mtime_ns == stamp
    make_synthetic_imagefolder(root, num_classes=2, train_per_class=1, val_per_class=1, size=16)
    assert len(read_imagefolder(root, "train").samples) == 2  # old extra files are gone
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.txt").write_text("user data")
    with pytest.raises(FileExistsError):
        make_synthetic_imagefolder(tmp_path / "mine", num_classes=2, train_per_class=1, val_per_class=1, size=16)


def test_mean_colour_does_not_reveal_the_class():
    """Nearest-class-mean on an image's mean RGB should be near chance (10%),
    while a shape feature (mean |horizontal gradient| vs |vertical gradient|)
    separates vertical from horizontal stripes perfectly."""
    k, n = 10, 30
    feats = np.array([[synthetic_image(c, 32, np.random.default_rng([5, c, i])).reshape(-1, 3).mean(0)
                       for i in range(n)] for c in range(k)])  # (k, n, 3)
    centroids = feats[:, : n // 2].mean(1)
    test = feats[:, n // 2:].reshape(-1, 3)
    truth = np.repeat(np.arange(k), n - n // 2)
    pred = np.argmin(((test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == truth).mean() < 0.3

    def orientation(img):
        g = img.astype(float).mean(-1)
        return np.abs(np.diff(g, axis=1)).mean() - np.abs(np.diff(g, axis=0)).mean()

    vertical = [orientation(synthetic_image(0, 32, np.random.default_rng([6, i]))) for i in range(10)]
    horizontal = [orientation(synthetic_image(1, 32, np.random.default_rng([7, i]))) for i in range(10)]
    assert PATTERNS[0] == "vstripes" and PATTERNS[1] == "hstripes"
    assert min(vertical) > 0 > max(horizontal)


def test_too_many_classes_is_an_error(tmp_path):
    with pytest.raises(ValueError):
        make_synthetic_imagefolder(tmp_path / "x", num_classes=len(PATTERNS) + 1, size=8)
