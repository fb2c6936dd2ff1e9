"""A practitioner's day, end to end: the real command line trains the paper's AlexNet on a tiny
folder of images, and every consumer then reads *that run's* files, as a user types them:
``examples/predict.py``, ``Classifier.from_checkpoint`` (the README's code block), ``--evaluate``,
``--resume``, ``examples/export_onnx.py`` + onnxruntime, ``mt.load`` + ``load_state_dict``.
No checkpoint here is made by hand (hand-made files are for the hostile tests only)."""
import json
import os
import re
import stat
import subprocess
import sys

import numpy as np
import pytest
from paths import ROOT
from PIL import Image

import minitorch_alex as mt
from minitorch_alex.train import load_checkpoint

README = os.path.join(ROOT, "README.md")
CLASSES = 3
# the fastest settings the real CLI has: 2 steps of batch 4, 6 validation images, no plots
QUICK = ["--epochs", "1", "--batch-size", "4", "--max-steps", "2", "--workers", "0", "--no-plots"]


def python(*argv, cwd):
    """Run ``python argv...`` in ``cwd`` as a user would (the checkout's package on the path)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("PYTHONHASHSEED", None)
    return subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def script(name):
    return os.path.join(ROOT, "examples", name)


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """A working folder where ``photos/{train,val}/<class>/*.jpg`` was trained on with the real
    CLI's defaults (``--out runs/alexnet``, ``--data-dir data``): returns the folder."""
    from minitorch_alex.data import make_synthetic_imagefolder

    home = tmp_path_factory.mktemp("home")
    make_synthetic_imagefolder(str(home / "photos"), num_classes=CLASSES, train_per_class=4, val_per_class=2,
                               size=64, seed=0)
    run = python(script("train_imagenet.py"), "--data", "photos", *QUICK, cwd=home)
    assert run.returncode == 0, run.stderr
    assert "final validation top-1 accuracy" in run.stdout
    for name in ("last.npz", "best.npz", "metrics.csv"):
        assert (home / "runs" / "alexnet" / name).is_file(), name
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (300, 200, 3), dtype=np.uint8)).save(home / "cat.jpg")
    return home


@pytest.fixture(scope="module")
def clf(day):
    """``Classifier.from_checkpoint`` of the trainer's best.npz."""
    return mt.models.Classifier.from_checkpoint(day / "runs" / "alexnet" / "best.npz")


@pytest.fixture(scope="module")
def exported(day):
    """``examples/export_onnx.py`` run on the trainer's best.npz: the .onnx file it wrote."""
    pytest.importorskip("onnx")
    run = python(script("export_onnx.py"), "--checkpoint", "runs/alexnet/best.npz", "--out", "exported.onnx", cwd=day)
    assert run.returncode == 0, run.stderr
    return day / "exported.onnx"


def readme_section(title):
    text = open(README).read()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def test_predict_py_as_the_readme_types_it(day, clf):
    section = readme_section("Inference, export and interop")
    typed = re.search(r"`(python examples/predict\.py [^`]*)`", section).group(1)
    assert typed.startswith("python examples/predict.py IMAGE... --checkpoint best.npz")
    run = python(script("predict.py"), "cat.jpg", "--checkpoint", "runs/alexnet/best.npz", cwd=day)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "cat.jpg" and len(lines) == 1 + CLASSES  # every class (fewer than 5)
    top = clf.predict(str(day / "cat.jpg"), topk=CLASSES)
    assert [line.split("%", 1)[1].strip() for line in lines[1:]] == [name for name, _ in top]


def test_the_readme_inference_block_runs_on_the_trainers_checkpoint(day, monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    block = re.search(r"```python\n(.*?)```", readme_section("Inference, export and interop"), re.S).group(1)
    assert 'Classifier.from_checkpoint("runs/alexnet/best.npz")' in block
    monkeypatch.chdir(day)
    # what the block's last lines take from the reader's own session
    namespace = {"torch_tensor": torch.arange(6.0), "two_tower_state": mt.models.convert_state_dict(
        mt.load("runs/alexnet/best.npz", state_dict=True), to="two_tower")}
    exec(compile(block, README, "exec"), namespace)  # noqa: S102 (the README's own code)
    clf = namespace["clf"]
    # the trainer's own preprocessing: its mean image, classes, input scale and crop
    meta = load_checkpoint(day / "runs" / "alexnet" / "best.npz", arrays=("data/mean",))
    assert clf.classes == meta["classes"] and clf.crop == meta["crop_size"] and clf.image_size == meta["image_size"]
    np.testing.assert_array_equal(clf.mean, meta["arrays"]["data/mean"])
    assert clf.input_scale == meta["input_scale"]
    top = clf.predict("cat.jpg", topk=5)
    assert len(top) == CLASSES and abs(sum(p for _, p in top) - 1) < 1e-5
    assert (day / "alexnet.onnx").is_file()


def test_evaluate_as_the_readme_types_it_remembers_the_data(day):
    typed = "python examples/train_imagenet.py --evaluate --resume runs/alexnet/best.npz --ten-crop"
    assert typed in open(README).read()
    run = python(script("train_imagenet.py"), *typed.split()[2:], "--workers", "0", "--no-progress", cwd=day)
    assert run.returncode == 0, run.stderr
    assert "data: the checkpoint's, photos (store " in run.stdout
    assert "packing" not in run.stdout  # the run's own store, not the built-in set
    assert re.search(r"validation \(10-crop, 6 images .*top-1 error", run.stdout), run.stdout


def test_export_onnx_py_and_onnxruntime_give_the_classifiers_logits(day, exported, clf):
    ort = pytest.importorskip("onnxruntime")
    x = clf.preprocess(str(day / "cat.jpg"), ten_crop=True)
    with mt.no_grad():
        expected = clf.model(mt.tensor(x)).numpy()
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"images": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_mt_load_gives_the_state_dict_a_model_loads(day, monkeypatch):
    path = day / "runs" / "alexnet" / "best.npz"
    block = re.search(r"```python\n(.*?)```", readme_section("Training"), re.S).group(1)  # mt.save / mt.load
    assert 'mt.load("runs/alexnet/best.npz", state_dict=True)' in block
    monkeypatch.chdir(day)
    mt.save(mt.tensor(np.arange(3.0)), "tensor.npz")
    model = mt.models.alexnet(num_classes=CLASSES)
    fresh = {k: v.copy() for k, v in model.state_dict().items()}
    exec(compile(block, README, "exec"), {"mt": mt, "model": model})  # noqa: S102 (ends loading best.npz)
    state = mt.load(path, state_dict=True)
    assert list(state) == list(model.state_dict())
    model.load_state_dict(state)
    with np.load(path) as raw:  # the trainer's weights, as NumPy reads the file
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(value, raw[f"model/{name}"], err_msg=name)
            assert name.endswith("bias") or not np.array_equal(value, fresh[name]), name


def test_resume_continues_the_trainers_run(day):
    (day / "runs" / "again").mkdir()  # the fixture's run stays as it is: its last.npz is replaced, not written
    os.link(day / "runs" / "alexnet" / "last.npz", day / "runs" / "again" / "last.npz")
    run = python(script("train_imagenet.py"), "--resume", "--out", "runs/again", "--epochs", "2", *QUICK[2:], cwd=day)
    assert run.returncode == 0, run.stderr
    assert "resumed from runs/again/last.npz: 1 epochs, 2 steps done" in run.stdout
    meta = load_checkpoint(day / "runs" / "again" / "last.npz")
    assert meta["epoch"] == 2 and meta["step"] == 4


def test_predict_py_reports_each_bad_input_in_one_line_and_classifies_the_others(day):
    os.mkfifo(day / "pipe.jpg")  # never opened: it would block forever
    (day / "notes.jpg").write_text("not an image")
    run = python(script("predict.py"), "missing.jpg", "cat.jpg", "notes.jpg", "photos", "pipe.jpg",
                 "--checkpoint", "runs/alexnet/best.npz", "--topk", "2", cwd=day)
    assert run.returncode == 1
    assert run.stdout.splitlines()[0] == "cat.jpg" and len(run.stdout.splitlines()) == 3
    errors = run.stderr.splitlines()
    assert len(errors) == 4 and "Traceback" not in run.stderr, run.stderr
    assert errors[0] == "error: missing.jpg: no such file (expected an image file vs nothing there)"
    assert errors[1].startswith("error: notes.jpg: not a readable image (expected JPEG, PNG, ... vs ")
    assert errors[2] == "error: photos: a folder (expected an image file vs a folder)"
    assert errors[3] == "error: pipe.jpg: not a regular file (expected an image file vs a FIFO)"


@pytest.mark.parametrize("topk, line", [
    ("0", "--topk: out of range (expected an integer >= 1 vs 0)"),
    ("4", f"error: --topk: out of range (expected 1..{CLASSES}, the checkpoint's classes vs 4)"),
])
def test_predict_py_checks_topk_before_reading_the_weights(day, topk, line):
    run = python(script("predict.py"), "cat.jpg", "--checkpoint", "runs/alexnet/best.npz", "--topk", topk, cwd=day)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines()[-1].endswith(line), run.stderr


def test_the_onnx_file_carries_what_its_consumer_needs(day, exported):
    ort = pytest.importorskip("onnxruntime")
    props = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    meta = load_checkpoint(day / "runs" / "alexnet" / "best.npz", arrays=("data/mean",))
    assert json.loads(props["classes"]) == meta["classes"] and json.loads(props["class_names"]) == meta["class_names"]
    np.testing.assert_allclose(json.loads(props["mean"]), meta["arrays"]["data/mean"].astype(np.float64).mean(axis=(0, 1)),
                               atol=1e-4)
    assert float(props["input_scale"]) == meta["input_scale"]
    assert int(props["image_size"]) == meta["image_size"] and int(props["crop_size"]) == meta["crop_size"]
    assert json.loads(props["std"]) == 1.0 and "centre 224x224 crop" in props["preprocessing"]


def test_checkpoints_onnx_and_saved_files_follow_the_umask(day, exported, tmp_path):
    mode = 0o666 & ~_umask()
    mt.save({"w": np.zeros(2, np.float32)}, tmp_path / "w.npz")
    for path in (day / "runs" / "alexnet" / "last.npz", day / "runs" / "alexnet" / "best.npz",
                 exported, tmp_path / "w.npz"):
        assert stat.S_IMODE(os.stat(path).st_mode) == mode, (path, oct(os.stat(path).st_mode))


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
