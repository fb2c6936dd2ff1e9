"""A store bigger than the free disk (issue 26, High #2): refused before anything is allocated,
with the numbers in one line; an allocation that fails anyway gives its blocks back (ext4 keeps
them, tmpfs does not, so the real case runs on a small ext4 image); prepare_data.py's numeric
flags are bounded with one-line errors."""
import errno
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
from hostile_helpers import SIZE, make_tree
from paths import ROOT

from minitorch_alex.data import open_store, prepare, prepare_store

sys.path.insert(0, os.path.join(ROOT, "examples"))
import prepare_data  # noqa: E402


def _free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def ext4(tmp_path):
    """A real 64 MiB ext4 filesystem on a loop device (needs root, mke2fs and loop mounts)."""
    if os.geteuid() != 0:
        pytest.skip("a small ext4 image needs root to mount (not root here)")
    if not shutil.which("mke2fs") or not shutil.which("mount"):
        pytest.skip("a small ext4 image needs mke2fs and mount (not installed here)")
    image, mnt = tmp_path / "ext4.img", tmp_path / "ext4"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    made = subprocess.run(["mke2fs", "-q", "-t", "ext4", "-F", str(image)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"mke2fs failed here: {made.stderr.strip()}")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot loop-mount an ext4 image here: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_store_bigger_than_the_free_space_is_refused_before_allocating(tmp_path, monkeypatch):
    src = make_tree(tmp_path / "src")
    real = os.statvfs
    monkeypatch.setattr(prepare_store.os, "statvfs",
                        lambda p: SimpleNamespace(f_bavail=1000, f_frsize=4096, **{
                            k: getattr(real(p), k) for k in ("f_blocks", "f_bfree", "f_bsize")}))
    with pytest.raises(OSError, match="not enough free space") as info:
        prepare(src, tmp_path / "store", size=SIZE, progress=False)
    need = prepare_store.store_bytes({"train": 12, "val": 6}, SIZE)
    assert info.value.errno == errno.ENOSPC and info.value.strerror == (
        f"not enough free space for the store in {tmp_path} (expected >= {need + (16 << 20) + need // 100} bytes "
        f"free: {need} for the store and a margin of {(16 << 20) + need // 100} vs 4096000 bytes free)")
    assert not (tmp_path / "store").exists() and not (tmp_path / "store.partial").exists()  # nothing allocated
    monkeypatch.undo()
    assert len(open_store(prepare(src, tmp_path / "store", size=SIZE, progress=False)).train) == 12


def test_a_store_bigger_than_a_real_ext4_disk_leaves_it_free(tmp_path, ext4):
    src = make_tree(tmp_path / "src")  # 12 training images of 2048 px: 151 MB, on a 64 MiB disk
    before = _free(ext4)
    with pytest.raises(OSError, match=r"not enough free space for the store in .* vs \d+ bytes free\)$"):
        prepare(src, ext4 / "store", size=2048, progress=False)
    assert _free(ext4) >= before - (1 << 20)  # the disk is as free as it was
    assert not (ext4 / "store").exists()
    assert len(open_store(prepare(src, ext4 / "store", size=SIZE, progress=False)).train) == 12  # a store that fits


def test_an_allocation_that_fails_on_ext4_gives_its_blocks_back(tmp_path, ext4, monkeypatch):
    src = make_tree(tmp_path / "src")
    monkeypatch.setattr(prepare_store, "check_free_space", lambda folder, need: None,
                        raising=False)  # as if the disk filled meanwhile
    before = _free(ext4)
    with pytest.raises(OSError, match=r"no space left on device writing .*train_images.npy \(needs \d+ bytes vs "
                                      r"\d+ bytes free\)"):
        prepare(src, ext4 / "store", size=2048, progress=False)
    assert _free(ext4) >= before - (1 << 20)  # ext4 kept what posix_fallocate took until it was given back
    monkeypatch.undo()
    assert len(open_store(prepare(src, ext4 / "store", size=SIZE, progress=False)).train) == 12


@pytest.mark.parametrize("flags, message", [
    (["--size", "0"], "error: --size: out of range (expected an integer in [1, 4096] vs 0)"),
    (["--size", "-5"], "error: --size: out of range (expected an integer in [1, 4096] vs -5)"),
    (["--size", "100000"], "error: --size: out of range (expected an integer in [1, 4096] vs 100000)"),
    (["--size", "big"], "error: --size: not an integer (expected an integer in [1, 4096] vs 'big')"),
    (["--max-per-class", "0"], "error: --max-per-class: out of range (expected an integer >= 1 vs 0)"),
    (["--workers", "-1"], "error: --workers: out of range (expected an integer >= 0 vs -1)"),
    (["--num-classes", "0"], "error: --num-classes: out of range (expected an integer in [1, 100000] vs 0)"),
])
def test_prepare_data_bounds_its_numeric_flags_with_one_line(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as info:
        prepare_data.main([str(tmp_path / "src"), str(tmp_path / "out"), *flags])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "out").exists()


def test_prepare_data_reports_a_store_too_big_for_the_disk_in_one_line(tmp_path, capsys, monkeypatch):
    src = make_tree(tmp_path / "src")
    monkeypatch.setattr(prepare_store, "FREE_MARGIN", 1 << 60, raising=False)  # no disk is that big
    with pytest.raises(SystemExit) as info:
        prepare_data.main([src, str(tmp_path / "out"), "--size", str(SIZE)])
    err = capsys.readouterr().err
    assert info.value.code == 1 and "Traceback" not in err
    assert err.strip().startswith("error: not enough free space for the store in ") and len(err.strip().splitlines()) == 1
