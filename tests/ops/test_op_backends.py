"""Every backend against the reference, through the public API, on hypothesis inputs: for each hot
op of ``op_specs.SPECS`` (those in ``dispatch.TABLE``) and each backend that implements it, the
output and every input gradient equal the reference's to the rounding of their sums
(``spec.kernel_tol``, ``spec.kernel_scales``), and the graph node says that backend ran.
Parametrized over the backends available: 'numba' here, 'cuda' where CuPy and a GPU are present
(skipped otherwise).

The last tests show the comparison can fail: a bug forced into the reference, or into a numba
kernel, makes it fail.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from needs import needs_gpu, needs_numba
from op_specs import BY_NAME, SPECS, Case, backends_of, kernel_scales, run, scale_list, upstream
from strategies import DTYPES, KERNEL_TOL, assert_close, distinct_values, dtypes

import minitorch_alex as mt
from minitorch_alex import dispatch

DEVICE = {"numba": "cpu", "cuda": "cuda:0"}


MARKS = {"numba": needs_numba, "cuda": needs_gpu}


CASES = [pytest.param(spec, backend, dtype, marks=MARKS[backend], id=f"{spec.name}-{backend}-{np.dtype(dtype).name}")
         for spec in SPECS for backend in backends_of(spec) if backend != "reference"
         for dtype in DTYPES if np.dtype(dtype).name in dispatch.OP_DTYPES.get((spec.op, backend), dispatch.DTYPES[backend])]


def compare(spec, case, backend, dtype, seed=0):
    """``spec`` on ``case`` under ``backend`` equals the reference: output, then each input's gradient."""
    gy = upstream(spec, case, dtype, seed)
    y_ref, g_ref, ran_ref = run(spec, case, dtype, gy, "reference", "cpu")
    y, g, ran = run(spec, case, dtype, gy, backend, DEVICE[backend])
    assert ran_ref == "reference" and ran == backend  # otherwise the comparison would prove nothing
    scales = scale_list(kernel_scales(spec, case, dtype), len(case.arrays))
    assert y.dtype == np.dtype(dtype) and all(a.dtype == np.dtype(dtype) for a in g if a is not None)
    assert_close(y, y_ref, dtype, spec.kernel_tol, scales[0], err_msg=f"{backend} forward")
    for i, (a, b) in enumerate(zip(g, g_ref)):
        if b is not None:
            assert_close(a, b, dtype, spec.kernel_tol, scales[i + 1], err_msg=f"{backend} gradient of input {i}")


@pytest.mark.parametrize("spec, backend, dtype", CASES)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_op_equals_reference(spec, backend, dtype, data, seed):
    compare(spec, data.draw(spec.cases), backend, dtype, seed)


@pytest.mark.parametrize("spec, backend, dtype", CASES)
def test_op_examples_equal_reference(spec, backend, dtype):
    for i, case in enumerate(spec.examples):
        compare(spec, case, backend, dtype, seed=i)


# the fused SGD update is a function, not a Function: its own check
@pytest.mark.parametrize("backend", [pytest.param(b, marks=MARKS[b]) for b in MARKS])
@given(shapes=st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), min_size=1, max_size=3),
       momentum=st.sampled_from([0.0, 0.9]), wd=st.sampled_from([0.0, 5e-4]), lr=st.sampled_from([0.01, 0.5]),
       dtype=dtypes, seed=st.integers(0, 2**16))
def test_sgd_update_equals_reference(backend, shapes, momentum, wd, lr, dtype, seed):
    results = {}
    for name in ("reference", backend):
        rng = np.random.default_rng(seed)
        params = [mt.nn.Parameter(rng.standard_normal(s), dtype=dtype, device=DEVICE.get(name, "cpu")) for s in shapes]
        opt = mt.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)
        with mt.config.using(backend=name):
            assert mt.dispatch.function("sgd_momentum_update_", params[0].data, params[0].data, params[0].data)[0] == name
            for _ in range(3):
                for q in params:
                    q.grad = mt.tensor(rng.standard_normal(q.shape), dtype=dtype, device=q.device)
                opt.step()
        results[name] = [q.numpy().copy() for q in params]
    for a, b in zip(results[backend], results["reference"]):
        assert_close(a, b, dtype, KERNEL_TOL)


# ----- the comparison catches a wrong implementation on either side ---------------------------------
def _pool_case(backend="numba"):
    case = Case([distinct_values(np.random.default_rng(3), (2, 3, 7, 7))], dict(kernel_size=3, stride=2, padding=0))
    compare(BY_NAME["max_pool2d"], case, backend, np.float64)


def _lrn_case(backend="numba"):
    x = np.random.default_rng(4).standard_normal((2, 6, 3, 3)) * 3
    compare(BY_NAME["local_response_norm"], Case([x], dict(size=5, alpha=0.3, beta=0.75, k=2.0, groups=2)), backend,
            np.float64)


@needs_numba
def test_the_comparisons_pass_as_the_code_stands():
    _pool_case()
    _lrn_case()


@needs_numba
def test_a_bug_in_the_reference_fails_the_comparison(monkeypatch):
    from minitorch_alex.ops import lrn, pool

    original_window_sum = lrn.window_sum

    def window_one_channel_short(a, before, after):  # the LRN window loses the channels after c
        return original_window_sum(a, before, 0)

    monkeypatch.setattr(lrn, "window_sum", window_one_channel_short)
    with pytest.raises(AssertionError, match="forward"):
        _lrn_case()
    monkeypatch.undo()

    def backward_to_the_wrong_place(self, gy):  # max-pool's gradient to the next entry of the window
        self.argmax = (self.argmax + 1) % (self.kernel_size[0] * self.kernel_size[1])
        return original_backward(self, gy)

    original_backward = pool.MaxPool2d.backward
    monkeypatch.setattr(pool.MaxPool2d, "backward", backward_to_the_wrong_place)
    with pytest.raises(AssertionError, match="gradient of input 0"):
        _pool_case()


@needs_numba
def test_a_bug_in_a_numba_kernel_fails_the_comparison(monkeypatch):
    from minitorch_alex_kernels.cpu import lrn as lrn_kernels
    from minitorch_alex_kernels.cpu import pool as pool_kernels

    original_forward = lrn_kernels.lrn_forward
    monkeypatch.setattr(lrn_kernels, "lrn_forward", lambda x, size, *rest: original_forward(x, max(size - 1, 1), *rest))
    with pytest.raises(AssertionError, match="forward"):
        _lrn_case()
    monkeypatch.undo()

    original_pool_backward = pool_kernels.maxpool_backward

    def backward_dropping_a_plane(gy, argmax, x_shape):  # the first plane's gradient lost
        gx = original_pool_backward(gy, argmax, x_shape)
        gx[0, 0] = 0.0
        return gx

    monkeypatch.setattr(pool_kernels, "maxpool_backward", backward_dropping_a_plane)
    with pytest.raises(AssertionError, match="gradient of input 0"):
        _pool_case()


# hot ops checked elsewhere, each with the file that checks it and why it is not a spec entry yet
CHECKED_ELSEWHERE = {
    "sgd_momentum_update_": "this file's SGD tests (a function, not a Function)",
}


def test_every_hot_op_has_a_spec():
    """A dispatch op without a spec would go unchecked against its reference."""
    assert {s.op for s in SPECS if s.op} | set(CHECKED_ELSEWHERE) == set(dispatch.TABLE)
