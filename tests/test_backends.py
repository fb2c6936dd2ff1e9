"""Every backend against the reference, through the public API, on hypothesis-generated inputs.

For each hot op of ``minitorch_alex.dispatch.TABLE`` (conv2d and its fused ReLU form, linear and
its fused form, max_pool2d, local_response_norm, relu, dropout, the SGD update), the output and
every input gradient under a backend equal the reference's (``mt.config.using(backend=...)``)
to the rounding of their sums, and the graph node says that backend ran. Parametrized over the
backends available: 'numba' here, 'cuda' where CuPy and a GPU are present (skipped otherwise).

The last tests show the comparison can fail: a bug forced into the reference, or into a numba
kernel, makes it fail.
"""
import importlib.util

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import KERNEL_TOL, assert_close, conv_arrays, conv_geometries, distinct_values, dtypes, pool_geometries

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex.ops.common import conv_output_size


def _gpu():
    try:
        import cupy
    except ImportError:
        return False
    try:
        return bool(cupy.cuda.is_available())
    except Exception:  # a driver problem reads as no GPU
        return False


BACKENDS = [
    pytest.param("numba", marks=pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="needs numba")),
    pytest.param("cuda", marks=pytest.mark.skipif(not _gpu(), reason="needs CuPy and a CUDA GPU")),
]
DEVICE = {"numba": "cpu", "cuda": "cuda:0"}
LOOSE = {np.float32: 5.0, np.float64: 1.0}  # Winograd F(5x5, 3x3)'s float32 error (see test_kernels.ATOL_FACTOR)


def run(fn, arrays, gy, backend, device):
    """(output, input gradients, the backend the node recorded), NumPy arrays, under ``backend``."""
    with mt.config.using(backend=backend):
        tensors = [mt.tensor(a, requires_grad=True, device=device) if a is not None else None for a in arrays]
        y = fn(*tensors)
        ran = y._node.backend  # read before backward releases the node
        y.backward(mt.tensor(gy, device=device))
    return y.numpy(), [t.grad.numpy() if t is not None else None for t in tensors], ran


def compare(backend, fn, arrays, dtype, scales=(1.0,), seed=0):
    """``fn`` on ``arrays`` under ``backend`` equals the reference: output, then each input's
    gradient; ``scales``: the atol multiplier of the output and of each gradient (the last one
    repeats), about the square root of the terms in each sum."""
    arrays = [np.asarray(a, dtype=dtype) if a is not None else None for a in arrays]
    with mt.no_grad(), mt.config.using(backend="reference"):
        shape = fn(*(mt.tensor(a) if a is not None else None for a in arrays)).shape
    gy = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    y_ref, g_ref, ran_ref = run(fn, arrays, gy, "reference", "cpu")
    y, g, ran = run(fn, arrays, gy, backend, DEVICE[backend])
    assert ran_ref == "reference" and ran == backend  # otherwise the comparison would prove nothing
    scales = list(scales) + [scales[-1]] * len(arrays)
    assert_close(y, y_ref, dtype, KERNEL_TOL, scales[0], err_msg=f"{backend} forward")
    for i, (a, b) in enumerate(zip(g, g_ref)):
        if b is not None:
            assert_close(a, b, dtype, KERNEL_TOL, scales[i + 1], err_msg=f"{backend} gradient of input {i}")


@pytest.mark.parametrize("backend", BACKENDS)
@given(geo=conv_geometries(), bias=st.booleans(), relu=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_equals_reference(backend, geo, bias, relu, dtype, seed):
    x, w, b = conv_arrays(geo, bias, np.random.default_rng(seed), dtype)
    kw = dict(stride=geo["stride"], padding=geo["padding"], groups=geo["groups"])
    conv = F.conv2d_relu if relu else F.conv2d
    loose = LOOSE[dtype]
    oh, ow = (conv_output_size(*a) for a in zip((geo["h"], geo["w"]), geo["k"], geo["stride"], geo["padding"]))
    area = np.sqrt(geo["n"] * oh * ow)  # the terms of each weight or bias gradient sum
    compare(backend, lambda *t: conv(*t, **kw), [x, w, b], dtype,
            scales=(np.sqrt(w[0].size) * loose, np.sqrt(w[0].size) * loose, area * loose, area), seed=seed)


@pytest.mark.parametrize("backend", BACKENDS)
@given(n=st.integers(1, 8), fin=st.integers(1, 20), fout=st.integers(1, 20), bias=st.booleans(), relu=st.booleans(),
       dtype=dtypes, seed=st.integers(0, 2**16))
def test_linear_equals_reference(backend, n, fin, fout, bias, relu, dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((n, fin)), rng.standard_normal((fout, fin)), rng.standard_normal(fout) if bias else None]
    compare(backend, F.linear_relu if relu else F.linear, arrays, dtype,
            scales=(np.sqrt(fin), np.sqrt(fout), np.sqrt(n)), seed=seed)


@pytest.mark.parametrize("backend", BACKENDS)
@given(geo=pool_geometries(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_max_pool2d_equals_reference(backend, geo, dtype, seed):
    x = distinct_values(np.random.default_rng(seed), geo["shape"])
    compare(backend, lambda x: F.max_pool2d(x, geo["k"], geo["stride"], geo["padding"]), [x], dtype,
            scales=(1.0, 4.0), seed=seed)


@pytest.mark.parametrize("backend", BACKENDS)
@given(size=st.integers(1, 7), groups=st.sampled_from([1, 2]), c_per_group=st.integers(1, 6),
       beta=st.sampled_from([0.75, 0.5, 1.3]), alpha=st.sampled_from([1e-4, 0.3]), dtype=dtypes,
       seed=st.integers(0, 2**16))
def test_local_response_norm_equals_reference(backend, size, groups, c_per_group, beta, alpha, dtype, seed):
    x = np.random.default_rng(seed).standard_normal((2, groups * c_per_group, 3, 5)) * 3
    compare(backend, lambda x: F.local_response_norm(x, size, alpha=alpha, beta=beta, k=2.0, groups=groups), [x],
            dtype, scales=(1.0, 10.0), seed=seed)


@pytest.mark.parametrize("backend", BACKENDS)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), dtype=dtypes, seed=st.integers(0, 2**16))
def test_relu_equals_reference(backend, shape, dtype, seed):
    compare(backend, F.relu, [distinct_values(np.random.default_rng(seed), tuple(shape))], dtype, seed=seed)


@pytest.mark.parametrize("backend", BACKENDS)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), p=st.sampled_from([0.0, 0.3, 0.5]),
       inverted=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_dropout_equals_reference(backend, shape, p, inverted, dtype, seed):
    rng = np.random.default_rng(seed)
    x, keep = rng.standard_normal(shape), rng.random(shape) >= p  # a boolean mask, which the kernels take
    compare(backend, lambda x: F.dropout(x, p, mask=keep, inverted=inverted), [x], dtype, seed=seed)


@pytest.mark.parametrize("backend", BACKENDS)
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
    x = distinct_values(np.random.default_rng(3), (2, 3, 7, 7))
    compare(backend, lambda x: F.max_pool2d(x, 3, 2), [x], np.float64, scales=(1.0, 4.0))


def _lrn_case(backend="numba"):
    x = np.random.default_rng(4).standard_normal((2, 6, 3, 3)) * 3
    compare(backend, lambda x: F.local_response_norm(x, 5, alpha=0.3, groups=2), [x], np.float64, scales=(1.0, 10.0))


def test_the_comparisons_pass_as_the_code_stands():
    _pool_case()
    _lrn_case()


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
