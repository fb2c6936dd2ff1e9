"""mt.onnx.export: the exported file, run in onnxruntime, gives the framework's logits (1e-4)."""
import numpy as np
import pytest

import minitorch_alex as mt

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"images": x})[0]


def logits(model, x):
    with mt.no_grad():
        return model.eval()(mt.tensor(x)).numpy()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)


@pytest.mark.parametrize("kind", ["grouped", "two_tower", "grouped_inverted_dropout_lrn_groups_1"])
def test_exported_paper_alexnet_gives_the_frameworks_logits(kind, images, tmp_path):
    mt.manual_seed(1)
    if kind == "two_tower":
        model = mt.models.alexnet(num_classes=10, devices=("cpu:0", "cpu:1"))
    elif kind == "grouped":
        model = mt.models.alexnet(num_classes=10)
    else:
        model = mt.models.alexnet(num_classes=10, paper_dropout=False, lrn_groups=1)
    # a large alpha makes LRN matter to the logits, so a wrong alpha or grouping would show
    model.lrn.alpha = 0.05
    path = mt.onnx.export(model, tmp_path / "alexnet.onnx")
    onnx.checker.check_model(str(path))
    expected = logits(model, images * 30)
    np.testing.assert_allclose(run_onnx(path, images * 30), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    lrn = [n for n in onnx.load(str(path)).graph.node if n.op_type == "LRN"]
    assert {a.name: a for a in lrn[0].attribute}["alpha"].f == pytest.approx(0.05 * 5)  # alpha on the mean
    assert len(lrn) == (2 if kind.endswith("groups_1") else 4)  # groups=2: one LRN per tower


def test_exported_torchvision_variant_gives_the_frameworks_logits(images, tmp_path):
    mt.manual_seed(2)
    model = mt.models.alexnet_torchvision(num_classes=10)
    path = mt.onnx.export(model, tmp_path / "tv.onnx")
    expected = logits(model, images)
    np.testing.assert_allclose(run_onnx(path, images), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    with pytest.raises(TypeError, match="expected AlexNet, AlexNetTwoTower, AlexNetTorchvision or an nn.Sequential "
                                        "starting with a Conv2d, got Linear"):
        mt.onnx.export(mt.nn.Linear(2, 2), tmp_path / "x.onnx")


def test_the_example_exports_a_checkpoint(images, tmp_path):
    import os
    import subprocess
    import sys

    from paths import ROOT as root

    from minitorch_alex.checkpoint import save_checkpoint
    mt.manual_seed(3)
    model = mt.models.alexnet(num_classes=4)
    save_checkpoint(str(tmp_path / "best.npz"), model, meta={"classes": list("abcd")})
    run = subprocess.run([sys.executable, os.path.join(root, "examples", "export_onnx.py"), "--checkpoint",
                          str(tmp_path / "best.npz"), "--out", str(tmp_path / "best.onnx")],
                         check=False, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root))
    assert run.returncode == 0, run.stderr
    expected = logits(model, images)
    np.testing.assert_allclose(run_onnx(tmp_path / "best.onnx", images), expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())


def test_exported_sequential_gives_the_frameworks_logits(tmp_path):
    """An nn.Sequential goes layer by layer through mt.onnx.LAYERS (grouped LRN, the paper's
    dropout, a strided conv without bias and padded pooling included)."""
    mt.manual_seed(4)
    nn = mt.nn
    model = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False), nn.ReLU(),
                          nn.LocalResponseNorm(3, alpha=0.05, groups=2), nn.MaxPool2d(3, 2, padding=1), nn.Flatten(),
                          nn.Dropout(0.3, inverted=False), nn.Linear(4 * 3 * 3, 5))
    x = np.random.default_rng(1).standard_normal((2, 2, 10, 10)).astype(np.float32) * 10
    path = mt.onnx.export(model, tmp_path / "seq.onnx", input_size=10)
    expected = logits(model, x)
    np.testing.assert_allclose(run_onnx(path, x), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    with pytest.raises(TypeError, match="layer 1 is a Sequential, which has no ONNX mapping"):
        mt.onnx.export(nn.Sequential(nn.Conv2d(2, 4, 3), nn.Sequential()), tmp_path / "bad.onnx", input_size=10)


def test_exported_dilation_and_ceil_mode_give_the_frameworks_logits(tmp_path):
    """Dilated convolution and pooling, and a ceil_mode pool (5 columns out where floor gives 4): the
    exporter writes ONNX's dilations and ceil_mode, or onnxruntime's map would not fit the Linear."""
    mt.manual_seed(5)
    nn = mt.nn
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=2, dilation=2), nn.ReLU(),
                          nn.MaxPool2d(2, 2, dilation=(1, 2), ceil_mode=True), nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    x = np.random.default_rng(2).standard_normal((2, 2, 10, 10)).astype(np.float32)
    path = mt.onnx.export(model, tmp_path / "dilated.onnx", input_size=10)
    expected = logits(model, x)
    np.testing.assert_allclose(run_onnx(path, x), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
