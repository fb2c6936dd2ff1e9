"""One layer table, one state-dict check, and state moving between the grouped and two-tower AlexNet."""
import numpy as np
import pytest

import minitorch_alex as mt
from minitorch_alex import amp
from minitorch_alex.models import convert_parameter_list, convert_state_dict, parameter_names
from minitorch_alex.models.alexnet import LAYERS, param_shapes


def test_param_shapes_and_both_models_derive_from_the_layer_table():
    shapes = param_shapes()
    assert sum(int(np.prod(s)) for _, s in shapes) == 60_965_224
    assert [n for n, _ in shapes] == parameter_names("grouped")
    mt.manual_seed(0)
    split = mt.models.alexnet(num_classes=10, devices=("cpu:0", "cpu:1"))
    assert [n for n, _ in split.named_parameters()] == parameter_names("two_tower", 10)
    for layer in LAYERS[:-1]:
        conv = getattr(split.tower0, layer.name)
        assert conv.weight.shape == layer.tower_half().weight_shape()
        assert conv.weight.shape[0] * 2 == layer.weight_shape()[0]


@pytest.fixture(scope="module")
def pair():
    mt.manual_seed(5)
    single = mt.models.alexnet(num_classes=10, dtype=np.float64).eval()
    mt.manual_seed(6)  # different weights: the conversion must carry them over
    split = mt.models.alexnet(num_classes=10, devices=("cpu:0", "cpu:1"), dtype=np.float64).eval()
    return single, split


def test_a_two_tower_state_dict_evaluates_on_one_device_and_back(pair):
    single, split = pair
    own = {n: p.data for n, p in split.named_parameters()}  # the per-tower form, 30 arrays
    grouped = convert_state_dict(own, to="grouped")
    assert list(grouped) == parameter_names("grouped")
    single.load_state_dict(grouped)
    x = mt.tensor(np.random.default_rng(0).standard_normal((1, 3, 224, 224)))
    with mt.no_grad():
        np.testing.assert_allclose(single(x).numpy(), split(x).numpy(), rtol=1e-10, atol=1e-10)
    back = convert_state_dict(single.state_dict(), to="two_tower")
    assert list(back) == parameter_names("two_tower")
    for name, value in own.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    split.load_state_dict(back)  # the per-tower form loads too
    assert convert_state_dict(grouped, to="grouped") == grouped  # already in that form: unchanged


def test_parameter_lists_such_as_velocities_convert_in_order(pair):
    _, split = pair
    velocities = [np.full(p.shape, i, np.float32) for i, p in enumerate(split.parameters())]
    grouped = convert_parameter_list(velocities, to="grouped")
    assert [v.shape for v in grouped] == [s for _, s in param_shapes(10)]
    assert grouped[0][0, 0, 0, 0] == 0 and grouped[0][-1, 0, 0, 0] == 14  # tower0 then tower1 conv1
    again = convert_parameter_list(grouped, to="two_tower")
    for a, b in zip(again, velocities):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="expected 30 arrays of the two_tower model, got 16"):
        convert_parameter_list(grouped, to="grouped")
    with pytest.raises(ValueError, match="to must be one of"):
        convert_state_dict({}, to="tower")


def _tiny():
    return mt.nn.Sequential(mt.nn.Linear(4, 3), mt.nn.Linear(3, 2))


@pytest.mark.parametrize("loader", ["module", "two_tower", "amp"])
def test_every_loader_reports_bad_state_dicts_in_one_wording(loader, pair):
    if loader == "module":
        target, good = _tiny(), dict(_tiny().state_dict())
    elif loader == "two_tower":
        target, good = pair[1], dict(pair[1].state_dict())
    else:
        target = amp.MixedPrecision(_tiny(), "float16")
        good = dict(target.state_dict())
    name = next(iter(good))
    owner = {"module": "Sequential", "two_tower": "AlexNetTwoTower", "amp": "MixedPrecision"}[loader]
    bad = dict(good, **{name: good[name][:1]})
    with pytest.raises(ValueError, match=rf"load_state_dict for {owner}: shape mismatch for {name}: expected"):
        target.load_state_dict(bad)
    missing = {k: v for k, v in good.items() if k != name}
    with pytest.raises(KeyError, match=rf"load_state_dict for {owner}: missing keys \['{name}'\], unexpected keys \[\]"):
        target.load_state_dict(missing)
