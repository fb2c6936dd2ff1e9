"""The run folder on bad luck: a second run, killed writes, full disks, SIGKILL at random moments."""
import errno
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
from hostile_helpers import assert_one_line_error, run_cli, small, store, train_args, use_small_net  # noqa: F401

from minitorch_alex import serialization
from minitorch_alex.train import load_checkpoint
from minitorch_alex.train import trainer as trainer_module

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_second_run_on_the_same_out_is_refused_naming_the_first(store, tmp_path, capsys, small):
    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4242: train_imagenet.py --out run\n")
        status, _, err, _ = run_cli(train_args(store, out), capsys)
    finally:
        os.close(fd)
    assert status == 1
    assert_one_line_error(err, f"run folder {out} is in use by another process (expected no other process there "
                               "vs pid 4242: train_imagenet.py --out run)")
    assert sorted(os.listdir(out)) == [".lock"]  # nothing of the other run was touched or written
    status, _, err, _ = run_cli(train_args(store, out), capsys)
    assert status == 0, err


def test_stale_temp_files_of_a_killed_write_are_removed_once_locked(store, tmp_path, capsys, small):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".tmp-last.npzab12cd").write_bytes(b"\0" * 1000)
    (out / ".tmp-best.npz99").write_bytes(b"\0")
    status, _, err, _ = run_cli(train_args(store, out), capsys)
    assert status == 0, err
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]


def test_last_is_written_before_best(store, tmp_path, capsys, small, monkeypatch):
    order = []
    save, link = trainer_module.save_checkpoint, trainer_module.link_atomic
    monkeypatch.setattr(trainer_module, "save_checkpoint", lambda path, *a, **k: (order.append(os.path.basename(path)),
                                                                                 save(path, *a, **k)))
    monkeypatch.setattr(trainer_module, "link_atomic", lambda src, dst: (order.append(os.path.basename(dst)), link(src, dst)))
    status, _, err, _ = run_cli(train_args(store, tmp_path / "run"), capsys)
    assert status == 0, err
    assert order == ["last.npz", "best.npz"]
    assert load_checkpoint(tmp_path / "run" / "best.npz") == load_checkpoint(tmp_path / "run" / "last.npz")


def test_a_full_disk_at_the_end_of_an_epoch_keeps_the_previous_checkpoint(store, tmp_path, capsys, small, monkeypatch):
    out = tmp_path / "run"
    status, _, err, _ = run_cli(train_args(store, out), capsys)
    assert status == 0, err
    before = load_checkpoint(out / "last.npz")

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serialization.os, "posix_fallocate", full)
    status, _, err, _ = run_cli(train_args(store, out, "--epochs", "2", "--resume"), capsys)
    assert status == 1
    assert_one_line_error(err, f"no space left on device writing {out / 'last.npz'} (needs ",
                          f"{out / 'last.npz'} is kept unchanged")
    monkeypatch.undo()
    use_small_net(monkeypatch)
    assert load_checkpoint(out / "last.npz") == before
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    status, text, err, _ = run_cli(train_args(store, out, "--epochs", "2", "--resume"), capsys)
    assert status == 0 and "resumed from" in text, err


# ----- SIGKILL at random moments, packing included ------------------------------------------------------

SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path[:0] = [{repo!r}, os.path.join({repo!r}, "tests")]
    import numpy as np
    import minitorch_alex as mt
    from hostile_helpers import SIZE, make_tree, small_net
    from minitorch_alex.data import open_store, prepare, prepare_store
    from minitorch_alex.train import TrainConfig, Trainer

    def mark(what):
        print(what, flush=True)

    convert = prepare_store._convert_chunk
    prepare_store._convert_chunk = lambda task: (mark("pack"), convert(task))[1]
    base = sys.argv[1]
    src = make_tree(os.path.join(base, "src"))
    store = open_store(prepare(src, os.path.join(base, "store"), size=SIZE, chunk_size=2, progress=False))
    step, save = Trainer._optimizer_step, Trainer.save
    Trainer._optimizer_step = lambda self: (mark("step"), step(self))[1]
    Trainer.save = lambda self, name="last.npz": (mark("save"), save(self, name))[1]
    cfg = TrainConfig(epochs=3, batch_size=4, lr=0.001, workers=0, out=os.path.join(base, "run"), seed=0,
                      plots=False, progress=False, save_every=1, input_scale=0.02)
    mt.manual_seed(0)
    trainer = Trainer(cfg, store.train, store.val, store.classes, model=small_net())
    last = os.path.join(cfg.out, "last.npz")
    trainer.fit(resume_from=last if os.path.exists(last) else None, echo=lambda *a: None)
    velocity = {{f"v{{i}}": v for i, v in enumerate(trainer.optimizer.state_dict()["state"]["velocity"])}}
    mt.save(dict(trainer.model.state_dict(), **velocity), os.path.join(base, "final.npz"))
    mark("done")
""")


def _start(script, base):
    return subprocess.Popen([sys.executable, str(script), str(base)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONHASHSEED="0"))


def _rows(base):
    keep = ("epoch", "lr", "train_loss", "train_top1_err", "val_loss", "val_top1_err", "val_top5_err")
    return [{k: r[k] for k in keep} for r in map(json.loads, open(os.path.join(base, "run", "metrics.jsonl")))]


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(repo=REPO))
    straight = tmp_path / "straight"
    proc = _start(script, straight)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    marks = out.split()
    packs, total = marks.count("pack"), len(marks) - 1
    rnd = random.Random(17)
    # Kill points, as "after the k-th progress mark plus a random few ms": one while packing, the rest
    # spread over training (each resumed process counts its own marks).
    plan = [rnd.randrange(1, packs)] + sorted(rnd.sample(range(packs + 1, total), 3))
    cut = tmp_path / "cut"
    done, kills = 0, 0
    for target in plan:
        proc = _start(script, cut)
        seen = 0
        for line in proc.stdout:
            seen += 1
            if seen >= max(1, target - done):
                time.sleep(rnd.uniform(0, 0.01))
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        if target == plan[0]:  # killed while packing: a half-packed store, nothing published
            assert (cut / "store.partial").exists() and not (cut / "store").exists()
        done = target
    assert kills >= 3
    proc = _start(script, cut)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "pack" not in out and out.split().count("step") < marks.count("step")  # resumed, not started over
    a, b = np.load(straight / "final.npz"), np.load(cut / "final.npz")
    assert a.files == b.files
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert _rows(straight) == _rows(cut)
    assert not [n for n in os.listdir(cut / "run") if n.startswith(".tmp-")]
