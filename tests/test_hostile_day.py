"""A practitioner's day on bad luck (issue 29): a run that remembers its data, a run folder that is
not silently overwritten, interruptions by signal. The happy path is tests/test_journey.py."""
import os
import shutil

from hostile_helpers import assert_one_line_error, make_store, run_cli, small, train_args  # noqa: F401

from minitorch_alex.train import load_checkpoint


def _without_data(argv):
    i = argv.index("--data")
    return argv[:i] + argv[i + 2:]


def test_resume_and_evaluate_without_data_use_the_runs_own(tmp_path, capsys, small, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = make_store(tmp_path / "store")
    out = tmp_path / "run"
    status, _, err, _ = run_cli(train_args(store, out), capsys)
    assert status == 0, err
    source = load_checkpoint(out / "last.npz")["data_source"]
    assert source["data"] == str(store) and source["store"] == os.path.abspath(store)
    assert source["layout"] == "imagefolder" and source["fingerprint"].startswith("sha256:")
    status, text, err, rows = run_cli(_without_data(train_args(store, out, "--resume", "--epochs", "2")), capsys)
    assert status == 0, err
    assert f"data: the checkpoint's, {store} (store {os.path.abspath(store)})" in text and len(rows) == 2
    status, text, err, result = run_cli(["--evaluate", "--resume", str(out / "best.npz"), "--workers", "0"], capsys)
    assert status == 0, err
    assert result["images"] == 6
    assert not (tmp_path / "data").exists()  # the built-in set was neither generated nor packed


def test_data_that_changed_since_the_checkpoint_is_refused_in_one_line(tmp_path, capsys, small, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = make_store(tmp_path / "store")
    out = tmp_path / "run"
    status, _, err, _ = run_cli(train_args(store, out), capsys)
    assert status == 0, err
    shutil.rmtree(store)
    shutil.rmtree(str(store) + "-src")
    make_store(tmp_path / "store", train=5)  # the same classes, other images
    status, _, err, _ = run_cli(_without_data(train_args(store, out, "--resume", "--epochs", "2")), capsys)
    assert status == 1
    assert_one_line_error(err, f"--data: the data changed since {out / 'last.npz'} was written (expected the store "
                               f"{os.path.abspath(store)} of fingerprint sha256:", "pass --data")
    assert load_checkpoint(out / "last.npz")["epoch"] == 1


def test_data_that_is_gone_is_refused_in_one_line(tmp_path, capsys, small, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = make_store(tmp_path / "store")
    out = tmp_path / "run"
    status, _, err, _ = run_cli(train_args(store, out), capsys)
    assert status == 0, err
    shutil.rmtree(store)
    status, _, err, _ = run_cli(["--evaluate", "--resume", str(out / "best.npz"), "--workers", "0"], capsys)
    assert status == 1
    assert_one_line_error(err, f"--data: the data of {out / 'best.npz'} is gone (expected its store "
                               f"{os.path.abspath(store)} or its images {os.path.abspath(store)} vs neither "
                               "exists); pass --data")
    assert not (tmp_path / "data").exists()
