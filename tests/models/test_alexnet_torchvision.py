"""torchvision's AlexNet variant against a torch model with torchvision's state-dict keys."""
import os
import subprocess
import sys

import numpy as np
import pytest
from paths import ROOT

import minitorch_alex as mt
from minitorch_alex.checkpoint import load_checkpoint
from minitorch_alex.nn.functional import adaptive_avg_pool2d

torch = pytest.importorskip("torch")
from torch_alexnet import TorchAlexNet  # noqa: E402 (needs torch)


@pytest.fixture(scope="module")
def torch_model():
    torch.manual_seed(0)
    return TorchAlexNet(num_classes=10).eval()


def test_keys_shapes_and_parameter_count_match_torchvision(torch_model):
    ours = mt.models.get_model("alexnet-torchvision")
    assert ours.num_parameters() == 61_100_840  # torchvision's AlexNet
    small = mt.models.alexnet_torchvision(num_classes=10)
    theirs = torch_model.state_dict()
    assert list(small.state_dict()) == list(theirs)
    assert all(tuple(v.shape) == tuple(theirs[k].shape) for k, v in small.state_dict().items())
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        mt.models.get_model("vgg")
    assert isinstance(mt.models.get_model("alexnet", num_classes=10), mt.models.AlexNet)


@pytest.mark.parametrize("side", [224, 255])  # 255: pool5 is 7x7, the adaptive pool's uneven bins
def test_converted_weights_give_torchs_logits(torch_model, side, tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from convert_torchvision import convert
    finally:
        sys.path.pop(0)
    ours = convert(torch_model.state_dict(), str(tmp_path / "tv.npz"))
    x = np.random.default_rng(side).standard_normal((2, 3, side, side)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    with mt.no_grad():
        got = ours.eval()(mt.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_the_example_converts_a_pth_file_into_a_checkpoint(torch_model, tmp_path):
    pth, out = tmp_path / "alexnet.pth", tmp_path / "alexnet_tv.npz"
    torch.save(torch_model.state_dict(), pth)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "convert_torchvision.py"),
                          "--pth", str(pth), "--out", str(out)], check=False, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stderr
    model = mt.models.alexnet_torchvision(num_classes=10)
    meta = load_checkpoint(str(out), model)
    assert meta["arch"] == "alexnet-torchvision" and len(meta["classes"]) == 10
    for k, v in torch_model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v.numpy(), err_msg=k)


@pytest.mark.parametrize("shape", [(6, 6), (7, 7), (12, 18), (13, 5), (3, 4)])
def test_adaptive_avg_pool_matches_torch(shape):
    x = np.random.default_rng(1).standard_normal((2, 3) + shape)
    expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), (6, 6)).numpy()
    np.testing.assert_allclose(adaptive_avg_pool2d(mt.tensor(x), (6, 6)).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_the_paper_and_kaiming_initialisations_apply_to_the_variant():
    mt.manual_seed(0)
    paper = mt.models.get_model("alexnet-torchvision", num_classes=10, init="paper")
    sd = paper.state_dict()
    assert np.all(sd["features.3.bias"] == 1) and np.all(sd["features.0.bias"] == 0)
    assert abs(float(sd["classifier.1.weight"].std()) - 0.01) < 1e-3
    kaiming = mt.models.alexnet_torchvision(num_classes=10, init="kaiming").state_dict()
    assert abs(float(kaiming["features.0.weight"].std()) - np.sqrt(2 / 363)) < 2e-3
    assert abs(float(kaiming["classifier.6.weight"].std()) - 0.01) < 1e-3
    with pytest.raises(ValueError, match="init must be 'torchvision', 'paper' or 'kaiming', got 'he'"):
        mt.models.alexnet_torchvision(init="he")
