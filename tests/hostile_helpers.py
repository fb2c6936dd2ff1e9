"""Helpers of the hostile-input tests (tests/test_hostile_*.py): tiny stores, a tiny model in the
CLI's place of AlexNet, and running the CLI while capturing its exit status and stderr."""
import os

import numpy as np
import pytest

import minitorch_alex.nn as nn
from minitorch_alex.train import main

SIZE = 16  # stored image side: 14-pixel crops, so the small net below fits


def small_net(classes=3, dropout=0.5):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
                         nn.Dropout(dropout), nn.Linear(8 * 6 * 6, classes))


def use_small_net(monkeypatch):
    """Make the CLI build ``small_net`` instead of AlexNet (the CLI is what is tested, not the net)."""
    from minitorch_alex import random as mt_random
    from minitorch_alex.train import trainer

    def build(num_classes, devices=None, init=None, generator=None, dropout=0.5):
        if generator is None:
            return small_net(num_classes, dropout)
        with mt_random.use_generator(generator):  # the run's own generator, as AlexNet's init uses it
            return small_net(num_classes, dropout)

    monkeypatch.setattr(trainer, "alexnet", build)


def make_tree(root, classes=3, train=4, val=2):
    from minitorch_alex.data import make_synthetic_imagefolder

    return make_synthetic_imagefolder(str(root), num_classes=classes, train_per_class=train, val_per_class=val,
                                      size=SIZE, seed=0)


def make_store(root, **kw):
    from minitorch_alex.data import prepare

    src = make_tree(str(root) + "-src", **kw)
    return prepare(src, str(root), size=SIZE, progress=False)


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of the CLI; status 0 when ``main`` returns."""
    try:
        result = main(list(argv) + ["--no-progress", "--no-plots"])
        status = 0
    except SystemExit as exc:
        result, status = None, exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err, result


def assert_one_line_error(err, *parts):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def train_args(store, out, *extra):
    return ["--data", str(store), "--out", str(out), "--epochs", "1", "--batch-size", "4", "--workers", "0",
            "--lr", "0.001", "--input-scale", "0.02", *extra]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A tiny packed store (3 classes, 12 + 6 images of 16 px), shared by a module's tests."""
    return make_store(tmp_path_factory.mktemp("s") / "store")


@pytest.fixture
def small(monkeypatch):
    use_small_net(monkeypatch)


def entries(path):
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def write_entries(path, items, compress=False):
    import zipfile

    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode) as zf:
        for name, data in items.items():
            zf.writestr(name, data)
    return path


def npy_bytes(array):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=True)
    return buf.getvalue()


def files_named(folder, prefix):
    return sorted(name for name in os.listdir(folder) if name.startswith(prefix))
