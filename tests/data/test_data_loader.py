import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from data_helpers import index_split, make_plain_tree, random_split

from minitorch_alex.data import StoreLoader, epoch_order, open_store, prepare


def _all(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x1, x2) and np.array_equal(y1, y2)
                                    for (x1, y1), (x2, y2) in zip(a, b))


def test_batches_shapes_and_last_batch():
    split = random_split(n=50, size=16)
    loader = StoreLoader(split, batch_size=16, train=True, seed=0)
    batches = _all(loader)
    assert len(loader) == 4 == len(batches)
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    x, y = batches[0]
    assert x.shape == (16, 3, 14, 14) and x.dtype == np.float32 and y.dtype == np.int64
    assert len(StoreLoader(split, 16, drop_last=True)) == 3
    assert [len(y) for _, y in StoreLoader(split, 16, drop_last=True)] == [16, 16, 16]


def test_every_sample_once_per_epoch_with_matching_labels():
    split = index_split(n=40, size=8)  # image i is the constant i; label = i % 4
    for workers in (0, 2):
        with StoreLoader(split, 6, train=False, shuffle=True, workers=workers, seed=3, crop=6) as loader:
            seen = []
            for x, y in loader:
                ids = x[:, 0, 0, 0].astype(int)  # undo: centre crop of a constant image
                assert np.all(x == x[:, :1, :1, :1])  # constant crops, mean 0
                np.testing.assert_array_equal(y, ids % 4)  # labels travel with their images
                seen += ids.tolist()
        assert sorted(seen) == list(range(40)) and seen != list(range(40))


def test_same_seed_same_batches_and_workers_do_not_matter():
    split = random_split(n=45, size=16)
    ref = _all(StoreLoader(split, 8, train=True, seed=7, workers=0))
    assert _same(ref, _all(StoreLoader(split, 8, train=True, seed=7, workers=0)))
    with StoreLoader(split, 8, train=True, seed=7, workers=2, prefetch=2) as loader:
        assert _same(ref, _all(loader))
    with StoreLoader(split, 8, train=True, seed=7, workers=1, prefetch=3, copy=False) as loader:
        assert _same(ref, _all(loader))
    assert not _same(ref, _all(StoreLoader(split, 8, train=True, seed=8)))


def test_epochs_reshuffle_deterministically():
    split = random_split(n=30, size=16)
    with StoreLoader(split, 10, train=True, seed=1, workers=2) as loader:
        e0 = _all(loader)
        e0_again = _all(loader)  # same epoch again: same batches
        loader.set_epoch(1)
        e1 = _all(loader)
    assert _same(e0, e0_again) and not _same(e0, e1)
    labels0 = np.concatenate([y for _, y in e0])
    order0, order1 = epoch_order(30, 1, 0, True), epoch_order(30, 1, 1, True)
    np.testing.assert_array_equal(labels0, split.labels[order0])
    assert not np.array_equal(order0, order1)
    # Epoch 1 in a fresh in-process loader gives what the workers gave.
    fresh = StoreLoader(split, 10, train=True, seed=1)
    fresh.set_epoch(1)
    assert _same(e1, _all(fresh))


def test_eval_mode_is_centre_crop_without_randomness():
    split = random_split(n=12, size=16)
    a = _all(StoreLoader(split, 5, train=False, seed=0))
    b = _all(StoreLoader(split, 5, train=False, seed=99))
    assert _same(a, b)  # no shuffle, no augmentation: the seed does not matter
    x = np.concatenate([x for x, _ in a])
    expected = (split.images[:, 1:15, 1:15].astype(np.float32) - split.mean[1:15, 1:15]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(x, expected, atol=1e-4)


def test_ten_crop_loader():
    split = random_split(n=7, size=16)
    with StoreLoader(split, 4, train=False, ten_crop=True, workers=2) as loader:
        batches = _all(loader)
    assert batches[0][0].shape == (4, 10, 3, 14, 14) and batches[1][0].shape == (3, 10, 3, 14, 14)
    plain = _all(StoreLoader(split, 4, train=False, ten_crop=True))
    assert _same(batches, plain)
    with pytest.raises(ValueError):
        StoreLoader(split, 4, train=True, ten_crop=True)


def test_abandoned_iteration_does_not_disturb_the_next():
    split = random_split(n=40, size=16)
    ref = _all(StoreLoader(split, 4, seed=2))
    with StoreLoader(split, 4, seed=2, workers=2, prefetch=2) as loader:
        for i, _ in enumerate(loader):
            if i == 1:
                break  # leave batches in flight
        assert _same(ref, _all(loader))


def test_close_stops_workers_and_closed_loader_refuses():
    split = random_split(n=20, size=16)
    loader = StoreLoader(split, 4, workers=2)
    next(iter(loader))
    procs = list(loader._procs)
    assert all(p.is_alive() for p in procs)
    loader.close()
    assert not any(p.is_alive() for p in procs)
    loader.close()  # idempotent
    with pytest.raises(RuntimeError):
        iter(loader)


def test_worker_error_is_reported():
    split = random_split(n=20, size=16)
    split.mean = split.mean[:, :, :2]  # broken after validation: crops will fail in the worker
    with StoreLoader(split, 4, workers=1) as loader:
        with pytest.raises(RuntimeError, match="worker failed on batch 0"):
            next(iter(loader))


def test_loader_on_a_prepared_store_with_spawn(tmp_path):
    src = make_plain_tree(tmp_path / "src", per_class=(4, 2))
    store = open_store(prepare(src, tmp_path / "store", size=16, progress=False))
    ref = _all(StoreLoader(store.train, 5, seed=4))
    assert _same(ref, _all(StoreLoader(store, 5, seed=4)))  # a whole store + train=True means store.train
    assert sum(len(y) for _, y in StoreLoader(store, 5, train=False)) == len(store.val)
    # 'spawn' reopens the memory-mapped store in the worker instead of pickling images.
    with StoreLoader(store.train, 5, seed=4, workers=1, start_method="spawn") as loader:
        assert _same(ref, _all(loader))


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to watch processes")
def test_workers_exit_when_the_parent_dies(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from data_helpers import random_split
        from minitorch_alex.data import StoreLoader
        loader = StoreLoader(random_split(n=20, size=16), 4, workers=2, start_method="fork")
        next(iter(loader))
        print(" ".join(str(p.pid) for p in loader._procs), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup at all
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    pids = []
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=err, text=True,
                                env=env)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        proc.wait(timeout=30)
        assert len(pids) == 2, (tmp_path / "stderr.txt").read_text()
        deadline = time.time() + 10
        while any(_alive(p) for p in pids) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids)
    finally:  # never leave orphans behind if the check failed
        for pid in pids:
            if _alive(pid):
                os.kill(pid, 9)
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_range_of_batches_equals_those_positions_of_the_full_epoch(workers):
    split = random_split(n=50, size=16)
    with StoreLoader(split, 8, train=True, seed=4, workers=workers) as loader:
        loader.set_epoch(2)
        full = _all(loader)
        loader.set_epoch(2, start_batch=3, stop_batch=5)
        part = _all(loader)
        loader.set_epoch(2, start_batch=5)
        tail = _all(loader)
    assert len(full) == 7 and _same(part, full[3:5]) and _same(tail, full[5:])
    with pytest.raises(ValueError, match="start_batch"):
        loader.set_epoch(0, start_batch=4, stop_batch=2)
