"""The names a PyTorch user types, against torch: tensor methods and constructors, containers, and
the modules' printed form."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_alex as mt
from minitorch_alex import nn

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), keep=st.booleans(), data=st.data())
def test_dim_and_keepdim_are_axis_and_keepdims(shape, seed, keep, data):
    x = np.random.default_rng(seed).standard_normal(shape)
    d = data.draw(st.integers(-len(shape), len(shape) - 1))
    t, m = torch.tensor(x), mt.tensor(x)
    np.testing.assert_allclose(m.sum(dim=d, keepdim=keep).numpy(), t.sum(dim=d, keepdim=keep).numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.mean(dim=d, keepdim=keep).numpy(), t.mean(dim=d, keepdim=keep).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(m.max(dim=d, keepdim=keep).numpy(), t.amax(dim=d, keepdim=keep).numpy())
    np.testing.assert_array_equal(m.argmax(dim=d).numpy(), t.argmax(dim=d).numpy())
    assert m.numel() == t.numel() and m.dim() == t.dim()


@settings(max_examples=40, deadline=None)
@given(shape=shapes, data=st.data())
def test_unsqueeze_squeeze_transpose_shapes_and_gradients(shape, data):
    x = np.random.default_rng(0).standard_normal(shape)
    d = data.draw(st.integers(-len(shape) - 1, len(shape)))
    a, b = data.draw(st.integers(0, len(shape) - 1)), data.draw(st.integers(0, len(shape) - 1))
    m, t = mt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    outs = [(m.unsqueeze(d), t.unsqueeze(d)), (m.unsqueeze(d).squeeze(), t.unsqueeze(d).squeeze()),
            (m.unsqueeze(d).squeeze(d), t.unsqueeze(d).squeeze(d)), (m.transpose(a, b), t.transpose(a, b)),
            (m.clone(), t.clone())]
    weights = np.random.default_rng(1)
    loss_m, loss_t = 0, 0
    for om, ot in outs:
        assert om.shape == tuple(ot.shape)
        np.testing.assert_array_equal(om.numpy(), ot.detach().numpy())
        w = weights.standard_normal(om.shape)
        loss_m, loss_t = loss_m + (om * mt.tensor(w)).sum(), loss_t + (ot * torch.tensor(w)).sum()
    loss_m.backward()
    loss_t.backward()
    np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_clone_has_its_own_memory():
    x = mt.tensor(np.ones(3))
    y = x.clone()
    y.data[0] = 5
    assert x.numpy()[0] == 1


@settings(max_examples=30, deadline=None)
@given(shape=shapes, count=st.integers(1, 3), data=st.data())
def test_cat_and_stack(shape, count, data):
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal(shape) for _ in range(count)]
    d = data.draw(st.integers(-len(shape) - 1, len(shape)))
    ours = mt.stack([mt.tensor(x, requires_grad=True) for x in xs], d)
    np.testing.assert_array_equal(ours.numpy(), torch.stack([torch.tensor(x) for x in xs], d).numpy())
    c = data.draw(st.integers(0, len(shape) - 1))
    np.testing.assert_array_equal(mt.cat([mt.tensor(x) for x in xs], dim=c).numpy(),
                                  torch.cat([torch.tensor(x) for x in xs], dim=c).numpy())


@pytest.mark.parametrize("args", [(5,), (2, 7), (1, 2, 0.25), (0.5, 3), (3, -4, -1)])
def test_arange_full_and_likes(args):
    ours, theirs = mt.arange(*args), torch.arange(*args)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())
    assert ours.dtype == {torch.int64: np.int64, torch.float32: np.float32}[theirs.dtype]
    like = mt.tensor(np.zeros((2, 3), np.float32))
    assert (mt.zeros_like(like).numpy() == 0).all() and mt.ones_like(like).dtype == np.float32
    assert (mt.full((2, 2), 7.0).numpy() == 7).all() and mt.full(3, 1).shape == (3,)


def test_conflicting_names_are_refused():
    x = mt.tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="both axis=0 and dim=1"):
        x.sum(0, dim=1)
    with pytest.raises(ValueError, match="unsqueeze: dim 3 is out of range for 3 dimensions"):
        x.unsqueeze(3)
    with pytest.raises(ValueError, match="stack: expected tensors of one shape"):
        mt.stack([x, mt.tensor(np.ones(2))])


def test_containers_register_their_modules():
    layers = nn.ModuleList([nn.Linear(2, 3), nn.ReLU()])
    layers.append(nn.Linear(3, 1))
    heads = nn.ModuleDict({"a": nn.Linear(1, 2), "b": nn.Identity(54, unused="x")})

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers, self.heads = layers, heads

    names = [n for n, _ in Net().named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias", "heads.a.weight", "heads.a.bias"]
    assert len(layers) == 3 and isinstance(layers[-1], nn.Linear) and len(layers[:2]) == 2
    assert list(heads) == ["a", "b"] and "b" in heads and heads["b"](5) == 5
    del heads["b"]
    assert list(heads.keys()) == ["a"]
    with pytest.raises(TypeError, match="item 3 is a int, expected a Module"):
        layers.append(3)
    with pytest.raises(KeyError, match="a Python name"):
        heads["not a name"] = nn.ReLU()


@pytest.mark.parametrize("make", [
    lambda m: m.Conv2d(3, 96, 11, stride=4, padding=2),
    lambda m: m.Conv2d(96, 256, 5, padding=2, groups=2),
    lambda m: m.Conv2d(3, 4, 3, bias=False),
    lambda m: m.Conv2d(4, 6, 3, 1, 2, 2, 2),  # PyTorch's positional order: stride, padding, dilation, groups
    lambda m: m.MaxPool2d(3, 2),
    lambda m: m.MaxPool2d(3),
    lambda m: m.MaxPool2d(3, 2, 1, 2, False, True),  # padding, dilation, return_indices, ceil_mode
    lambda m: m.Linear(9216, 4096),
    lambda m: m.Linear(3, 2, bias=False),
    lambda m: m.ReLU(),
    lambda m: m.LeakyReLU(0.2),
    lambda m: m.Sigmoid(),
    lambda m: m.Tanh(),
    lambda m: m.Identity(),
    lambda m: m.Sequential(m.Conv2d(1, 2, 3), m.ReLU(), m.Flatten()),
    lambda m: m.ModuleList([m.Linear(2, 2), m.ReLU()]),
])
def test_modules_print_as_pytorchs(make):
    assert repr(make(nn)) == repr(make(torch.nn)).replace("Flatten(start_dim=1, end_dim=-1)", "Flatten()")


def test_maxpool_keeps_its_default_stride():
    assert nn.MaxPool2d(3).stride == 3
