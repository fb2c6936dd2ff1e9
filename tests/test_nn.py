"""Modules, state dicts, the SGD rule and the learning-rate schedules."""
import numpy as np
import pytest

import minitorch_alex as mt
import minitorch_alex.nn as nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, groups=1), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x).mean(axis=(2, 3)))


def test_parameters_are_registered_in_order():
    m = Tiny()
    assert [n for n, _ in m.named_parameters()] == ["body.0.weight", "body.0.bias", "head.weight", "head.bias"]
    assert m.num_parameters() == 4 * 3 * 9 + 4 + 2 * 4 + 2


def test_train_eval_propagates():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    m.eval()
    assert not m[1].training
    m.train()
    assert all(mod.training for mod in m.modules())


def test_state_dict_round_trip_and_errors():
    a, b = Tiny(), Tiny()
    b.load_state_dict(a.state_dict())
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=n)
    assert b.head.weight.data is not a.head.weight.data  # copied, not shared

    sd = dict(a.state_dict())
    sd.pop("head.bias")
    sd["extra.weight"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['head.bias'\], unexpected keys \['extra.weight'\]"):
        b.load_state_dict(sd)
    bad = dict(a.state_dict())
    bad["head.weight"] = np.zeros((3, 4), dtype=np.float32)
    before = b.body[0].weight.numpy().copy()
    with pytest.raises(ValueError, match=r"head.weight: expected \(2, 4\), got \(3, 4\)"):
        b.load_state_dict(bad)
    np.testing.assert_array_equal(b.body[0].weight.numpy(), before)  # nothing half-loaded


def test_module_to_dtype_and_virtual_device():
    m = Tiny().to(dtype=np.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    m.to("cpu:1")
    assert all(p.device == "cpu:1" for p in m.parameters())
    x = mt.tensor(np.ones((1, 3, 5, 5)), device="cpu:1")
    assert m(x).device == "cpu:1"
    with pytest.raises(RuntimeError, match="cpu:0"):
        m(mt.tensor(np.ones((1, 3, 5, 5))))


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="argument 1 is a function"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_sgd_follows_the_paper_rule_over_two_steps():
    w0, g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.25]), np.array([-1.0, 2.0])
    p = nn.Parameter(w0.copy())
    opt = mt.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    v = np.zeros(2)
    w = w0.copy()
    for g in (g1, g2):
        p.grad = mt.tensor(g)
        opt.step()
        v = 0.9 * v - 0.01 * 0.1 * w - 0.1 * g
        w = w + v
        np.testing.assert_allclose(p.numpy(), w, rtol=1e-15)
    opt.param_groups[0]["lr"] = 0.01  # the velocity keeps the old rate's steps (unlike PyTorch's form)
    p.grad = mt.tensor(g1)
    opt.step()
    v = 0.9 * v - 0.01 * 0.01 * w - 0.01 * g1
    np.testing.assert_allclose(p.numpy(), w + v, rtol=1e-15)


def test_sgd_state_round_trip():
    p = nn.Parameter(np.ones(3))
    opt = mt.optim.SGD([p], lr=0.1)
    p.grad = mt.tensor(np.ones(3))
    opt.step()
    q = nn.Parameter(p.numpy().copy())
    opt2 = mt.optim.SGD([q], lr=0.5)
    opt2.load_state_dict(opt.state_dict())
    p.grad, q.grad = mt.tensor(np.ones(3)), mt.tensor(np.ones(3))
    opt.step()
    opt2.step()
    np.testing.assert_array_equal(p.numpy(), q.numpy())
    with pytest.raises(ValueError, match="velocity 0 has shape"):
        opt2.load_state_dict({**opt.state_dict(), "state": {"velocity": [np.zeros(2)]}})


def test_step_lr():
    opt = mt.optim.SGD([nn.Parameter(np.ones(1))], lr=0.01)
    sched = mt.optim.StepLR(opt, step_size=2)
    lrs = []
    for _ in range(5):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, [0.01, 1e-3, 1e-3, 1e-4, 1e-4])


def test_reduce_on_plateau_divides_by_ten_at_most_three_times():
    opt = mt.optim.SGD([nn.Parameter(np.ones(1))], lr=0.01)
    sched = mt.optim.ReduceLROnPlateau(opt, factor=0.1, patience=1, max_reductions=3)
    errors = [0.9, 0.8, 0.8, 0.81, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    lrs = []
    for e in errors:
        sched.step(e)
        lrs.append(opt.param_groups[0]["lr"])
    # two epochs without improvement (patience 1) trigger a division; never more than 3
    assert lrs[2] == 0.01 and np.isclose(lrs[3], 1e-3)
    assert np.isclose(lrs[-1], 1e-5) and sched.reductions == 3
    state = sched.state_dict()
    other = mt.optim.ReduceLROnPlateau(opt, patience=1, max_reductions=3)
    other.load_state_dict(state)
    assert other.reductions == 3 and other.best == 0.7
