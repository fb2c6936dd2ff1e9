"""The paper's network: size, shapes, initialisation, an SGD step by hand, and learning."""
import numpy as np
import pytest

import minitorch_alex as mt
import minitorch_alex.nn as nn
import minitorch_alex.nn.functional as F
from minitorch_alex.models.alexnet import initial_values


@pytest.fixture(scope="module")
def model():
    mt.manual_seed(0)
    return mt.models.alexnet()


def test_parameter_count_is_the_papers(model):
    assert model.num_parameters() == 60_965_224
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert shapes["conv1.weight"] == (96, 3, 11, 11)
    assert shapes["conv2.weight"] == (256, 48, 5, 5)  # groups=2: each tower sees its 48 maps
    assert shapes["conv3.weight"] == (384, 256, 3, 3)  # conv3 sees both towers
    assert shapes["conv4.weight"] == (384, 192, 3, 3)
    assert shapes["conv5.weight"] == (256, 192, 3, 3)
    assert shapes["fc6.weight"] == (4096, 9216)


def test_activation_shapes(model):
    model.eval()
    with mt.no_grad():
        shapes = {name: out.shape[1:] for name, out in model.stages(mt.tensor(np.zeros((1, 3, 224, 224), np.float32)))}
    assert shapes == {
        "conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27), "pool2": (256, 13, 13),
        "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13), "pool5": (256, 6, 6),
        "fc6": (4096,), "fc7": (4096,), "fc8": (1000,),
    }


def test_initialisation_statistics(model):
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        w = getattr(model, name).weight.numpy()
        assert w.dtype == np.float32
        assert abs(w.mean()) < 5 * 0.01 / np.sqrt(w.size), name
        assert abs(w.std() - 0.01) < 0.01 * 5 / np.sqrt(w.size) + 1e-4, name
        bias = getattr(model, name).bias.numpy()
        expected = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        np.testing.assert_array_equal(bias, expected, err_msg=name)


def test_kaiming_initialisation_statistics():
    values = initial_values(num_classes=10, init="kaiming")
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        w = values[f"{name}.weight"]
        fan_in = int(np.prod(w.shape[1:]))
        std = 0.01 if name == "fc8" else np.sqrt(2.0 / fan_in)  # fc8 stays small: near-zero first logits
        assert abs(w.std() - std) < std * 5 / np.sqrt(w.size), name
        np.testing.assert_array_equal(values[f"{name}.bias"], 0.0, err_msg=name)  # He et al.: zero biases


def test_rejects_wrong_input_shape(model):
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, 224, 224\), got \(1, 1, 224, 224\)"):
        model(mt.tensor(np.zeros((1, 1, 224, 224), np.float32)))


def test_paper_dropout_scales_at_test_time():
    m = mt.models.alexnet(num_classes=10)
    assert m.drop.inverted is False
    assert mt.models.alexnet(num_classes=10, paper_dropout=False).drop.inverted is True


def test_one_sgd_step_equals_the_hand_computed_update():
    mt.manual_seed(1)
    m = mt.models.alexnet(num_classes=5)
    m.train()
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal((2, 3, 224, 224)).astype(np.float32))
    target = np.array([0, 3])
    opt = mt.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    before = {n: p.numpy().copy() for n, p in m.named_parameters()}
    mt.manual_seed(5)  # the dropout masks
    F.cross_entropy(m(x), target).backward()
    grads = {n: p.grad.numpy().copy() for n, p in m.named_parameters()}
    opt.step()
    for n, p in m.named_parameters():
        v = -5e-4 * 0.01 * before[n] - 0.01 * grads[n]  # first step: the velocity starts at 0
        np.testing.assert_allclose(p.numpy(), before[n] + v, rtol=1e-6, atol=1e-9, err_msg=n)
    assert any(np.abs(g).max() > 0 for g in grads.values())


def test_small_network_overfits_a_handful_of_images():
    """A scaled-down AlexNet-style stack (every layer type) learns 8 images to 100%."""
    mt.manual_seed(0)
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal((8, 3, 32, 32)).astype(np.float32))
    y = np.arange(8) % 4
    net = nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(), nn.LocalResponseNorm(5, groups=2), nn.MaxPool2d(3, 2),
        nn.Conv2d(16, 32, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(32 * 3 * 3, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 4),
    )
    opt = mt.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=0.0)
    for _ in range(100):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    net.eval()
    with mt.no_grad():
        accuracy = (net(x).numpy().argmax(1) == y).mean()
    assert accuracy == 1.0 and loss.item() < 0.1


def test_kaiming_initialisation_takes_its_scale_from_nn_init(monkeypatch):
    """The CLI's --init kaiming draws with mt.nn.init.kaiming_std (one formula for both), which for
    ReLU layers is exactly sqrt(2 / fan_in): the draws of runs made before are unchanged."""
    from minitorch_alex.nn import init

    for name, shape in [("conv2", (256, 48, 5, 5)), ("fc6", (4096, 9216)), ("conv5", (256, 192, 3, 3))]:
        assert init.kaiming_std(shape, nonlinearity="relu") == np.sqrt(2.0 / np.prod(shape[1:])), name
    before = initial_values(num_classes=10, init="kaiming", generator=np.random.default_rng(3))
    monkeypatch.setattr(init, "kaiming_std", lambda shape, **kw: 2 * np.sqrt(2.0 / np.prod(shape[1:])))
    after = initial_values(num_classes=10, init="kaiming", generator=np.random.default_rng(3))
    np.testing.assert_allclose(after["conv1.weight"], 2 * before["conv1.weight"], rtol=1e-6)
    np.testing.assert_array_equal(after["fc8.weight"], before["fc8.weight"])  # fc8 keeps N(0, 0.01^2)
