"""mt.nn.init's PyTorch initialisers and mt.nn.utils' gradient clipping, against torch."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_alex as mt
from minitorch_alex.nn import init, utils

weight_shapes = st.one_of(st.tuples(st.integers(1, 9), st.integers(1, 9)),
                          st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 5), st.integers(1, 5)))


@settings(max_examples=60, deadline=None)
@given(shape=weight_shapes)
def test_fans_are_torchs(shape):
    assert init.fan_in_and_fan_out(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("nonlinearity, param", [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                                                 ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)])
def test_gains_are_torchs(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


def _spread(fill, shape, kind):
    """The std (normal) or the largest |value| (uniform) a filler gives on a large weight."""
    if isinstance(fill, str):
        p = mt.nn.Parameter(np.zeros(shape, np.float64))
        getattr(init, fill)(p, *kind[1], generator=np.random.default_rng(0), **kind[2])
        values = p.data
    else:
        t = torch.empty(shape, dtype=torch.float64)
        torch.manual_seed(0)
        fill(t, *kind[1], **kind[2])
        values = t.numpy()
    return values.std() if kind[0] == "normal" else abs(values).max()


@pytest.mark.parametrize("name, kind", [
    ("kaiming_normal_", ("normal", (), {})),
    ("kaiming_normal_", ("normal", (), {"mode": "fan_out", "nonlinearity": "relu"})),
    ("kaiming_uniform_", ("uniform", (), {"a": math.sqrt(5)})),
    ("kaiming_uniform_", ("uniform", (), {"mode": "fan_out", "nonlinearity": "tanh"})),
    ("xavier_normal_", ("normal", (), {"gain": 2.0})),
    ("xavier_uniform_", ("uniform", (), {})),
])
def test_spread_matches_torch(name, kind):
    shape = (400, 300, 3, 3)  # 1.08 million draws: the sample std is within 0.2% of the true one
    ours, theirs = _spread(name, shape, kind), _spread(getattr(torch.nn.init, name), shape, kind)
    assert ours == pytest.approx(theirs, rel=5e-3)


def test_trunc_normal_stays_in_bounds_with_torchs_moments():
    p = mt.nn.Parameter(np.zeros((1000, 1000), np.float64))
    init.trunc_normal_(p, mean=0.5, std=1.0, a=-0.5, b=2.0, generator=np.random.default_rng(1))
    t = torch.nn.init.trunc_normal_(torch.empty(1000, 1000, dtype=torch.float64), 0.5, 1.0, -0.5, 2.0)
    assert p.data.min() >= -0.5 and p.data.max() <= 2.0
    assert p.data.mean() == pytest.approx(t.mean().item(), abs=3e-3)
    assert p.data.std() == pytest.approx(t.std().item(), rel=3e-3)


def test_zeros_ones_and_bad_arguments():
    p = mt.nn.Parameter(np.full((2, 3), 7.0, np.float32))
    assert (init.zeros_(p).data == 0).all() and (init.ones_(p).data == 1).all() and p.data.dtype == np.float32
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan'"):
        init.kaiming_normal_(p, mode="fan")
    with pytest.raises(ValueError, match="2 or more dimensions, got shape \\(3,\\)"):
        init.xavier_uniform_(mt.nn.Parameter(np.zeros(3)))
    with pytest.raises(ValueError, match="expected one of .* got 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="at least 0.1% of N"):
        init.trunc_normal_(p, a=10, b=11)


def _grads(shapes, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) * rng.uniform(0.1, 3) for s in shapes]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), max_norm=st.floats(0.01, 20), norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]))
def test_clip_grad_norm_is_torchs(seed, max_norm, norm_type):
    grads = _grads([(3, 4), (5,), (2, 2, 3)], seed)
    ours = [mt.nn.Parameter(np.zeros_like(g)) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = mt.tensor(g.copy()), torch.tensor(g)
    total = utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-12, atol=0)


def test_clip_grad_value_and_nonfinite():
    g = np.array([-3.0, -0.5, 0.2, 4.0])
    p = mt.nn.Parameter(np.zeros(4))
    p.grad = mt.tensor(g.copy())
    utils.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.data, [-1.0, -0.5, 0.2, 1.0])
    p.grad = mt.tensor(np.array([np.inf, 1.0]))
    with pytest.raises(RuntimeError, match="total norm of order 2 of the gradients is inf"):
        utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert utils.clip_grad_norm_([mt.nn.Parameter(np.zeros(2))], 1.0).item() == 0.0  # no gradients
