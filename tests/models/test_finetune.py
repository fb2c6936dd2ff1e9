"""Fine-tuning for one's own classes (issue 29 item 4): ``--pretrained CKPT`` loads every layer whose
shape fits from a torchvision-shaped checkpoint written by examples/convert_torchvision.py (random
weights under torchvision's real key names, made here), the head is new for the data's classes,
``--freeze conv5`` keeps the features as they were (no updates, no weight decay), and the result
predicts, exports and resumes like any other run."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hostile_helpers import assert_one_line_error, run_cli
from paths import ROOT
from PIL import Image

import minitorch_alex as mt
from minitorch_alex.train import load_checkpoint

FEATURES = ("features.0", "features.3", "features.6", "features.8", "features.10")


def _convert():
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from convert_torchvision import convert
    finally:
        del sys.path[0]
    return convert


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """(source state, run folder, CLI output, home): a 3-class run fine-tuned from a 7-class
    torchvision-shaped checkpoint with --freeze conv5."""
    from minitorch_alex.data import make_synthetic_imagefolder

    home = tmp_path_factory.mktemp("tune")
    mt.manual_seed(11)
    source = {k: v.copy() for k, v in mt.models.alexnet_torchvision(num_classes=7).state_dict().items()}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:  # torchvision's file under torchvision's name, converted as the README types it
        torch.save({k: torch.from_numpy(v) for k, v in source.items()}, home / "alexnet-owt-7be5be79.pth")
        typed = next(line for line in open(os.path.join(ROOT, "README.md")).read().splitlines()
                     if line.startswith("python examples/convert_torchvision.py --pth alexnet-owt-7be5be79.pth"))
        run = subprocess.run([sys.executable, os.path.join(ROOT, typed.split()[1]), *typed.split()[2:]], cwd=home,
                             capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
        assert run.returncode == 0, run.stderr
    else:
        _convert()(source, str(home / "tv.npz"))  # the converter's real output, without torch's file format
    src = make_synthetic_imagefolder(str(home / "photos"), num_classes=3, train_per_class=4, val_per_class=2,
                                     size=64, seed=0)
    out = home / "run"
    # the README's fine-tuning command, on this folder and checkpoint, cut short by flags given after it
    typed = next(line for line in open(os.path.join(ROOT, "README.md")).read().splitlines()
                 if line.startswith("python examples/train_imagenet.py --data my_photos --pretrained tv.npz"))
    argv = [src if a == "my_photos" else str(home / "tv.npz") if a == "tv.npz" else a for a in typed.split()[2:]]
    assert argv[argv.index("--freeze") + 1] == "conv5"
    argv += ["--data-dir", str(home / "data"), "--epochs", "1", "--batch-size", "4", "--max-steps", "2",
             "--workers", "0", "--out", str(out), "--no-progress", "--no-plots"]
    from minitorch_alex.train import main

    lines = []
    rows = main(argv, echo=lines.append)
    assert len(rows) == 1
    return source, out, "\n".join(map(str, lines)), home


def test_loaded_layers_equal_the_source_frozen_ones_stay_and_the_head_is_new(tuned):
    source, out, text, _ = tuned
    assert (f"pretrained: 14 of 16 tensors from {out.parent / 'tv.npz'} (alexnet-torchvision); new for the data's 3 "
            "classes: classifier.6 (lr x 10); frozen (no updates, no weight decay): "
            + ", ".join(FEATURES)) in text
    weights = mt.load(out / "last.npz", state_dict=True)
    with np.load(out / "last.npz") as raw:
        velocity = [raw[f"optim/velocity/{i}"] for i in range(16)]
    for i, (name, value) in enumerate(weights.items()):
        layer = name.rsplit(".", 1)[0]
        if layer in FEATURES:  # frozen after 2 steps with weight decay: bit for bit the source's, no velocity
            np.testing.assert_array_equal(value, source[name], err_msg=name)
            assert not velocity[i].any(), name
        elif layer == "classifier.6":  # new for 3 classes
            assert value.shape[0] == 3 and source[name].shape[0] == 7
        else:  # loaded, then trained: near the source, not equal to it
            assert not np.array_equal(value, source[name]) and velocity[i].any(), name
            assert np.abs(value - source[name]).max() < 1e-2 * max(np.abs(source[name]).max(), 1e-3), name
    meta = load_checkpoint(out / "last.npz")
    assert meta["config"]["arch"] == "alexnet-torchvision" and meta["config"]["new_layers"] == ["classifier.6"]
    assert meta["config"]["freeze"] == "conv5" and meta["config"]["head_lr_mult"] == 10
    assert meta["input_scale"] == pytest.approx(1 / (255 * np.mean([0.229, 0.224, 0.225])))


def test_the_tuned_run_predicts_and_exports_like_any_other(tuned):
    _, out, _, home = tuned
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(home / "x.png")
    run = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "predict.py"), str(home / "x.png"),
                          "--checkpoint", str(out / "best.npz")], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 1 + 3
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from export_onnx import main as export
    finally:
        del sys.path[0]
    export(["--checkpoint", str(out / "best.npz"), "--out", str(home / "tuned.onnx")])
    clf = mt.models.Classifier.from_checkpoint(out / "best.npz")
    x = clf.preprocess(str(home / "x.png"))
    with mt.no_grad():
        expected = clf.model(mt.tensor(x)).numpy()
    got = ort.InferenceSession(str(home / "tuned.onnx"), providers=["CPUExecutionProvider"]).run(
        ["logits"], {"images": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_resume_keeps_the_layers_frozen(tuned, capsys):
    source, out, _, _ = tuned
    status, text, err, _ = run_cli(["--resume", "--out", str(out), "--epochs", "2", "--max-steps", "1",
                                    "--workers", "0"], capsys)
    assert status == 0 and "resumed from" in text, err
    weights = mt.load(out / "last.npz", state_dict=True)
    for name in weights:
        if name.rsplit(".", 1)[0] in FEATURES:
            np.testing.assert_array_equal(weights[name], source[name], err_msg=name)


@pytest.mark.parametrize("argv, parts", [
    (["--freeze", "conv5"], ["--freeze: needs --pretrained (expected --pretrained CKPT vs none"]),
    (["--pretrained", "nothing.npz"], ["--pretrained: no checkpoint there (expected an existing .npz file vs "
                                       "'nothing.npz')"]),
    (["--pretrained", "tv.npz", "--resume"], ["--pretrained: starts a new run (expected no --resume or --evaluate "
                                              "vs --resume)"]),
    (["--pretrained", "tv.npz", "--freeze", "conv9"], ["--freeze: no such layer before the head (expected one of "
                                                       "features.0, ", "conv5", "fc7 vs 'conv9')"]),
    (["--pretrained", "tv.npz", "--freeze", "fc8"], ["--freeze: no such layer before the head", "vs 'fc8')"]),
])
def test_bad_fine_tuning_flags_are_one_line_before_any_data_work(argv, parts, tuned, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.link(tuned[3] / "tv.npz", tmp_path / "tv.npz")
    status, _, err, _ = run_cli(argv, capsys)
    assert status == 2
    assert_one_line_error(err, *parts)
    assert not (tmp_path / "data").exists()
