"""The packed store on hostile or unlucky input: full disks, lying manifests, a second packer,
unreadable entries, empty classes, bad ground truth."""
import errno
import fcntl
import json
import os

import numpy as np
import pytest
from hostile_helpers import SIZE, make_store, make_tree

from minitorch_alex import serialization
from minitorch_alex.data import open_store, prepare, readers


def test_a_full_disk_while_packing_is_an_oserror_naming_the_file_and_bytes(tmp_path, monkeypatch):
    src = make_tree(tmp_path / "src")

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serialization.os, "posix_fallocate", full)
    with pytest.raises(OSError, match=r"no space left on device writing .*train_images.npy \(needs \d+ bytes") as info:
        prepare(src, tmp_path / "store", size=SIZE, progress=False)
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / "store").exists()  # nothing half-made was published
    monkeypatch.undo()
    assert len(open_store(prepare(src, tmp_path / "store", size=SIZE, progress=False)).train) == 12  # resumes


def test_the_packed_files_are_allocated_up_front(tmp_path, monkeypatch):
    calls = []
    real = os.posix_fallocate
    monkeypatch.setattr(serialization.os, "posix_fallocate", lambda fd, off, n: (calls.append(n), real(fd, off, n)))
    prepare(make_tree(tmp_path / "src"), tmp_path / "store", size=SIZE, progress=False)
    assert 12 * SIZE * SIZE * 3 + 128 in calls  # the train images file, header included


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "store")


def _edit_manifest(root, edit):
    path = os.path.join(root, "manifest.json")
    manifest = json.load(open(path))
    edit(manifest)
    json.dump(manifest, open(path, "w"))


@pytest.mark.parametrize("edit, parts", [
    (lambda m: m["splits"]["train"].update(count=100000, counts_per_class=None), ["train_labels.npy", "(100000,)"]),
    (lambda m: m.update(image_size=256), ["(256, 256, 3)"]),
    (lambda m: m.update(classes=m["classes"][:2], num_classes=2), ["counts_per_class"]),
    (lambda m: m.update(num_classes=7), ["num_classes"]),
    (lambda m: m.update(classes="abc"), ["classes"]),
])
def test_a_manifest_that_disagrees_with_the_arrays_is_refused_at_open(store, edit, parts):
    _edit_manifest(store, edit)
    with pytest.raises(ValueError) as info:
        open_store(store)
    for part in parts:
        assert part in str(info.value), str(info.value)
    assert "expected" in str(info.value) and " vs " in str(info.value)


@pytest.mark.parametrize("value", [-1, 7])
def test_labels_out_of_range_are_refused_at_open(store, value):
    path = os.path.join(store, "val_labels.npy")
    labels = np.load(path)
    labels[0] = value
    np.save(path, labels)
    with pytest.raises(ValueError, match=rf"val_labels.npy: labels out of range \(expected 0..2 vs {value}"):
        open_store(store)


def test_nan_pca_statistics_are_refused_at_open(store):
    np.save(os.path.join(store, "pca_eigvals.npy"), np.array([np.nan, 1, 1], np.float32))
    with pytest.raises(ValueError, match="pca_eigvals.npy: holds NaN"):
        open_store(store)


def test_a_truncated_images_file_is_refused_at_open(store):
    path = os.path.join(store, "train_images.npy")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 100)
    with pytest.raises(ValueError, match="train_images.npy: damaged"):
        open_store(store)


def test_a_second_packer_is_refused_naming_the_first(tmp_path):
    src = make_tree(tmp_path / "src")
    lock = str(tmp_path / "store") + ".lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4242: prepare_data.py\n")
        with pytest.raises(RuntimeError, match=r"data store .*store is in use by another process \(expected no "
                                               r"other process there vs pid 4242: prepare_data.py\)"):
            prepare(src, tmp_path / "store", size=SIZE, progress=False)
    finally:
        os.close(fd)
    assert open_store(prepare(src, tmp_path / "store", size=SIZE, progress=False))  # free again


def test_a_symlink_loop_is_skipped_and_listed(tmp_path):
    src = make_tree(tmp_path / "src")
    loop = os.path.join(src, "train", os.listdir(os.path.join(src, "train"))[0], "loop.jpg")
    os.symlink("loop.jpg", loop)
    with pytest.warns(UserWarning, match="skipped 1 of 12 train images"):
        root = prepare(src, tmp_path / "store", size=SIZE, progress=False)
    s = open_store(root)
    assert len(s.train) == 12
    assert [e["path"] for e in s.manifest["splits"]["train"]["skipped"]] == [loop]
    assert "Too many levels of symbolic links" in s.manifest["splits"]["train"]["skipped"][0]["reason"]


def test_a_permission_error_while_listing_is_skipped_and_listed(tmp_path, monkeypatch):
    src = make_tree(tmp_path / "src")
    real = readers.os.scandir

    class Denied:
        def __init__(self, entry):
            self._e, self.name, self.path = entry, entry.name, entry.path

        def is_file(self):
            if self.name.endswith("_00001.jpg"):
                raise PermissionError(errno.EACCES, "Permission denied", self.path)
            return self._e.is_file()

        def is_dir(self):
            return self._e.is_dir()

    class Scan:
        def __init__(self, path):
            self._it = real(path)

        def __enter__(self):
            return (Denied(e) for e in self._it)

        def __exit__(self, *exc):
            self._it.close()

    monkeypatch.setattr(readers.os, "scandir", Scan)
    with pytest.warns(UserWarning, match="skipped"):
        s = open_store(prepare(src, tmp_path / "store", size=SIZE, progress=False))
    skipped = s.manifest["splits"]["train"]["skipped"]
    assert len(skipped) == 3 and all("Permission denied" in e["reason"] for e in skipped)
    assert len(s.train) == 9


def test_an_empty_class_folder_is_refused_naming_it(tmp_path):
    src = make_tree(tmp_path / "src")
    os.makedirs(os.path.join(src, "train", "zz-empty"))
    with pytest.raises(ValueError, match=r"class folder\(s\) without a readable image: \['zz-empty'\] \(expected >= 1"):
        prepare(src, tmp_path / "store", size=SIZE, progress=False)
    assert not (tmp_path / "store").exists()


def test_a_symlink_to_the_parent_does_not_become_a_class(tmp_path):
    src = make_tree(tmp_path / "src")
    os.symlink("..", os.path.join(src, "train", "x"))
    with pytest.raises(ValueError, match=r"without a readable image: \['x'\]"):
        prepare(src, tmp_path / "store", size=SIZE, progress=False)


def test_a_split_with_no_images_is_an_error(tmp_path):
    src = make_tree(tmp_path / "src")
    for cls in os.listdir(os.path.join(src, "val")):
        for f in os.listdir(os.path.join(src, "val", cls)):
            os.remove(os.path.join(src, "val", cls, f))
    with pytest.raises(ValueError, match=r"val: no val images found \(expected >= 1 vs 0"):
        prepare(src, tmp_path / "store", size=SIZE, progress=False)


def test_an_empty_prediction_string_names_the_file_and_line(tmp_path):
    csv = tmp_path / "LOC_val_solution.csv"
    csv.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 2 3 4\nILSVRC2012_val_00000002,\n")
    with pytest.raises(ValueError, match=rf"{csv}:3: empty ImageId or PredictionString"):
        readers._val_synsets_from_csv(str(csv))


@pytest.fixture
def small_fs(tmp_path):
    """A real 512 KiB tmpfs (needs root and mount rights; skipped elsewhere, where the fakes above stand in)."""
    import shutil
    import subprocess

    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount") or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_really_full_disk_while_packing_is_an_oserror_not_sigbus(tmp_path, small_fs, monkeypatch):
    from minitorch_alex.data import prepare_store

    src = make_tree(tmp_path / "src")  # the sources elsewhere; the 128-px store needs ~1 MiB
    with pytest.raises(OSError, match=r"not enough free space for the store in .* vs \d+ bytes free\)"):
        prepare(src, small_fs / "store", size=128, progress=False)  # refused before allocating anything
    # past that check (the disk filled meanwhile): posix_fallocate's ENOSPC, not a SIGBUS in a memory-mapped write
    monkeypatch.setattr(prepare_store, "check_free_space", lambda folder, need: None)
    with pytest.raises(OSError, match=r"no space left on device writing .*_images.npy \(needs \d+ bytes vs \d+ bytes free\)"):
        prepare(src, small_fs / "store", size=128, progress=False)
    assert not (small_fs / "store").exists()


def test_a_really_full_disk_keeps_the_previous_checkpoint(small_fs):
    import minitorch_alex as mt

    path = small_fs / "w.npz"
    mt.save({"w": np.ones(1000, np.float32)}, path)
    filler = small_fs / "filler"
    with open(filler, "wb") as f:  # leave about 2 KiB
        f.write(b"\0" * (os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize - 2048))
    with pytest.raises(OSError, match=rf"no space left on device writing {path} .* {path} is kept unchanged"):
        mt.save({"w": np.zeros(1000, np.float32)}, path)
    np.testing.assert_array_equal(mt.load(path)["w"], np.ones(1000, np.float32))
    assert [n for n in os.listdir(small_fs) if n.startswith(".tmp-")] == []
