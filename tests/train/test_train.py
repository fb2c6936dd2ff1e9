"""Training end to end: checkpoints (atomic, exact resume), divergence, metrics, the CLI."""
import errno
import json
import signal

import numpy as np
import pytest

import minitorch_alex as mt
import minitorch_alex.nn as nn
from minitorch_alex import serialization
from minitorch_alex.data import StoreSplit
from minitorch_alex.train import (
    TrainConfig,
    Trainer,
    TrainingDiverged,
    load_checkpoint,
    main,
    save_checkpoint,
    topk_correct,
    write_atomic_npz,
)
from minitorch_alex.train.metrics import device_step_sums
from minitorch_alex.train.report import format_row


def tiny_split(n=24, size=16, classes=3, seed=0, name="train"):
    """Images whose class is told by a bright horizontal band's position."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 60, (n, size, size, 3)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 + 4 * c: 4 + 4 * c] = 230
    mean = images.mean(axis=0).astype(np.float32)
    return StoreSplit(images, labels.astype(np.int64), mean, np.array([0.2, 0.05, 0.01], np.float32),
                      np.eye(3, dtype=np.float32), [f"c{k}" for k in range(classes)], name)


def small_net(classes=3):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.LocalResponseNorm(3, groups=2),
                         nn.MaxPool2d(3, 2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 6 * 6, classes))


def make_trainer(out, epochs=2, seed=0, **kw):
    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=0.01, workers=0, out=str(out), seed=seed, plots=False,
                      progress=False, **kw)
    train, val = tiny_split(), tiny_split(n=9, seed=1, name="val")
    mt.manual_seed(seed)
    return Trainer(cfg, train, val, train.classes, model=small_net())


def crash_after_checkpoint_of_step(trainer, step):
    """Make ``trainer`` raise KeyboardInterrupt right after it has saved the checkpoint of ``step``."""
    def save(name="last.npz", _orig=trainer.save):
        path = _orig(name)
        if trainer.step == step:
            raise KeyboardInterrupt
        return path

    trainer.save = save


def params(trainer):
    return {k: v.copy() for k, v in trainer.model.state_dict().items()}


def test_two_epochs_straight_equal_one_epoch_resume_one_epoch(tmp_path):
    straight = make_trainer(tmp_path / "a")
    straight.fit(echo=lambda *_: None)

    first = make_trainer(tmp_path / "b", epochs=1)
    first.fit(echo=lambda *_: None)
    second = make_trainer(tmp_path / "b", epochs=2, seed=0)
    mt.manual_seed(12345)  # resume must restore the RNG (dropout masks) from the checkpoint
    second.fit(resume_from=str(tmp_path / "b" / "last.npz"), echo=lambda *_: None)

    a, b = params(straight), params(second)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(straight.optimizer.state_dict()["state"]["velocity"][0],
                                  second.optimizer.state_dict()["state"]["velocity"][0])
    rows = [json.loads(line) for line in open(tmp_path / "b" / "metrics.jsonl")]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["train_loss"] == straight.log.rows[1]["train_loss"]


def test_resume_in_the_middle_of_an_epoch(tmp_path):
    straight = make_trainer(tmp_path / "a", epochs=1)
    straight.fit(echo=lambda *_: None)
    cut = make_trainer(tmp_path / "b", epochs=1, save_every=2)
    crash_after_checkpoint_of_step(cut, 2)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(echo=lambda *_: None)
    resumed = make_trainer(tmp_path / "b", epochs=1)
    resumed.fit(resume_from=str(tmp_path / "b" / "last.npz"), echo=lambda *_: None)
    assert resumed.step == straight.step == 3
    for k, v in params(straight).items():
        np.testing.assert_array_equal(v, params(resumed)[k], err_msg=k)
    assert resumed.log.rows[-1]["train_loss"] == pytest.approx(straight.log.rows[-1]["train_loss"], rel=1e-12)


def test_warmup_ramps_the_lr_per_step_and_leaves_the_schedule_alone(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2, warmup_steps=4)  # 24 images / batch 8: 3 steps per epoch
    seen, step = [], trainer.optimizer.step

    def record():
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        step()

    trainer.optimizer.step = record
    trainer.fit(echo=lambda *_: None)
    np.testing.assert_allclose(seen, [0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])
    assert trainer.lr == 0.01
    # each epoch's last step and first step: epoch 1 is all warm-up (0.0025, 0.005, 0.0075)
    assert [row["lr"] for row in trainer.log.rows] == [0.0075, 0.01]
    assert [row["lr_first"] for row in trainer.log.rows] == [0.0025, 0.01]
    assert [format_row(row).split(" | ")[1] for row in trainer.log.rows] == ["lr 0.0025->0.0075", "lr 0.01"]


def test_cosine_schedule_after_warmup_and_its_exact_resume(tmp_path):
    straight = make_trainer(tmp_path / "a", epochs=3, warmup_steps=2, schedule="cosine")  # 3 x 3 steps
    seen, step = [], straight.optimizer.step
    straight.optimizer.step = lambda: (seen.append(straight.optimizer.param_groups[0]["lr"]), step())
    straight.fit(echo=lambda *_: None)
    cosine = [0.5 * (1 + np.cos(np.pi * t / 9)) for t in range(9)]
    expected = [0.01 * c * min(1, (t + 1) / 2) for t, c in enumerate(cosine)]
    np.testing.assert_allclose(seen, expected, rtol=1e-12)
    assert straight.lr == 0.01

    first = make_trainer(tmp_path / "b", epochs=3, warmup_steps=2, schedule="cosine", save_every=4)
    crash_after_checkpoint_of_step(first, 4)
    with pytest.raises(KeyboardInterrupt):
        first.fit(echo=lambda *_: None)
    second = make_trainer(tmp_path / "b", epochs=3, warmup_steps=2, schedule="cosine")
    second.fit(resume_from=str(tmp_path / "b" / "last.npz"), echo=lambda *_: None)
    for k, v in params(straight).items():
        np.testing.assert_array_equal(v, params(second)[k], err_msg=k)


def test_resume_during_warmup_is_exact(tmp_path):
    straight = make_trainer(tmp_path / "a", warmup_steps=5)
    straight.fit(echo=lambda *_: None)
    first = make_trainer(tmp_path / "b", epochs=1, warmup_steps=5)
    first.fit(echo=lambda *_: None)
    second = make_trainer(tmp_path / "b", warmup_steps=5)
    second.fit(resume_from=str(tmp_path / "b" / "last.npz"), echo=lambda *_: None)
    for k, v in params(straight).items():
        np.testing.assert_array_equal(v, params(second)[k], err_msg=k)


def test_mixed_precision_run_checkpoints_float32_masters_and_resumes_exactly(tmp_path):
    straight = make_trainer(tmp_path / "a", amp="float16")
    straight.fit(echo=lambda *_: None)
    assert all(p.dtype == np.float16 for p in straight.model.parameters())
    saved = np.load(tmp_path / "a" / "last.npz", allow_pickle=False)
    weights = [k for k in saved.files if k.startswith("model/")]
    assert weights and all(saved[k].dtype == np.float32 for k in weights)
    assert np.isfinite(straight.log.rows[-1]["train_loss"])

    first = make_trainer(tmp_path / "b", epochs=1, amp="float16")
    first.fit(echo=lambda *_: None)
    second = make_trainer(tmp_path / "b", amp="float16")
    second.fit(resume_from=str(tmp_path / "b" / "last.npz"), echo=lambda *_: None)
    for a, b in zip(straight.mp.master, second.mp.master):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert second.mp.scaler.state_dict() == straight.mp.scaler.state_dict()


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.fit(echo=lambda *_: None)
    path = tmp_path / "last.npz"
    before = load_checkpoint(path)

    def crash(f, array, **kw):
        f.write(b"half an array")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serialization.np.lib.format, "write_array", crash)
    trainer.step += 1
    with pytest.raises(OSError, match=f"no space left on device writing {path} \\(needs \\d+ bytes.*{path} is kept"):
        trainer.save()
    monkeypatch.undo()
    assert load_checkpoint(path) == before  # the old one is intact and loads
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []  # no litter


def test_checkpoint_round_trip_without_pickle(tmp_path):
    m = small_net()
    opt = mt.optim.SGD(m.parameters(), lr=0.1)
    save_checkpoint(tmp_path / "c.npz", m, opt, {"epoch": 3})
    archive = np.load(tmp_path / "c.npz", allow_pickle=False)  # everything is a plain array
    assert "meta" in archive.files and all(archive[k].dtype != object for k in archive.files)
    m2, opt2 = small_net(), mt.optim.SGD(small_net().parameters(), lr=0.5)
    opt2 = mt.optim.SGD(m2.parameters(), lr=0.5)
    meta = load_checkpoint(tmp_path / "c.npz", m2, opt2)
    assert meta["epoch"] == 3 and opt2.param_groups[0]["lr"] == 0.1
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, m2.state_dict()[k])


def test_bad_checkpoint_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="junk.npz: not a readable .npz"):
        load_checkpoint(tmp_path / "junk.npz")
    write_atomic_npz(tmp_path / "other.npz", {"x": np.zeros(2)})
    with pytest.raises(ValueError, match="other.npz: unexpected entry 'x'"):
        load_checkpoint(tmp_path / "other.npz")
    object_array = np.empty(1, dtype=object)
    np.savez(tmp_path / "pickled.npz", meta=object_array)
    with pytest.raises(ValueError):  # refused: loading it would need pickle
        load_checkpoint(tmp_path / "pickled.npz")


def test_nan_loss_stops_with_the_step_and_keeps_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2)
    trainer.cfg.epochs = 1
    trainer.fit(echo=lambda *_: None)
    good = params(trainer)
    trainer.cfg.epochs = 2
    trainer.lr = 1e30  # blows up within a step or two
    with pytest.raises(TrainingDiverged, match=r"at step \d+ \(epoch 2, batch \d+\).*last.npz"):
        trainer.fit(echo=lambda *_: None)
    reloaded = make_trainer(tmp_path / "x")
    load_checkpoint(tmp_path / "last.npz", reloaded.model)
    for k, v in good.items():
        np.testing.assert_array_equal(reloaded.model.state_dict()[k], v)


def test_topk_correct():
    scores = np.array([[0.1, 0.5, 0.2, 0.15, 0.05, 0.0], [0.3, 0.1, 0.2, 0.25, 0.1, 0.05]])
    assert topk_correct(scores, np.array([1, 5]), ks=(1, 5)) == {1: 1, 5: 1}
    assert topk_correct(scores, np.array([2, 0]), ks=(1, 2)) == {1: 1, 2: 2}


def test_learning_happens_on_the_tiny_set(tmp_path):
    trainer = make_trainer(tmp_path, epochs=8)
    trainer.lr = 1e-5  # 0..255 pixels into a default-initialised net: big logits
    rows = trainer.fit(echo=lambda *_: None)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


@pytest.fixture(scope="module")
def tiny_imagefolder(tmp_path_factory):
    from minitorch_alex.data import make_synthetic_imagefolder

    root = tmp_path_factory.mktemp("folder")
    make_synthetic_imagefolder(str(root / "src"), num_classes=3, train_per_class=4, val_per_class=2, size=64)
    return root


def test_cli_tiny_run_on_an_imagefolder_with_the_real_alexnet(tiny_imagefolder, tmp_path, capsys):
    out = tmp_path / "run"
    rows = main(["--data", str(tiny_imagefolder / "src"), "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                 "--batch-size", "4", "--max-steps", "1", "--workers", "0", "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert "final validation top-1 accuracy" in text and "the paper's settings unless flagged" in text
    assert len(rows) == 1 and np.isfinite(rows[0]["train_loss"])
    for name in ("last.npz", "best.npz", "metrics.jsonl", "metrics.csv", "curves.png", "conv1_filters.png", "top5.png"):
        assert (out / name).exists(), name
    meta = load_checkpoint(out / "last.npz")
    assert meta["epoch"] == 1 and meta["step"] == 1
    result = main(["--data", str(tmp_path / "data" / "src-store"), "--evaluate", "--resume", str(out / "last.npz"),
                   "--ten-crop", "--batch-size", "10", "--workers", "0", "--out", str(out), "--no-progress"])
    assert result["images"] == 6 and "10-crop" in capsys.readouterr().out


def test_cli_plots_the_first_filters_of_torchvisions_alexnet(tiny_imagefolder, tmp_path, capsys):
    """Its first convolution is features.0, not conv1 (the run ended in "error: 'conv1.weight'"
    after its last epoch)."""
    out = tmp_path / "run"
    status = main(["--data", str(tiny_imagefolder / "src"), "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                   "--arch", "alexnet-torchvision", "--batch-size", "4", "--max-steps", "1", "--workers", "0",
                   "--out", str(out), "--no-progress"])
    assert isinstance(status, list), capsys.readouterr()
    assert (out / "conv1_filters.png").exists() and (out / "curves.png").exists()


def test_cli_two_devices_report_cross_device_traffic(tiny_imagefolder, tmp_path, capsys):
    rows = main(["--data", str(tiny_imagefolder / "src"), "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                 "--batch-size", "2", "--max-steps", "1", "--max-val-batches", "1", "--workers", "0",
                 "--devices", "cpu:0,cpu:1", "--out", str(tmp_path / "run"), "--no-progress", "--no-plots"])
    per_image = 4 * (2 * 128 * 13 * 13 + 2 * 128 * 6 * 6 + 2 * 2048 + 2048)  # float32, forward
    assert rows[0]["cross_device_bytes_per_step"] == 2 * 2 * per_image  # batch 2, forward + backward
    assert "MiB across devices/step" in capsys.readouterr().out


def test_a_gpu_run_reads_its_step_sums_only_where_needed(tmp_path, monkeypatch):
    """On a GPU the loss and top-k sums stay on the device and are read at the print steps, the
    checkpoints and the epoch's end only (each read drains the GPU's queue); the epoch's metrics
    equal those of the per-step reads the host makes. (Here the "device" arrays are NumPy's: the
    device path, made to run, with its reads counted.)"""
    from minitorch_alex.train import trainer as trainer_mod

    original = Trainer._read_sums

    def run(out, every_step):
        monkeypatch.setattr(Trainer, "read_every_step", property(lambda self: every_step))
        reads = []

        def counting(self, *args):
            reads.append(self.batch + 1)
            return original(self, *args)

        monkeypatch.setattr(Trainer, "_read_sums", counting)
        monkeypatch.setattr(trainer_mod, "step_sums",
                            lambda logits, loss, labels: device_step_sums(np, logits.data, loss.data, labels))
        trainer = make_trainer(out, epochs=1, print_freq=2, save_every=3)
        trainer.fit(echo=lambda *_: None)
        return trainer.log.rows[0], reads

    host_row, host_reads = run(tmp_path / "host", True)
    gpu_row, gpu_reads = run(tmp_path / "gpu", False)
    assert host_reads == [1, 2, 3]  # 24 images in batches of 8: every step
    assert gpu_reads == [2, 3]  # print step 2; step 3 is a checkpoint and the epoch's end
    for key in ("train_loss", "train_top1_err", "train_top5_err"):
        assert gpu_row[key] == pytest.approx(host_row[key], rel=1e-12), key


@pytest.mark.parametrize("classes", [3, 5, 12])
def test_the_device_top_k_counts_agree_with_topk_correct(classes):
    rng = np.random.default_rng(classes)
    scores = rng.normal(size=(40, classes))  # no ties
    labels = rng.integers(0, classes, 40)
    loss = np.float32(1.25)
    got = device_step_sums(np, scores, loss, labels)
    correct = topk_correct(scores, labels)
    assert got.tolist() == [1.25 * 40, correct[1], correct[5]]


def test_the_default_worker_count_follows_the_device():
    from minitorch_alex.train.options import default_workers

    assert default_workers(("cpu",), 16) == 1  # the CPU's cores train
    assert default_workers(("cuda:0",), 16) == 8 and default_workers(("cuda:0", "cuda:1"), 6) == 3
    assert default_workers(("cuda:0",), 1) == 1 and default_workers(("cuda:0", "cpu"), 16) == 1


def test_the_checkpoints_crop_size_is_the_loaders_crop(tmp_path):
    """Inference cuts the crop_size the checkpoint names: it must be the crop training used (the
    loader's default_crop), also for a store size where 224/256 of it is not a whole number."""
    from minitorch_alex.data import StoreLoader

    train, val = tiny_split(size=20), tiny_split(n=9, size=20, seed=1, name="val")
    cfg = TrainConfig(epochs=1, batch_size=8, workers=0, out=str(tmp_path), plots=False, progress=False)
    trainer = Trainer(cfg, train, val, train.classes, model=small_net())
    images, _ = next(iter(StoreLoader(train, batch_size=8, workers=0)))
    assert trainer._meta()["crop_size"] == images.shape[-1] == 18  # 20 * 224 / 256 = 17.5


def test_a_stop_on_a_gpu_checkpoints_the_step_sums_not_read_yet(tmp_path, monkeypatch):
    """One process on a GPU reads its step sums only at print steps: a stop between two reads
    reads the pending ones first, so the mid-epoch checkpoint resumes to the uninterrupted run's
    metrics. (The "device" arrays are NumPy's, as in test_train's reads test.)"""
    from minitorch_alex.train import trainer as trainer_mod
    from minitorch_alex.train.trainer import Interrupted, Trainer

    monkeypatch.setattr(Trainer, "read_every_step", property(lambda self: False))
    monkeypatch.setattr(trainer_mod, "step_sums",
                        lambda logits, loss, labels: device_step_sums(np, logits.data, loss.data, labels))
    straight = make_trainer(tmp_path / "straight", epochs=2, print_freq=10)
    straight.fit(echo=lambda *_: None)
    cut = make_trainer(tmp_path / "cut", epochs=2, print_freq=10)
    step = Trainer._optimizer_step

    def asked_after_step_2(self):
        step(self)
        if self.step == 1:  # during the 2nd step of epoch 1 (3 steps of 8 images): read at none of them yet
            self.request_stop(signal.SIGTERM)

    monkeypatch.setattr(Trainer, "_optimizer_step", asked_after_step_2)
    with pytest.raises(Interrupted) as info:
        cut.fit(echo=lambda *_: None)
    assert info.value.saved and info.value.signum == signal.SIGTERM
    meta = load_checkpoint(tmp_path / "cut" / "last.npz")
    assert (meta["epoch"], meta["batch"]) == (0, 2) and meta["running"]["seen"] == 16
    monkeypatch.setattr(Trainer, "_optimizer_step", step)
    again = make_trainer(tmp_path / "cut", epochs=2, print_freq=10)
    again.fit(resume_from=tmp_path / "cut" / "last.npz", echo=lambda *_: None)
    for name, value in params(straight).items():
        np.testing.assert_array_equal(params(again)[name], value, err_msg=name)
    for a, b in zip(straight.log.rows, again.log.rows, strict=True):
        for key in ("train_loss", "train_top1_err", "val_loss", "val_top1_err"):
            assert a[key] == pytest.approx(b[key], rel=1e-12), key
