"""Symlinks planted in the run and data folders (issue 26, Medium #4): a lock that is a symlink
is refused with one line, temporary files and outputs are never written through one, and the
file a link points at (the victim) is left unchanged."""
import errno
import os

import pytest
from hostile_helpers import SIZE, assert_one_line_error, make_tree, run_cli, small, store, train_args  # noqa: F401

from minitorch_alex import serialization
from minitorch_alex.data import open_store, prepare
from minitorch_alex.train import plots

VICTIM = b"someone else's file\n"


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_bytes(VICTIM)
    return path


def test_a_symlinked_run_folder_lock_is_refused_and_not_followed(store, tmp_path, capsys, small, victim):
    out = tmp_path / "run"
    out.mkdir()
    os.symlink(victim, out / ".lock")
    status, _, err, _ = run_cli(train_args(store, out), capsys)
    assert status == 1
    assert_one_line_error(err, f"run folder {out}: its lock {out / '.lock'} is a symbolic link (expected a regular "
                               f"file vs a link to '{victim}')")
    assert victim.read_bytes() == VICTIM
    assert sorted(os.listdir(out)) == [".lock"]  # nothing trained or written


def test_a_symlinked_store_lock_is_refused_and_not_followed(tmp_path, victim):
    src = make_tree(tmp_path / "src")
    os.symlink(victim, tmp_path / "store.lock")
    with pytest.raises(RuntimeError, match=r"data store .*store: its lock .*store.lock is a symbolic link \(expected "
                                           r"a regular file vs a link to "):
        prepare(src, tmp_path / "store", size=SIZE, progress=False)
    assert victim.read_bytes() == VICTIM
    assert not (tmp_path / "store").exists() and not (tmp_path / "store.partial").exists()


def test_a_symlinked_temporary_name_in_a_resumed_pack_is_not_followed(tmp_path, monkeypatch, victim):
    src = make_tree(tmp_path / "src")

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serialization.os, "posix_fallocate", full)
    with pytest.raises(OSError):  # leaves store.partial/progress.json to resume from
        prepare(src, tmp_path / "store", size=SIZE, progress=False)
    monkeypatch.undo()
    partial = tmp_path / "store.partial"
    for name in ("progress.json.tmp", "manifest.json.tmp", ".tmp-progress.json", "mean.npy"):
        os.symlink(victim, partial / name)
    assert len(open_store(prepare(src, tmp_path / "store", size=SIZE, progress=False)).train) == 12
    assert victim.read_bytes() == VICTIM


def test_a_symlinked_figure_is_replaced_not_written_through(tmp_path, victim):
    out = tmp_path / "run"
    out.mkdir()
    os.symlink(victim, out / "curves.png")
    rows = [{"epoch": 1, "train_loss": 2.0, "train_top1_err": 0.9, "train_top5_err": 0.5}]
    plots.plot_curves(rows, str(out / "curves.png"))
    assert victim.read_bytes() == VICTIM
    assert not os.path.islink(out / "curves.png")
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(out / "curves.png").st_mode & 0o777 == 0o666 & ~umask  # as open() makes it, not mkstemp's 0600
    assert sorted(os.listdir(out)) == ["curves.png"]  # no temporary left


def test_a_metrics_log_that_became_a_symlink_is_not_appended_through(tmp_path, victim):
    from minitorch_alex.train.metrics import MetricsLog

    log = MetricsLog(tmp_path)
    os.unlink(tmp_path / "metrics.jsonl")
    os.symlink(victim, tmp_path / "metrics.jsonl")  # planted during the run
    with pytest.raises(OSError) as info:
        log.append({"epoch": 1, "train_loss": 1.0})
    assert info.value.errno == errno.ELOOP
    assert victim.read_bytes() == VICTIM
