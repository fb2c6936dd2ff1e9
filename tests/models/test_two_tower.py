"""The paper's two-device AlexNet against the single-device grouped model.

Every test runs in strict device mode (``minitorch_alex.device.strict_devices``): an array of
cpu:1 touched while cpu:0 is current raises, as a CuPy array of one GPU used under another would
launch on the wrong GPU (or fail). So the (cpu:0, cpu:1) runs check, without GPUs, that every
gradient, zero-fill, velocity, mask and cast is made inside its own device's context."""
import numpy as np
import pytest

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex.device import strict_devices
from minitorch_alex.models.alexnet import LAYER_NAMES


def _has_gpu():
    try:
        import cupy

        return cupy.cuda.is_available()
    except Exception:
        return False


if _has_gpu():  # as in tests/gpu/test_gpu.py: an implicit cross-device access is an error here
    pytestmark = pytest.mark.filterwarnings("error::cupy._util.PerformanceWarning")


@pytest.fixture(autouse=True)
def strict():
    with strict_devices():
        yield


PAIRS = [
    ("cpu:0", "cpu:1"),
    pytest.param(("cuda:0", "cuda:0"), marks=pytest.mark.skipif(not _has_gpu(), reason="needs a GPU")),
    pytest.param(("cuda:0", "cpu"), marks=pytest.mark.skipif(not _has_gpu(), reason="needs a GPU")),
]
N = 2


def merged_grads(model):
    """The two-tower model's gradients in the single-device model's layout."""
    out = {}
    for layer in LAYER_NAMES[:-1]:
        for kind in ("weight", "bias"):
            out[f"{layer}.{kind}"] = np.concatenate(
                [getattr(getattr(tw, layer), kind).grad.numpy() for tw in model.towers], axis=0)
    out["fc8.weight"], out["fc8.bias"] = model.fc8.weight.grad.numpy(), model.fc8.bias.grad.numpy()
    return out


def test_strict_mode_is_on_for_the_virtual_devices():
    t = mt.tensor(np.zeros(3), device="cpu:1")
    with pytest.raises(RuntimeError, match="cpu:1 was used while cpu:0 is current"):
        t.data + 1


def make_pair(devices, dropout=0.0):
    mt.manual_seed(3)
    single = mt.models.alexnet(num_classes=10, dtype=np.float64, dropout=dropout)
    mt.manual_seed(3)  # the same seed gives the same weights in both forms
    split = mt.models.alexnet(num_classes=10, devices=devices, dtype=np.float64, dropout=dropout)
    return single, split


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, 3, 224, 224)), np.array([1, 7])


@pytest.mark.parametrize("devices", PAIRS)
def test_same_logits_loss_and_gradients_as_grouped_model(devices, batch):
    x, y = batch
    single, split = make_pair(devices)
    for name, value in single.state_dict().items():
        np.testing.assert_array_equal(split.state_dict()[name], value, err_msg=name)
    loss1 = F.cross_entropy(single(mt.tensor(x)), y)
    logits2 = split(mt.tensor(x))
    assert logits2.device == devices[0]
    loss2 = F.cross_entropy(logits2, y)
    np.testing.assert_allclose(loss2.item(), loss1.item(), rtol=1e-10)
    loss1.backward()
    loss2.backward()
    grads = merged_grads(split)
    for name, p in single.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)

    single.eval(), split.eval()  # the paper's test-time dropout scaling, in both
    with mt.no_grad():
        np.testing.assert_allclose(split(mt.tensor(x)).numpy(), single(mt.tensor(x)).numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("devices", PAIRS)
def test_same_parameters_after_sgd_steps_with_momentum(devices, batch):
    x, y = batch
    single, split = make_pair(devices)
    initial = {k: v.copy() for k, v in single.state_dict().items()}
    sgd_steps_on_both(single, split, x, y)
    after = split.state_dict()
    for name, value in single.state_dict().items():
        np.testing.assert_allclose(after[name], value, rtol=1e-10, atol=1e-14, err_msg=name)
        assert not np.array_equal(value, initial[name]), name  # the steps did move every parameter


def sgd_steps_on_both(single, split, x, y, steps=2):
    """``steps`` SGD steps with momentum on each model (two: the second one uses the velocity)."""
    opts = [mt.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4) for m in (single, split)]
    for _ in range(steps):
        for model, opt in zip((single, split), opts):
            opt.zero_grad()
            F.cross_entropy(model(mt.tensor(x)), y).backward()
            opt.step()


def test_bytes_copied_equal_the_papers_cross_tower_traffic(batch):
    x, y = batch
    _, split = make_pair(("cpu:0", "cpu:1"))
    split.traffic.reset()
    loss = F.cross_entropy(split(mt.tensor(x)), y)
    item = 8  # float64
    expected = N * item * (
        2 * 128 * 13 * 13  # conv3: each tower reads the other's pool2 (128 maps of 13x13)
        + 2 * 128 * 6 * 6  # fc6: each tower reads the other's pool5
        + 2 * 2048  # fc7: each tower reads the other's fc6
        + 1 * 2048  # fc8 (first device) reads the second tower's fc7
    )
    assert split.traffic.forward_bytes == expected and split.traffic.copies == 7
    assert split.traffic.backward_bytes == 0
    loss.backward()
    assert split.traffic.backward_bytes == expected  # every copied activation's gradient goes back


@pytest.mark.skipif(not _has_gpu(), reason="needs a GPU")
def test_bytes_copied_on_a_gpu_and_cpu_pair(batch):
    x, y = batch
    _, split = make_pair(("cuda:0", "cpu"))
    split.traffic.reset()
    loss = F.cross_entropy(split(mt.tensor(x)), y)
    expected = N * 8 * (2 * 128 * 13 * 13 + 2 * 128 * 6 * 6 + 2 * 2048 + 2048)
    assert split.traffic.forward_bytes == expected
    loss.backward()
    assert split.traffic.backward_bytes == expected


def test_same_device_twice_copies_nothing(batch):
    x, y = batch
    _, split = make_pair(("cpu:0", "cpu:0"))
    F.cross_entropy(split(mt.tensor(x)), y).backward()
    assert split.traffic.total_bytes == 0


def test_parameters_live_on_their_towers_devices():
    _, split = make_pair(("cpu:0", "cpu:1"))
    assert {p.device for p in split.tower0.parameters()} == {mt.device("cpu:0")}
    assert {p.device for p in split.tower1.parameters()} == {mt.device("cpu:1")}
    assert split.fc8.weight.device == "cpu:0"
    with pytest.raises(RuntimeError, match="cpu:0 .* cpu:1"):
        split.tower1.conv1(mt.tensor(np.zeros((1, 3, 224, 224))))  # on cpu:0: must be moved with .to()


def test_state_dict_round_trips_between_the_two_forms():
    single, split = make_pair(("cpu:0", "cpu:1"))
    mt.manual_seed(99)
    other = mt.models.alexnet(num_classes=10, dtype=np.float64)
    split.load_state_dict(other.state_dict())  # single -> split
    single.load_state_dict(split.state_dict())  # split -> single
    for name, value in other.state_dict().items():
        np.testing.assert_array_equal(single.state_dict()[name], value, err_msg=name)
    with pytest.raises(KeyError, match="missing keys"):
        split.load_state_dict({k: v for k, v in other.state_dict().items() if k != "conv3.bias"})
    bad = dict(other.state_dict())
    bad["fc7.weight"] = np.zeros((10, 10))
    with pytest.raises(ValueError, match=r"fc7.weight: expected \(4096, 4096\), got \(10, 10\)"):
        split.load_state_dict(bad)
