"""BatchNorm's numerics, until the op-spec table lands (then one spec entry replaces this file):
float64 central-difference gradient checks, PyTorch on hypothesis inputs (forward, backward and
the running statistics after a step), every backend against the reference (numba here; CUDA
through the nvcc host emulation)."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from needs import needs_numba
from strategies import KERNEL_TOL, TORCH_TOL, assert_close

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex.ops.batchnorm import BatchNorm

RTOL = 1e-6  # the project's bar for single ops
BACKENDS = ["reference", pytest.param("numba", marks=needs_numba)]


@st.composite
def cases(draw, max_side=4):
    """(x (N, C, *) float64, weight, bias, running mean, running var, training, momentum)."""
    rank = draw(st.sampled_from([2, 3, 4]))
    training = draw(st.booleans())
    shape = (draw(st.integers(2 if rank == 2 else 1, 4)), draw(st.integers(1, 5))) + tuple(
        draw(st.integers(1, max_side)) for _ in range(rank - 2))
    if training and np.prod(shape) // shape[1] < 2:
        shape = (shape[0] + 1,) + shape[1:]  # a channel of one value has no variance
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    c = shape[1]
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3, c).reshape((1, c) + (1,) * (rank - 2)) \
        + rng.uniform(-2, 2, c).reshape((1, c) + (1,) * (rank - 2))
    return dict(x=x, weight=rng.standard_normal(c), bias=rng.standard_normal(c),
                running_mean=rng.standard_normal(c), running_var=rng.uniform(0.5, 2, c), training=training,
                momentum=draw(st.sampled_from([0.1, 0.0, 0.5, 1.0])))


def run(case, dtype, backend, gy):
    """(y, gx, gweight, gbias, running_mean, running_var) of F.batch_norm on ``backend``, as float64."""
    t = {k: mt.tensor(np.asarray(case[k], dtype), requires_grad=k in ("x", "weight", "bias"))
         for k in ("x", "weight", "bias", "running_mean", "running_var")}
    with mt.config.using(backend=backend):
        y = F.batch_norm(t["x"], t["running_mean"], t["running_var"], t["weight"], t["bias"], case["training"],
                         case["momentum"])
        assert y._node.backend == backend
        y.backward(mt.tensor(gy.astype(dtype)))
    return [a.astype(np.float64) for a in (y.numpy(), t["x"].grad.numpy(), t["weight"].grad.numpy(),
                                           t["bias"].grad.numpy(), t["running_mean"].numpy(),
                                           t["running_var"].numpy())]


def run_torch(case, dtype, gy):
    t = {k: torch.tensor(np.asarray(case[k], dtype), requires_grad=k in ("x", "weight", "bias"))
         for k in ("x", "weight", "bias", "running_mean", "running_var")}
    y = torch.nn.functional.batch_norm(t["x"], t["running_mean"], t["running_var"], t["weight"], t["bias"],
                                       case["training"], case["momentum"])
    y.backward(torch.from_numpy(gy.astype(dtype)))
    return [a.detach().numpy().astype(np.float64) for a in
            (y, t["x"].grad, t["weight"].grad, t["bias"].grad, t["running_mean"], t["running_var"])]


def scales(case):
    """atol multipliers of (y, gx, gweight, gbias, running mean, running var): a channel's sums
    have m terms."""
    m = case["x"].size // case["x"].shape[1]
    return (1.0, np.sqrt(m), np.sqrt(m), np.sqrt(m), 1.0, 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@given(case=cases())
def test_batch_norm_gradcheck(backend, case):
    stats = [mt.tensor(case[k]) for k in ("running_mean", "running_var")]
    inputs = [mt.tensor(case[k], requires_grad=True) for k in ("x", "weight", "bias")]

    def fn(x, w, b):
        return F.batch_norm(x, *stats, w, b, case["training"], case["momentum"])

    with mt.config.using(backend=backend):
        # step 1e-5, not 1e-6: a channel's outputs all move with each input (its mean and variance),
        # so the loss's rounding over 1e-6 reached 1e-8 of a 3e-7 gradient (numba and the
        # reference agree to 1e-15 there); at 1e-5 rounding is 10x smaller, truncation ~1e-10
        report = mt.gradcheck(fn, inputs, eps=1e-5, rtol=RTOL)
    assert report.ok and report.checked > 0, str(report)


@pytest.mark.parametrize("backend", BACKENDS)
@given(case=cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_batch_norm_matches_torch_with_running_stats_after_a_step(backend, case, dtype):
    gy = np.random.default_rng(1).standard_normal(case["x"].shape)
    for got, want, scale, what in zip(run(case, dtype, backend, gy), run_torch(case, dtype, gy), scales(case),
                                      ("y", "gx", "gweight", "gbias", "running_mean", "running_var")):
        assert_close(got, want, dtype, TORCH_TOL, scale, err_msg=what)


@needs_numba
@given(case=cases(max_side=9), dtype=st.sampled_from([np.float32, np.float64]))
def test_numba_batch_norm_equals_the_reference(case, dtype):
    gy = np.random.default_rng(2).standard_normal(case["x"].shape)
    for got, want, scale, what in zip(run(case, dtype, "numba", gy), run(case, dtype, "reference", gy),
                                      scales(case), ("y", "gx", "gweight", "gbias", "running_mean", "running_var")):
        assert_close(got, want, dtype, KERNEL_TOL, scale, err_msg=what)


def test_layer_matches_torch_over_steps_with_cumulative_momentum_then_in_eval():
    """BatchNorm2d(momentum=None) keeps the cumulative average of the batches' statistics."""
    rng = np.random.default_rng(5)
    ours, theirs = mt.nn.BatchNorm2d(3, momentum=None, dtype=np.float64), torch.nn.BatchNorm2d(3, momentum=None).double()
    for step in range(3):
        x = rng.standard_normal((4, 3, 2, 2)) * (step + 1)
        ours(mt.tensor(x))
        theirs(torch.from_numpy(x))
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-12, err_msg=name)
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(ours.eval()(mt.tensor(x)).numpy(), theirs.eval()(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-12)


def test_bad_inputs_are_one_line_errors():
    x = mt.tensor(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected input of rank 4, got shape \(2, 3\)"):
        mt.nn.BatchNorm2d(3)(mt.tensor(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"expected running_mean a Tensor \(3,\) float32"):
        F.batch_norm(x, mt.tensor(np.zeros(4, np.float32)), mt.tensor(np.ones(3, np.float32)), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        mt.nn.BatchNorm1d(3)(mt.tensor(np.zeros((1, 3), np.float32)))


# ----- CUDA, through the nvcc host emulation (fixtures of tests/cuda_emulation.py) ------------------
from cuda_emulation import NVCC  # noqa: E402
from cuda_emulation import close as emulated_close  # noqa: E402


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on the PATH")
@given(case=cases(max_side=6), dtype=st.sampled_from([np.float64, np.float32, np.float16]))
def test_cuda_batch_norm_equals_the_reference(emulated, case, dtype):
    gy = np.random.default_rng(3).standard_normal(case["x"].shape)
    want = run(case, np.float64, "reference", gy)
    impl = emulated.BatchNorm()
    impl.needs_input_grad = (True, True, True)
    stats = [np.asarray(case[k], np.float32 if dtype == np.float16 else dtype)  # float32 stats, as under amp
             for k in ("running_mean", "running_var")]
    y = impl.forward(case["x"].astype(dtype), case["weight"].astype(dtype), case["bias"].astype(dtype), *stats,
                     training=case["training"], momentum=case["momentum"], eps=1e-5)
    got = [y, *impl.backward(gy.astype(dtype)), *stats]
    assert all(s.dtype == stats[0].dtype for s in got[4:])
    for g, w in zip(got, want):  # statistics of 16-bit inputs are float32 sums of 16-bit-rounded values
        emulated_close(g.astype(dtype, copy=False), w, dtype)


def test_the_reference_class_is_the_dispatched_op():
    assert mt.dispatch.op_of(BatchNorm) == "BatchNorm"
