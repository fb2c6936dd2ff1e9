"""export_onnx.py on bad flags and failed writes (issue 26, Low #8): one line, nothing written
where it should not be, the one atomic-write path."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
