"""Issue 18's defects of the training command and the data pipeline, one test each: ILSVRC devkit
detection and synset order, empty splits, two-tower checkpoints evaluated on one device, capped
validation spread over the classes, ten-crop batches, --overwrite, the packing message,
--evaluate/--resume misuse, plain progress lines, --help."""
import os
import shutil
import types

import numpy as np
import pytest
from hostile_helpers import SIZE, assert_one_line_error, make_tree, run_cli, small_net

from minitorch_alex.data import StoreSplit
from minitorch_alex.train import TrainConfig, Trainer
from minitorch_alex.train import trainer as trainer_module
from minitorch_alex.train.data_source import resolve_data
from minitorch_alex.train.options import build_parser
from minitorch_alex.train.trainer import spread_over_classes


def ilsvrc_tree(root, meta_order=None):
    """train/<synset>/..., a flat val/ and the devkit (ground truth, optional meta.mat) under root."""
    src = make_tree(str(root) + "-gen")
    os.makedirs(root)
    shutil.copytree(os.path.join(src, "train"), os.path.join(root, "train"))
    classes = sorted(os.listdir(os.path.join(src, "val")))
    os.makedirs(os.path.join(root, "val"))
    truth, k = [], 0
    order = meta_order or classes
    for c in classes:
        for name in sorted(os.listdir(os.path.join(src, "val", c))):
            k += 1
            shutil.copy(os.path.join(src, "val", c, name), os.path.join(root, "val", f"ILSVRC2012_val_{k:08d}.JPEG"))
            truth.append(order.index(c) + 1)
    devkit = os.path.join(root, "ILSVRC2012_devkit_t12", "data")
    os.makedirs(devkit)
    with open(os.path.join(devkit, "ILSVRC2012_validation_ground_truth.txt"), "w") as f:
        f.write("".join(f"{t}\n" for t in truth))
    if meta_order is not None:
        from scipy.io import savemat

        synsets = np.zeros(len(order), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"),
                                               ("num_children", "O")])
        for i, wnid in enumerate(order):
            synsets[i] = (i + 1, wnid, f"name of {wnid}", 0)
        savemat(os.path.join(devkit, "meta.mat"), {"synsets": synsets})
    return str(root), classes


def _args(*argv):
    return build_parser().parse_args(list(argv))


def test_the_devkit_ground_truth_and_its_meta_mat_order_are_found(tmp_path):
    pytest.importorskip("scipy")
    classes = sorted(os.listdir(os.path.join(make_tree(tmp_path / "probe"), "train")))
    order = classes[::-1]  # the devkit's id order is not the sorted order
    root, classes = ilsvrc_tree(tmp_path / "ilsvrc", meta_order=order)
    lines = []
    store = resolve_data(_args("--data", root, "--data-dir", str(tmp_path / "d"), "--no-progress"), lines.append)
    assert "(ilsvrc)" in lines[0]
    assert len(store.val) == 6
    np.testing.assert_array_equal(store.val.labels, [0, 0, 1, 1, 2, 2])  # val files were written class by class
    from minitorch_alex.data.readers import find_class_names

    assert find_class_names(root, classes) == [f"name of {c}" for c in classes]


def test_without_meta_mat_the_warning_names_the_cli_flag(tmp_path):
    root, _ = ilsvrc_tree(tmp_path / "ilsvrc")
    with pytest.warns(UserWarning, match="pass --synset-order"):
        resolve_data(_args("--data", root, "--data-dir", str(tmp_path / "d"), "--no-progress"), lambda *_: None)


def test_a_split_with_zero_images_is_an_error_not_a_0_percent_run(tmp_path, capsys):
    root, _ = ilsvrc_tree(tmp_path / "ilsvrc")
    shutil.rmtree(os.path.join(root, "ILSVRC2012_devkit_t12"))  # no ground truth: val reads as 0 images
    status, _, err, _ = run_cli(["--data", root, "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "r"),
                                 "--batch-size", "2"], capsys)
    assert status == 1
    assert_one_line_error(err, "no val images found (expected >= 1 vs 0", "ground truth")


def test_a_two_tower_checkpoint_is_evaluable_on_one_device(tmp_path):
    from minitorch_alex.models import alexnet
    from minitorch_alex.optim import SGD
    from minitorch_alex.train import save_checkpoint

    towers = alexnet(num_classes=3, devices=("cpu:0", "cpu:1"))
    save_checkpoint(tmp_path / "two.npz", towers, SGD(towers.parameters(), lr=0.01, momentum=0.9),
                    {"classes": ["a", "b", "c"], "input_scale": 1.0})
    split = StoreSplit(np.zeros((3, 256, 256, 3), np.uint8), np.arange(3), np.zeros((256, 256, 3), np.float32),
                       np.ones(3, np.float32), np.eye(3, dtype=np.float32), ["a", "b", "c"])
    cfg = TrainConfig(workers=0, out=str(tmp_path / "run"), plots=False, progress=False)
    one = Trainer(cfg, split, split, ["a", "b", "c"], model=alexnet(num_classes=3))
    one.load_weights(tmp_path / "two.npz")  # no optimizer state needed: 30 velocities vs 16 does not matter
    for k, v in towers.state_dict().items():
        np.testing.assert_array_equal(one.model.state_dict()[k], v, err_msg=k)


def sorted_val(n_per_class=3, classes=3):
    rng = np.random.default_rng(0)
    n = n_per_class * classes
    images = rng.integers(0, 255, (n, SIZE, SIZE, 3)).astype(np.uint8)
    labels = np.repeat(np.arange(classes), n_per_class)
    return StoreSplit(images, labels, images.mean(axis=0).astype(np.float32), np.array([0.2, 0.05, 0.01], np.float32),
                      np.eye(3, dtype=np.float32), [f"c{k}" for k in range(classes)], "val")


def test_spread_over_classes_takes_the_classes_in_turn():
    labels = np.repeat(np.arange(4), 5)  # class-sorted, as the built-in set's validation
    np.testing.assert_array_equal(labels[spread_over_classes(labels, 8)], [0, 0, 1, 1, 2, 2, 3, 3])
    assert len(set(labels[spread_over_classes(labels, 4)])) == 4


def _trainer(tmp_path, classes=3, epochs=1, **kw):
    val = sorted_val(classes=classes)
    cfg = TrainConfig(epochs=epochs, batch_size=2, workers=0, out=str(tmp_path / "run"), plots=False, progress=False, **kw)
    return Trainer(cfg, val, val, val.classes, model=small_net(classes))


def test_max_val_batches_evaluates_every_class_and_the_same_images_with_ten_crop(tmp_path):
    trainer = _trainer(tmp_path, max_val_batches=2)
    seen = []
    evaluate_labels = trainer._capped(trainer.val_split).labels
    seen.extend(evaluate_labels.tolist())
    assert sorted(set(seen)) == [0, 1, 2] and len(seen) == 4
    centre, ten = trainer.evaluate(), trainer.evaluate(ten_crop=True)
    assert centre["images"] == ten["images"] == 4
    assert ten["batch_images"] == 1 and centre["batch_images"] == 2  # stated, not silent


def test_the_figure_shows_images_of_different_classes(tmp_path, monkeypatch):
    from minitorch_alex.train import plots

    trainer = _trainer(tmp_path, classes=4)  # 12 class-sorted images: the first 8 miss class 3
    got = {}
    monkeypatch.setattr(plots, "write_all", lambda out, rows, model, sample, classes: got.setdefault("s", sample))
    trainer.write_plots()
    assert sorted(got["s"][1].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_plain_progress_lines_every_print_freq_steps_without_a_terminal(tmp_path):
    trainer = _trainer(tmp_path, print_freq=2)
    trainer.cfg.progress = True  # bars asked for, but stdout is not a terminal under pytest
    lines = []
    trainer.fit(echo=lines.append)
    plain = [line for line in lines if line.startswith("epoch 1/1 step ")]
    assert [line.split(" | ")[0] for line in plain] == ["epoch 1/1 step 2/5", "epoch 1/1 step 4/5"]
    parts = plain[0].split(" | ")
    assert parts[1].endswith(" s)") and "s/step (data " in parts[1]
    assert parts[2].startswith("loss ") and parts[3].startswith("top-1 err ")  # 3 classes: no top-5
    assert parts[4].endswith(" img/s") and parts[5].startswith("ETA ")


def _paced(monkeypatch, trainer, step_s, validate_s, clock):
    """``trainer`` on a fake clock: each training step takes ``step_s`` seconds, each validation
    pass ``validate_s``."""
    def optimizer_step(_orig=trainer._optimizer_step):
        clock[0] += step_s
        _orig()

    def evaluate(_orig=trainer.evaluate, **kw):
        clock[0] += validate_s
        return _orig(**kw)

    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    trainer._optimizer_step, trainer.evaluate = optimizer_step, evaluate


def _resumed_mid_epoch(tmp_path, monkeypatch, clock):
    """A 3-epoch run of 5 steps per epoch, stopped after step 3 at 1000 s a step, resumed in a new
    Trainer that takes 60 s a step and 300 s a validation pass."""
    first = _trainer(tmp_path, epochs=3, print_freq=1)
    _paced(monkeypatch, first, 1000, 300, clock)
    stop_at_3 = first._optimizer_step

    def optimizer_step():
        stop_at_3()
        if first.step == 2:  # the step about to be counted is the third
            first.request_stop(2)

    first._optimizer_step = optimizer_step
    with pytest.raises(KeyboardInterrupt):
        first.fit(echo=lambda *_: None)
    again = _trainer(tmp_path, epochs=3, print_freq=1)
    _paced(monkeypatch, again, 60, 300, clock)
    return again


def test_the_eta_is_the_whole_runs_at_this_processs_pace_after_a_resume(tmp_path, monkeypatch):
    clock = [0.0]
    trainer = _resumed_mid_epoch(tmp_path, monkeypatch, clock)
    lines = []
    trainer.fit(resume_from=str(tmp_path / "run" / "last.npz"), echo=lines.append)
    eta = {line.split(" | ")[0]: line.split(" | ")[-1] for line in lines if " step " in line}
    # this process: 60 s a step, 300 s for each validation; the first run's 3 slow steps count neither
    # as done nor as left: at epoch 1 step 4, 1 step in 60 s, 11 of 15 left
    assert eta["epoch 1/3 step 4/5"] == "ETA 11m00s"
    assert eta["epoch 1/3 step 5/5"] == "ETA 10m00s"  # 2 steps in 120 s, 10 left
    assert eta["epoch 2/3 step 1/5"] == "ETA 24m00s"  # 3 steps in 480 s (a validation), 9 left
    assert eta["epoch 3/3 step 2/5"] == "ETA 6m20s"  # 9 steps in 1140 s, 3 left: 380 s
    assert eta["epoch 3/3 step 5/5"] == "ETA 0m00s"


def test_the_terminal_bar_shows_the_whole_runs_eta(tmp_path, monkeypatch):
    clock, postfixes = [0.0], []

    class Bar:
        def __init__(self, iterable, **kw):
            self.iterable = iterable

        def __iter__(self):
            return iter(self.iterable)

        def set_postfix(self, **kw):
            postfixes.append(kw)

    trainer = _resumed_mid_epoch(tmp_path, monkeypatch, clock)
    monkeypatch.setattr(trainer_module, "use_bars", lambda cfg: True)
    monkeypatch.setattr(trainer_module, "progress_bar", lambda iterable, enabled, **kw: Bar(iterable, **kw) if enabled
                        else iterable)
    trainer.fit(resume_from=str(tmp_path / "run" / "last.npz"), echo=lambda *_: None)
    # per training step (print_freq 1): the same ETAs as the plain lines
    assert [p["run_ETA"] for p in postfixes][:3] == ["11m00s", "10m00s", "24m00s"]
    assert postfixes[-1]["run_ETA"] == "0m00s" and len(postfixes) == 12


def test_overwrite_repacks_a_store_made_from_another_source(tmp_path, capsys):
    src = make_tree(tmp_path / "src")
    args = ["--data", src, "--data-dir", str(tmp_path / "d"), "--no-progress"]
    lines = []
    resolve_data(_args(*args), lines.append)
    assert "packing" in lines[-1]
    resolve_data(_args(*args), lines.append)
    assert "packed earlier" in lines[-1] and "packing" not in lines[-1]
    cls = sorted(os.listdir(os.path.join(src, "train")))[0]
    shutil.copy(os.path.join(src, "val", cls, os.listdir(os.path.join(src, "val", cls))[0]),
                os.path.join(src, "train", cls, "extra.jpg"))
    status, _, err, _ = run_cli(args + ["--out", str(tmp_path / "r"), "--batch-size", "2"], capsys)
    assert status == 1
    assert_one_line_error(err, "holds a store made from another source", "pass --overwrite")
    store = resolve_data(_args(*args, "--overwrite"), lines.append)
    assert len(store.train) == 13


def test_help_is_short_and_says_ilsvrc_is_detected(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert "Command line of" not in text and "(--layout ilsvrc)" not in text
    assert "detected" in text
    for flag in ("--overwrite", "--synset-order", "--debug", "--print-freq"):
        assert flag in text
