"""export_onnx.py on bad flags and failed writes (issue 26, Low #8): one line, nothing written
where it should not be, the one atomic-write path."""
import os
import sys

import pytest
from paths import ROOT

sys.path.insert(0, os.path.join(ROOT, "examples"))
import export_onnx  # noqa: E402

pytest.importorskip("onnx")


def _run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        export_onnx.main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return info.value.code, err.strip()


def test_out_a_folder_is_one_line(tmp_path, capsys):
    assert _run(["--out", str(tmp_path)], capsys) == (
        2, f"error: --out: a folder (expected the path of a file such as model.onnx vs the folder '{tmp_path}')")


def test_out_in_a_missing_folder_is_one_line_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "missing" / "model.onnx"
    assert _run(["--out", str(out)], capsys) == (
        2, f"error: --out: no such folder (expected an existing folder for the file vs '{tmp_path / 'missing'}')")
    assert not (tmp_path / "missing").exists()


def test_zero_classes_is_one_line(tmp_path, capsys):
    assert _run(["--num-classes", "0", "--out", str(tmp_path / "m.onnx")], capsys) == (
        2, "error: --num-classes: out of range (expected an integer >= 1 vs 0)")
    assert os.listdir(tmp_path) == []


def test_a_write_that_fails_is_one_line_and_leaves_no_temporary(tmp_path, capsys, monkeypatch):
    from minitorch_alex import serialization

    def refuse(fd, *args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialization.os, "fsync", refuse)
    out = tmp_path / "m.onnx"
    code, line = _run(["--arch", "alexnet-torchvision", "--num-classes", "2", "--out", str(out)], capsys)
    assert code == 1 and line.startswith(f"error: no space left on device writing {out} (needs "), line
    assert os.listdir(tmp_path) == []


def test_a_writer_killed_mid_write_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    """SIGKILL inside the one atomic-write path (export_onnx.py's, checkpoints', every output's)
    leaves its temporary beside the file; the next write of that file removes it, and keeps the
    temporary of a writer that is still running."""
    import signal
    import subprocess

    from minitorch_alex.serialization import write_atomic

    out = tmp_path / "model.onnx"
    code = ("import os, signal, sys; from minitorch_alex.serialization import atomic_file\n"
            "with atomic_file(sys.argv[1]) as f:\n"
            "    f.write(b'half a model'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")
    killed = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert killed.returncode == -signal.SIGKILL
    left = [n for n in os.listdir(tmp_path) if n.startswith(".tmp-model.onnx.")]
    assert len(left) == 1 and not out.exists()
    live = tmp_path / f".tmp-model.onnx.{os.getpid()}.inflight"  # a writer that is running (this process)
    live.write_bytes(b"being written")
    write_atomic(out, b"the model")
    assert out.read_bytes() == b"the model"
    assert sorted(os.listdir(tmp_path)) == sorted(["model.onnx", live.name])
