"""The data loader when the disk changes under it (issue 26, Low #10): a store truncated under a
running job is named, not a bare "Bus error" (rc 135) or a worker's signal number, and batch
slots that fit in no shared memory are refused before a worker starts, not a SIGBUS."""
import os
import shutil
import subprocess
import sys

import pytest
from hostile_helpers import make_store
from paths import ROOT

TRUNCATE = """
import os, sys
from minitorch_alex.data import StoreLoader, open_store
root, workers = sys.argv[1], int(sys.argv[2])
store = open_store(root)
with StoreLoader(store.train, batch_size=1, train=True, workers=workers) as loader:
    batches = iter(loader)
    next(batches)
    os.truncate(os.path.join(root, "train_images.npy"), 128)  # the header's bytes only: every row is gone
    try:
        for _ in batches:
            pass
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
        sys.exit(3)
"""


def _python(code, *args, **env):
    full = dict(os.environ, PYTHONPATH=ROOT, **env)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=full,
                          cwd=ROOT, timeout=300)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_store_truncated_under_the_loader_is_named(tmp_path, workers):
    root = make_store(tmp_path / "store")
    proc = _python(TRUNCATE, root, workers)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)  # not -7 (SIGBUS)
    path = os.path.join(root, "train_images.npy")
    size = 12 * 16 * 16 * 3 + 128
    assert proc.stdout.strip() == (f"StoreChanged: {path} changed under the run (expected the {size} bytes it had "
                                   "when the run opened it vs 128 bytes): a store must not be repacked, truncated or "
                                   "removed while a job reads it")


SLOTS = """
import multiprocessing.heap, sys
import numpy as np
from minitorch_alex.data import StoreLoader, StoreSplit
multiprocessing.heap.Arena._dir_candidates = [sys.argv[1]]  # /dev/shm, as small as the test's tmpfs
images = np.zeros((24, 16, 16, 3), np.uint8)
split = StoreSplit(images, np.zeros(24, np.int64), np.zeros((16, 16, 3), np.float32), np.ones(3, np.float32),
                   np.eye(3, dtype=np.float32))
try:
    with StoreLoader(split, batch_size=24, train=True, workers=1) as loader:
        next(iter(loader))
except OSError as exc:
    print(exc.strerror)
    sys.exit(3)
"""


@pytest.fixture
def two_small_tmpfs(tmp_path):
    """Two real 8 KiB tmpfs mounts, a small /dev/shm and a small TMPDIR (needs root and mount)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("small tmpfs mounts need root and mount (not available here)")
    mounts = []
    try:
        for name in ("shm", "tmp"):
            path = tmp_path / name
            path.mkdir()
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(path)], capture_output=True,
                                  text=True)
            if done.returncode != 0:
                pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
            mounts.append(path)
        yield mounts
    finally:
        for path in mounts:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_batch_slots_that_fit_no_shared_memory_are_refused_before_the_workers(two_small_tmpfs):
    shm, tmp = two_small_tmpfs
    proc = _python(SLOTS, shm, TMPDIR=str(tmp))
    assert proc.returncode == 3, (proc.returncode, proc.stderr)  # not -7 (SIGBUS)
    need = 2 * (24 * 3 * 14 * 14 * 4 + 24 * 8)
    assert proc.stdout.strip().startswith(f"the StoreLoader's batch slots need {need} bytes of shared memory (expected "
                                          f">= {need} bytes free vs ")
    assert f"bytes free in {shm}" in proc.stdout and f"bytes free in {tmp}" in proc.stdout
