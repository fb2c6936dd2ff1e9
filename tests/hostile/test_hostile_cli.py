"""The training command on bad usage and bad luck: one line `error: <what> (expected ... vs ...)`,
exit 2 for usage and 1 for runtime failures, no traceback unless --debug, nothing done first."""
import io
import json
import os

import numpy as np
import pytest
from hostile_helpers import (  # noqa: F401
    assert_one_line_error,
    entries,
    make_store,
    make_tree,
    npy_bytes,
    run_cli,
    small,
    store,  # noqa: F401
    train_args,
    use_small_net,
    write_entries,
)

from minitorch_alex.checkpoint import read_meta
from minitorch_alex.train import cli, load_checkpoint, options, ranks


def _no_gpu():
    from minitorch_alex.device import cuda_device_count

    try:
        return cuda_device_count() == 0
    except RuntimeError:  # no CuPy, or no usable device
        return True


@pytest.mark.parametrize("argv, parts", [
    (["--epochs", "0"], ["--epochs: out of range (expected an integer >= 1 vs 0)"]),
    (["--epochs", "two"], ["--epochs: not an integer (expected an integer >= 1 vs 'two')"]),
    (["--lr", "nan"], ["--lr: out of range (expected a finite number in (0, inf] vs nan)"]),
    (["--lr", "inf"], ["--lr: out of range", "vs inf"]),
    (["--lr", "-0.1"], ["--lr: out of range", "vs -0.1"]),
    (["--momentum", "1.5"], ["--momentum: out of range (expected a finite number in [0, 1) vs 1.5)"]),
    (["--weight-decay", "-1"], ["--weight-decay: out of range"]),
    (["--input-scale", "0"], ["--input-scale: out of range"]),
    (["--seed", "-1"], ["--seed: out of range (expected an integer >= 0 vs -1)"]),
    (["--workers", "-1"], ["--workers: out of range"]),
    (["--warmup", "-1"], ["--warmup: out of range (expected an integer >= 0 vs -1)"]),
    (["--layout", "zip"], ["--layout: invalid choice (expected one of 'auto', 'imagefolder', 'ilsvrc' vs 'zip')"]),
    (["--frobnicate"], ["unrecognized arguments (expected the flags of --help vs --frobnicate)"]),
    (["--device", "tpu"], ["--device: unknown device (expected cpu, cpu:N or cuda:N vs 'tpu')"]),
    (["--devices", "cpu:0,cpu:1,cpu:2"], ["--devices: wrong count (expected two devices"]),
    (["--devices", "cpu:1,cpu:1"], ["--devices: the same device twice"]),
    (["--devices", "cpu:0,cpu:1", "--device", "cpu:2"], ["--device: conflicts with --devices"]),
    (["--amp", "float16"], ["--amp: mixed precision needs CUDA devices (expected cuda:N vs cpu:0)"]),
    (["--amp", "bfloat16", "--devices", "cpu:0,cpu:1"], ["--amp: mixed precision needs CUDA devices",
                                                         "vs cpu:0,cpu:1"]),
    (["--data", "/no/such/folder"], ["--data: no such folder (expected 'default', 'fashion-mnist' or an existing "
                                     "folder vs '/no/such/folder')"]),
    (["--evaluate"], ["--evaluate: no checkpoint to evaluate (expected --resume PATH vs none"]),
    (["--resume", "missing.npz"], ["--resume: no checkpoint there (expected an existing .npz file vs 'missing.npz')"]),
    (["--resume"], ["--resume: no checkpoint there", "last.npz"]),
])
def test_bad_usage_is_one_line_exit_2_before_any_data_work(argv, parts, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, _, err, _ = run_cli(argv, capsys)
    assert status == 2
    assert_one_line_error(err, *parts)
    assert not (tmp_path / "data").exists()  # nothing generated or packed


@pytest.mark.skipif(not _no_gpu(), reason="this machine has a CUDA device")
def test_a_cuda_device_without_a_gpu_fails_before_data_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, _, err, _ = run_cli(["--device", "cuda:0"], capsys)
    assert status == 2
    line = assert_one_line_error(err, "--device: cuda:0 is not available (expected a CUDA device with CuPy vs ")
    assert line.endswith(("vs CuPy is not installed)", "vs no usable CUDA device)"))
    assert not (tmp_path / "data").exists()


def test_out_being_a_file_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("x")
    status, _, err, _ = run_cli(["--out", "f"], capsys)
    assert status == 2 and "--out: not a folder" in err


def test_a_batch_larger_than_the_training_set_fails_before_packing(tmp_path, capsys):
    src = make_tree(tmp_path / "src")
    status, _, err, _ = run_cli(["--data", src, "--data-dir", str(tmp_path / "d"), "--batch-size", "1000000000",
                                 "--out", str(tmp_path / "run")], capsys)
    assert status == 2
    assert_one_line_error(err, "--batch-size: larger than the training set (expected <= 12 vs 1000000000)")
    assert not (tmp_path / "d" / "src-store").exists() and not (tmp_path / "d" / "src-store.partial").exists()


def test_workers_above_the_cpu_count_are_capped_with_a_warning(monkeypatch, capsys):
    monkeypatch.setattr(options, "cpu_count", lambda: 2)
    args = options.build_parser().parse_args(["--workers", "1000"])
    warnings = []
    options.check_args(args, {"workers"}, warnings.append)
    assert args.workers == 2
    assert warnings == ["warning: --workers 1000 is more than the 2 CPUs of this machine; using 2"]


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(options.UsageError, match="--epochs: out of range"):
        cli.main(["--epochs", "0", "--debug"])


def _finish_run(store, out, capsys, *extra):
    status, text, err, rows = run_cli(train_args(store, out, *extra), capsys)
    assert status == 0, err
    return text, rows


@pytest.mark.parametrize("damage, parts", [
    ("empty", ["not a readable .npz archive"]),
    ("truncated", ["not a readable .npz archive"]),
    ("random", ["not a readable .npz archive"]),
    ("nested", ["bad checkpoint meta (expected JSON nested a few levels deep vs deeper)"]),
    ("no classes", ["bad checkpoint meta: no 'classes'"]),
    ("seed", ["bad checkpoint meta: rng (expected a NumPy bit-generator state"]),
    ("nan lr", ["optimizer (expected param_groups[0].lr a finite number"]),
])
def test_a_damaged_checkpoint_on_resume_is_one_line_exit_1_naming_it(store, tmp_path, capsys, small, damage, parts):
    out = tmp_path / "run"
    _finish_run(store, out, capsys)
    path = out / "last.npz"
    data = path.read_bytes()
    if damage in ("empty", "truncated", "random"):
        path.write_bytes({"empty": b"", "truncated": data[:len(data) // 3], "random": os.urandom(2000)}[damage])
    else:
        items = entries(path)
        meta = json.loads(str(np.load(io.BytesIO(items["meta.npy"]))[()]))
        text = {"nested": "[" * 50000 + "]" * 50000,
                "no classes": json.dumps({k: v for k, v in meta.items() if k != "classes"}),
                "seed": json.dumps(dict(meta, rng=dict(meta["rng"], bit_generator="seed"))),
                "nan lr": json.dumps(dict(meta, optimizer={"param_groups": [
                    dict(meta["optimizer"]["param_groups"][0], lr=float("nan"))]}))}[damage]
        items["meta.npy"] = npy_bytes(np.array(text))
        write_entries(path, items)
    status, _, err, _ = run_cli(train_args(store, out, "--epochs", "2", "--resume"), capsys)
    assert status == 1
    line = assert_one_line_error(err, str(path), *parts)
    assert "allow_pickle" not in line


@pytest.mark.parametrize("kind", ["int8", "float64", "nan"])
def test_bad_weights_in_a_checkpoint_are_refused_by_name(store, tmp_path, capsys, small, kind):
    out = tmp_path / "run"
    _finish_run(store, out, capsys)
    path = out / "last.npz"
    items = entries(path)
    w = np.load(io.BytesIO(items["model/0.weight.npy"]))
    if kind == "nan":
        w[0, 0, 0, 0] = np.nan
    items["model/0.weight.npy"] = npy_bytes(w if kind == "nan" else w.astype(kind))
    write_entries(path, items)
    status, _, err, _ = run_cli(train_args(store, out, "--epochs", "2", "--resume"), capsys)
    assert status == 1
    assert_one_line_error(err, str(path), "model/0.weight", "NaN" if kind == "nan" else f"dtype {kind}")


def test_an_explicit_lr_on_resume_wins_and_is_announced(store, tmp_path, capsys, small):
    out = tmp_path / "run"
    _finish_run(store, out, capsys)
    status, text, err, _ = run_cli(train_args(store, out, "--epochs", "2", "--resume", "--lr", "0.005"), capsys)
    assert status == 0, err
    assert "--lr 0.005 replaces the checkpoint's 0.001" in text
    meta = read_meta(out / "last.npz")
    assert meta["base_lr"] == meta["optimizer"]["param_groups"][0]["initial_lr"] == 0.005


def test_without_flags_resume_takes_the_checkpoints_settings(store, tmp_path, capsys, small):
    out = tmp_path / "run"
    _finish_run(store, out, capsys)
    argv = ["--data", str(store), "--out", str(out), "--epochs", "2", "--workers", "0", "--resume"]
    status, text, err, _ = run_cli(argv, capsys)
    assert status == 0, err
    assert "batch 4, lr 0.001 (the checkpoint's)" in text and "input scale 0.02" in text


@pytest.mark.parametrize("flag, value, parts", [
    ("--input-scale", "0.5", ["--input-scale: cannot change on --resume (expected the checkpoint's 0.02 vs 0.5)"]),
    ("--init", "paper", ["--init: cannot change on --resume"]),
])
def test_flags_that_cannot_change_on_resume_are_refused(store, tmp_path, capsys, small, flag, value, parts):
    out = tmp_path / "run"
    _finish_run(store, out, capsys, "--init", "kaiming")
    status, _, err, _ = run_cli(train_args(store, out, "--epochs", "2", "--resume", flag, value), capsys)
    assert status == 2
    assert_one_line_error(err, *parts)


def test_a_new_batch_size_in_the_middle_of_an_epoch_is_refused(store, tmp_path, capsys, small, monkeypatch):
    out = tmp_path / "run"
    from minitorch_alex.train.trainer import Trainer

    stop = Trainer._optimizer_step

    def interrupt(self):
        stop(self)
        if self.step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_optimizer_step", interrupt)
    status, _, err, _ = run_cli(train_args(store, out, "--save-every", "1"), capsys)
    assert status == 130
    monkeypatch.setattr(Trainer, "_optimizer_step", stop)
    status, _, err, _ = run_cli(train_args(store, out, "--resume", "--batch-size", "2"), capsys)
    assert status == 2
    assert_one_line_error(err, "--batch-size: cannot change in the middle of an epoch on --resume "
                               "(expected the checkpoint's 4 vs 2)")


def test_ctrl_c_names_the_last_checkpoint_and_the_resume_command(store, tmp_path, capsys, small, monkeypatch):
    out = tmp_path / "run"
    from minitorch_alex.train.trainer import Trainer

    step = Trainer._optimizer_step

    def interrupt(self):
        if self.step == 2:  # two steps done and checkpointed
            raise KeyboardInterrupt
        step(self)

    monkeypatch.setattr(Trainer, "_optimizer_step", interrupt)
    status, _, err, _ = run_cli(train_args(store, out, "--save-every", "1"), capsys)
    assert status == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"interrupted: the last checkpoint is {out / 'last.npz'} (epoch 1/1, step 2/3); "
                               "resume with: python examples/train_imagenet.py ")
    assert lines[0].endswith(f"--resume {out / 'last.npz'}")
    monkeypatch.setattr(Trainer, "_optimizer_step", step)
    command = lines[0].split("resume with: python examples/train_imagenet.py ")[1].split()
    status, text, err, rows = run_cli(command, capsys)
    assert status == 0, err and rows and "resumed from" in text


def test_ctrl_c_before_any_checkpoint_says_so(store, tmp_path, capsys, small, monkeypatch):
    from minitorch_alex.train.trainer import Trainer

    monkeypatch.setattr(Trainer, "_optimizer_step", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    status, _, err, _ = run_cli(train_args(store, tmp_path / "run"), capsys)
    assert status == 130 and err.strip() == "interrupted: no checkpoint was written yet (run the same command again to start over)"


def test_ctrl_c_while_packing_says_packing_continues(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ranks, "resolve_data", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    status, _, err, _ = run_cli(["--out", str(tmp_path / "run")], capsys)
    assert status == 130
    assert err.strip() == ("interrupted while preparing the data (the same command again continues where "
                           "packing stopped)")


def test_divergence_without_a_checkpoint_does_not_name_one(store, tmp_path, capsys, small):
    status, _, err, _ = run_cli(train_args(store, tmp_path / "run", "--lr", "1e30", "--input-scale", "1"), capsys)
    assert status == 1
    assert_one_line_error(err, "the loss became", "no checkpoint was written before it")
    assert not (tmp_path / "run" / "last.npz").exists()


def test_labels_out_of_range_in_a_store_fail_before_training(tmp_path, capsys, small):
    root = make_store(tmp_path / "store")
    labels = np.load(os.path.join(root, "val_labels.npy"))
    labels[0] = -1
    np.save(os.path.join(root, "val_labels.npy"), labels)
    status, _, err, _ = run_cli(train_args(root, tmp_path / "run"), capsys)
    assert status == 1
    assert_one_line_error(err, "val_labels.npy: labels out of range (expected 0..2 vs -1")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_resume_on_a_finished_run_says_there_is_nothing_to_do(store, tmp_path, capsys, small):
    out = tmp_path / "run"
    _finish_run(store, out, capsys)
    status, text, _, rows = run_cli(train_args(store, out, "--resume"), capsys)
    assert status == 0 and rows == []
    assert "nothing to do" in text and "has finished 1 of 1 epochs (pass --epochs N with N > 1" in text
    assert load_checkpoint(out / "last.npz")["epoch"] == 1
