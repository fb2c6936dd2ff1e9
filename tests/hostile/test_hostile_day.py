"""A practitioner's day on bad luck (issue 29): a run that remembers its data, a run folder that is
not silently overwritten, interruptions by signal. The happy path is tests/train/test_journey.py."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from hostile_helpers import assert_one_line_error, entries, make_store, run_cli, small, train_args  # noqa: F401
from paths import ROOT as REPO

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


# ----- SIGINT, SIGTERM, SIGHUP: finish the step, checkpoint, say how to resume --------------------------

SCRIPT = textwrap.dedent("""
    import os, sys, time
    sys.path[:0] = [{repo!r}, os.path.join({repo!r}, "tests")]
    from hostile_helpers import small_net
    from minitorch_alex import random as mt_random, serialization
    from minitorch_alex.train import cli, trainer

    def build(num_classes, devices=None, init=None, generator=None, dropout=0.5):
        with mt_random.use_generator(generator):
            return small_net(num_classes, dropout)

    trainer.alexnet = build  # the CLI as typed, with a small network in AlexNet's place
    step = trainer.Trainer._optimizer_step
    trainer.Trainer._optimizer_step = lambda self: (step(self), print("step", flush=True))[0]
    if os.environ.get("SLOW_WRITE"):  # a checkpoint write that takes long enough to be signalled
        allocate = serialization.allocate
        serialization.allocate = lambda *a: (allocate(*a), print("writing", flush=True), time.sleep(60))[0]
    cli.main(sys.argv[1:])
""")


def _cli(script, argv, **env):
    return subprocess.Popen([sys.executable, str(script), *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONHASHSEED="0", **env))


def _wait_for(proc, mark, count=1):
    """Read the child's stdout up to its ``count``-th ``mark`` line and no further: byte by byte from
    the pipe, since a buffered reader would take later lines with it, which ``communicate`` then
    never sees (the step count after the signal came out short under load)."""
    seen, line, fd = 0, b"", proc.stdout.fileno()
    while seen < count:
        byte = os.read(fd, 1)
        if not byte:
            raise AssertionError(f"the run ended before {count} x {mark!r}: {proc.stderr.read()}")
        if byte != b"\n":
            line += byte
            continue
        seen += line.decode().strip() == mark
        line = b""


def _signal_args(store, out):
    return [*train_args(store, out, "--epochs", "2", "--workers", "1"), "--no-progress", "--no-plots"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """(store, script, run folder) of a 2-epoch run through the CLI that no signal stopped."""
    base = tmp_path_factory.mktemp("signals")
    store = make_store(base / "store")
    script = base / "train.py"
    script.write_text(SCRIPT.format(repo=REPO))
    straight = _cli(script, _signal_args(store, base / "straight"))
    _, err = straight.communicate(timeout=120)
    assert straight.returncode == 0, err
    return store, script, base / "straight"


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_checkpoints_mid_epoch_and_the_resume_is_bit_exact(sig, status, uninterrupted, tmp_path):
    store, script, straight = uninterrupted
    out = tmp_path / "cut"
    proc = _cli(script, _signal_args(store, out))
    _wait_for(proc, "step", 2)  # in the middle of the first epoch (3 steps of 4 images)
    os.killpg(proc.pid, sig)  # as a terminal or SLURM signals: the loader's worker too
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    line = err.strip()
    name = "" if sig == signal.SIGINT else f" by {signal.Signals(sig).name}"
    assert "\n" not in line and line.startswith(f"interrupted{name}: saved {out / 'last.npz'} (epoch 1/2, step "), err
    assert line.endswith(f"--resume {out / 'last.npz'}")
    meta = load_checkpoint(out / "last.npz")
    assert meta["epoch"] == 0 and meta["batch"] in (2, 3)  # the step in progress was finished, then saved
    assert rest.split().count("step") == meta["batch"] - 2
    command = line.split("resume with: python examples/train_imagenet.py ")[1].split()
    resumed = _cli(script, command)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    a, b = entries(straight / "last.npz"), entries(out / "last.npz")
    assert sorted(a) == sorted(b)
    for name in a:
        if name != "meta.npy":
            assert a[name] == b[name], name
    keep = ("epoch", "lr", "train_loss", "train_top1_err", "val_loss", "val_top1_err", "val_top5_err")
    rows = [[{k: r[k] for k in keep} for r in map(json.loads, open(run / "metrics.jsonl"))]
            for run in (straight, out)]
    assert rows[0] == rows[1] and len(rows[0]) == 2


def test_a_second_signal_stops_at_once_and_leaves_no_temporary_file(uninterrupted, tmp_path):
    store, script, _ = uninterrupted
    out = tmp_path / "run"
    proc = _cli(script, _signal_args(store, out), SLOW_WRITE="1")
    _wait_for(proc, "step", 1)
    os.kill(proc.pid, signal.SIGTERM)  # finish the step, then checkpoint ...
    _wait_for(proc, "writing")  # ... which is being written (slowly) when the second signal comes
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)  # not the 60 s the write would still take
    assert proc.returncode == 143
    assert err.strip() == ("interrupted by SIGTERM: no checkpoint was written yet (run the same command again to "
                           "start over)")
    left = os.listdir(out)
    assert ".lock" in left and not [n for n in left if n.startswith(".tmp-") or n.endswith(".npz")], left


def test_a_new_run_does_not_replace_another_runs_files(tmp_path, capsys, small, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = make_store(tmp_path / "store")
    out = tmp_path / "run"
    status, _, err, _ = run_cli(train_args(store, out), capsys)
    assert status == 0, err
    before = {name: (out / name).read_bytes() for name in ("last.npz", "best.npz", "metrics.csv", "metrics.jsonl")}
    status, _, err, _ = run_cli(train_args(store, out, "--seed", "1"), capsys)
    assert status == 2
    line = assert_one_line_error(err, f"--out: {out} holds another run (expected a folder without checkpoints vs "
                                      f"last.npz, best.npz, 1 epochs done); resume it with: python "
                                      f"examples/train_imagenet.py --out {out} --resume; or add --overwrite to "
                                      "replace it, or give another --out")
    assert {name: (out / name).read_bytes() for name in before} == before
    command = line.split("resume it with: python examples/train_imagenet.py ")[1].split(";")[0].split()
    status, text, err, _ = run_cli(command + ["--epochs", "2", "--workers", "0"], capsys)
    assert status == 0 and "resumed from" in text, err
    status, _, err, _ = run_cli(train_args(store, out, "--seed", "1", "--overwrite"), capsys)
    assert status == 0, err
    assert load_checkpoint(out / "last.npz")["config"]["seed"] == 1
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1  # the new run's epoch alone


# ----- what the output says -----------------------------------------------------------------------------

@pytest.mark.parametrize("classes", [3, 6])
def test_top_k_error_is_reported_only_for_k_below_the_number_of_classes(classes, tmp_path, capsys, small):
    store = make_store(tmp_path / "store", classes=classes, train=2, val=1)
    out = tmp_path / "run"
    status, text, err, _ = run_cli(train_args(store, out, "--batch-size", "2", "--print-freq", "1"), capsys)
    assert status == 0, err
    status, evaluated, err, _ = run_cli(["--evaluate", "--resume", str(out / "best.npz"), "--workers", "0"], capsys)
    assert status == 0, err
    text += evaluated
    if classes > 5:
        assert "top-1/top-5 err" in text and "val top5" in text and ", top-5 error " in text and "(top-5 " in text
    else:  # with 5 classes or fewer the true class is always among the top 5: 0% says nothing
        said = text.replace(f"(no top-5: {classes} classes)", "")
        assert "top-5" not in said and "top5" not in said, text
        assert "top-1 err" in text and f"(no top-5: {classes} classes)" in text


def test_no_progress_bar_fragments_when_output_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    import minitorch_alex.nn as nn
    from minitorch_alex import random as mt_random
    from minitorch_alex.train import trainer

    def build(num_classes, devices=None, init=None, generator=None, dropout=0.5):  # any crop size
        with mt_random.use_generator(generator):
            return nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(),
                                 nn.Linear(16, num_classes))

    monkeypatch.setattr(trainer, "alexnet", build)
    monkeypatch.chdir(tmp_path)
    from hostile_helpers import main, make_tree

    src = make_tree(tmp_path / "photos")  # packed by the CLI: its packing and statistics bars
    main(["--data", src, "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4", "--workers", "0",
          "--no-plots"])  # progress asked for (no --no-progress), but pytest's output is no terminal
    captured = capsys.readouterr()
    assert "data: packing" in captured.out and "final validation" in captured.out
    assert "\r" not in captured.out + captured.err and "it/s]" not in captured.err, captured.err


def test_figures_are_not_announced_when_not_drawn(tmp_path, capsys, small):
    store = make_store(tmp_path / "store")
    status, text, err, _ = run_cli(train_args(store, tmp_path / "run"), capsys)  # run_cli adds --no-plots
    assert status == 0, err
    assert f"checkpoints and metrics in {tmp_path / 'run'}" in text and "plots" not in text


def test_a_loss_still_at_chance_level_is_reported_with_advice(tmp_path, capsys, small, monkeypatch):
    from minitorch_alex.train import trainer

    monkeypatch.setattr(trainer, "CHANCE_CHECK_STEPS", 2)  # 300 steps in a real run
    store = make_store(tmp_path / "store")
    status, text, err, _ = run_cli(train_args(store, tmp_path / "run", "--lr", "1e-9"), capsys)  # nothing learnt
    assert status == 0, err
    warnings = [line for line in text.splitlines() if line.startswith("warning: the training loss is ")]
    assert len(warnings) == 1, text
    assert "after 2 steps, still at chance level (ln 3 = 1.099)" in warnings[0]
    assert "--init kaiming --input-scale 0.015625 --warmup 50 --batch-size 32" in warnings[0]
    assert "--pretrained" in warnings[0]


def test_the_curves_have_ticks_at_whole_epochs_only(tmp_path, monkeypatch):
    from minitorch_alex.train import plots

    plt = plots._pyplot()
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    rows = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.1 / e, "train_top1_err": 0.5, "val_top1_err": 0.6}
            for e in (1, 2)]
    plots.plot_curves(rows, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").is_file()
    for ax in figures[0].axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


