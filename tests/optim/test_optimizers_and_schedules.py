"""mt.optim against torch.optim: Adam, AdamW, parameter groups, state dicts through mt.save, and the
learning-rate schedules (closed forms here, PyTorch's recursive forms there: equal to 1e-12)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_alex as mt

# torch warns when a schedule steps before its optimizer: here no optimizer steps at all
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def _pair(seed):
    rng = np.random.default_rng(seed)
    start = [rng.normal(size=s) for s in SHAPES]
    ours = [mt.nn.Parameter(w.copy()) for w in start]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in start]
    return rng, ours, theirs


def _run(ours, theirs, opt, topt, rng, steps):
    for _ in range(steps):
        for p, q in zip(ours, theirs):
            g = rng.normal(size=p.shape)
            p.grad, q.grad = mt.tensor(g.copy()), torch.tensor(g)
        opt.step()
        topt.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), name=st.sampled_from(["Adam", "AdamW"]), lr=st.floats(1e-4, 0.1),
       beta1=st.floats(0, 0.99), beta2=st.floats(0.5, 0.9999), eps=st.floats(1e-10, 1e-3),
       weight_decay=st.floats(0, 0.5), amsgrad=st.booleans())
def test_adam_and_adamw_are_torchs(seed, name, lr, beta1, beta2, eps, weight_decay, amsgrad):
    rng, ours, theirs = _pair(seed)
    kw = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
    _run(ours, theirs, getattr(mt.optim, name)(ours, **kw), getattr(torch.optim, name)(theirs, **kw), rng, 6)


def test_defaults_are_torchs():
    p = [mt.nn.Parameter(np.zeros(2))]
    for name in ("Adam", "AdamW", "SGD"):
        ours, theirs = getattr(mt.optim, name)(p).defaults, getattr(torch.optim, name)([torch.zeros(2)]).defaults
        assert {k: ours[k] for k in ours} == {k: theirs[k] for k in ours}, name


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), momentum=st.floats(0, 0.95), weight_decay=st.floats(0, 0.1))
def test_sgd_groups_follow_the_paper_rule_per_group(seed, momentum, weight_decay):
    """Each group its own lr, momentum and decay; the paper's rule v <- m v - wd lr w - lr g, w <- w + v
    (equal to PyTorch's SGD at a constant lr with dampening 0: w - lr (m u + g + wd w) for u = -v / lr)."""
    rng, ours, theirs = _pair(seed)
    groups = [{"params": ours[:2]}, {"params": ours[2:], "lr": 0.5, "momentum": 0.5 * momentum}]
    tgroups = [{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.5, "momentum": 0.5 * momentum}]
    _run(ours, theirs, mt.optim.SGD(groups, lr=0.1, momentum=momentum, weight_decay=weight_decay),
         torch.optim.SGD(tgroups, lr=0.1, momentum=momentum, weight_decay=weight_decay), rng, 5)


def test_groups_state_dict_round_trips_through_mt_save(tmp_path):
    rng, ours, _ = _pair(0)
    opt = mt.optim.AdamW([{"params": ours[:1]}, {"params": ours[1:], "lr": 0.1, "weight_decay": 0.0}], amsgrad=True)
    for p in ours[:2]:  # the third parameter gets no gradient: no state
        p.grad = mt.tensor(rng.normal(size=p.shape))
    opt.step()
    mt.save({"optim": opt.state_dict()}, tmp_path / "o.npz")
    copies = [mt.nn.Parameter(p.data.copy()) for p in ours]
    other = mt.optim.AdamW([{"params": copies[:1]}, {"params": copies[1:], "lr": 0.1, "weight_decay": 0.0}], amsgrad=True)
    other.load_state_dict(mt.load(tmp_path / "o.npz")["optim"])
    assert [g["lr"] for g in other.param_groups] == [1e-3, 0.1] and other.param_groups[0]["betas"] == (0.9, 0.999)
    assert copies[2] not in other.state and other.state[copies[0]]["step"] == 1
    for p, q in zip(ours, copies):
        p.grad = q.grad = mt.tensor(np.ones(p.shape))
    opt.step()
    other.step()
    for p, q in zip(ours, copies):
        np.testing.assert_array_equal(p.data, q.data)


def test_add_param_group_zero_grad_and_bad_groups():
    a, b = mt.nn.Parameter(np.ones(2)), mt.nn.Parameter(np.ones(3))
    opt = mt.optim.SGD([a], lr=0.1)
    opt.add_param_group({"params": b, "momentum": 0.9})
    assert opt.param_groups[1] == {"params": [b], "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}
    a.grad, b.grad = mt.tensor(np.ones(2)), mt.tensor(np.ones(3))
    opt.zero_grad(set_to_none=False)
    assert (a.grad.data == 0).all() and b.grad is not None
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="more than one group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match=r"unknown hyper-parameters \['momentun'\]"):
        mt.optim.SGD([{"params": [mt.nn.Parameter(np.ones(1))], "momentun": 0.9}], lr=0.1)
    with pytest.raises(ValueError, match="got an empty parameter list"):
        mt.optim.Adam([])
    with pytest.raises(ValueError, match=r"0 <= betas < 1.*betas=\(0.9, 1.5\)"):
        mt.optim.Adam([a], betas=(0.9, 1.5))
    with pytest.raises(ValueError, match=r"expected groups of \[1, 1\] parameters, got \[2\]"):
        opt.load_state_dict({"param_groups": [{"lr": 0.1, "params": [0, 1]}], "state": {}})


def test_a_group_at_lr_zero_is_frozen():
    a, b = mt.nn.Parameter(np.ones(2)), mt.nn.Parameter(np.ones(2))
    opt = mt.optim.SGD([{"params": [a], "lr": 0.0}, {"params": [b]}], lr=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        a.grad = b.grad = mt.tensor(np.ones(2))
        opt.step()
    np.testing.assert_array_equal(a.data, np.ones(2))
    assert not (b.data == 1).any()


def _schedule_pair(make):
    p, q = mt.nn.Parameter(np.zeros(1)), torch.zeros(1, requires_grad=True)
    ours = mt.optim.SGD([{"params": [p]}, {"params": [mt.nn.Parameter(np.zeros(1))], "lr": 0.3}], lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD([{"params": [q]}, {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.3}],
                             lr=0.1, momentum=0.9)
    return ours, theirs, make(mt.optim.lr_scheduler, ours), make(torch.optim.lr_scheduler, theirs)


SCHEDULES = {
    "step": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "linear": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=7),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "sequential": lambda m, o: m.SequentialLR(o, [m.LinearLR(o, 0.25, 1.0, 3), m.CosineAnnealingLR(o, 12)], [4]),
    "chained": lambda m, o: m.ChainedScheduler([m.LinearLR(o, 0.25, 1.0, 3), m.CosineAnnealingLR(o, 15)]),
    "onecycle": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=16),
    "onecycle-linear": lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=16, anneal_strategy="linear", pct_start=0.5),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_give_torchs_rates(name):
    ours, theirs, sched, tsched = _schedule_pair(SCHEDULES[name])
    for t in range(15):
        got = [g["lr"] for g in ours.param_groups]
        want = [g["lr"] for g in theirs.param_groups]
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"step {t}")
        if name.startswith("onecycle"):
            np.testing.assert_allclose(ours.param_groups[0]["momentum"], theirs.param_groups[0]["momentum"], rtol=1e-12)
        sched.step()
        tsched.step()


@pytest.mark.parametrize("name", SCHEDULES)
def test_a_schedule_resumes_from_its_state_dict(name):
    ours, _, sched, _ = _schedule_pair(SCHEDULES[name])
    for _ in range(5):
        sched.step()
    state = sched.state_dict()
    straight = []
    for _ in range(6):
        sched.step()
        straight.append([g["lr"] for g in ours.param_groups])
    again, _, resumed, _ = _schedule_pair(SCHEDULES[name])
    resumed.load_state_dict(state)
    for rates in straight:
        resumed.step()
        assert [g["lr"] for g in again.param_groups] == rates


def test_reduce_on_plateau_scales_every_group_like_torch():
    ours, theirs, _, _ = _schedule_pair(lambda m, o: None)
    sched = mt.optim.ReduceLROnPlateau(ours, factor=0.5, patience=1)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, factor=0.5, patience=1, threshold=1e-4,
                                                        threshold_mode="abs")
    for error in [0.9, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.71, 0.69]:
        sched.step(error)
        tsched.step(error)
        assert [g["lr"] for g in ours.param_groups] == pytest.approx([g["lr"] for g in theirs.param_groups], rel=1e-15)


@pytest.mark.parametrize("make, message", [
    (lambda o: mt.optim.lr_scheduler.StepLR(o, step_size=0), "step_size an integer >= 1, got 0"),
    (lambda o: mt.optim.lr_scheduler.LinearLR(o, start_factor=0), "0 < start_factor <= 1"),
    (lambda o: mt.optim.lr_scheduler.CosineAnnealingLR(o, T_max=2.5), "T_max an integer >= 1, got 2.5"),
    (lambda o: mt.optim.lr_scheduler.SequentialLR(o, [mt.optim.lr_scheduler.StepLR(o, 2)], [3]),
     "one milestone fewer than schedulers"),
    (lambda o: mt.optim.lr_scheduler.OneCycleLR(o, max_lr=[1.0], total_steps=10), "2 max_lr values"),
])
def test_bad_schedule_arguments(make, message):
    ours, _, _, _ = _schedule_pair(lambda m, o: None)
    with pytest.raises(ValueError, match=message):
        make(ours)


def test_onecycle_refuses_steps_past_its_total():
    """One step() after each of the total_steps optimizer steps is allowed (torch's loop), not one more."""
    ours, theirs, sched, tsched = _schedule_pair(lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=3))
    for _ in range(3):
        sched.step()
        tsched.step()
    assert [g["lr"] for g in ours.param_groups] == pytest.approx([g["lr"] for g in theirs.param_groups], rel=1e-12)
    with pytest.raises(ValueError, match="stepped 4 times, past total_steps=3"):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        tsched.step()
