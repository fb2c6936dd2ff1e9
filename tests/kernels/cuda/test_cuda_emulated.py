"""The CUDA kernels' arithmetic, run on the CPU: each ``kernels/cuda/*.cu`` file is compiled by
nvcc with ``-DMT_HOST_EMULATION`` (see ``common.cuh``), which turns every kernel into a plain host
function whose "threads" run one after the other. The op classes of ``kernels/cuda`` (``conv.Conv2d``,
``linear.Linear``, ``pool.MaxPool2d``, ...: the ones the dispatch table names) are then run unchanged
on NumPy arrays (NumPy stands in for CuPy, ctypes for the launch) and compared
with the readable NumPy reference of ``minitorch_alex.ops``: every hot op of ``op_specs.SPECS``
on its hypothesis cases and examples, in float64, float32 and float16.

What this proves without a GPU: the index arithmetic of every kernel (im2col/col2im gathers,
LRN windows, pool windows and argmax, the gather form of the pool backward, the NCHW move with
the bias), the argument lists the wrappers pass, and the float16 conversions. What it cannot
prove (``tests/kernels/cuda/test_gpu.py`` does, on a GPU): launch geometry, NVRTC compilation through CuPy,
and races between threads (none by design: every kernel is a gather). Skipped without nvcc.
"""
import inspect

import numpy as np
import pytest
from cuda_emulation import TOL, close  # noqa: F401
from hypothesis import given
from hypothesis import strategies as st
from needs import needs_nvcc
from op_specs import BY_NAME, SPECS, cast_arrays, differentiable, hot, tensors
from strategies import conv_geometries

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
import minitorch_alex_kernels.cuda as kc
from minitorch_alex.ops import im2col as ref_im2col

pytestmark = needs_nvcc  # the fixtures (libraries, emulated): tests/cuda_emulation.py


def run_reference(fn, inputs, gy):
    """fn's output and the gradients of its inputs for the upstream gradient gy, with the NumPy
    reference backend in float64."""
    with mt.config.using(backend="reference"):
        ts = [mt.tensor(a.astype(np.float64), requires_grad=True) for a in inputs]
        y = fn(*ts)
        y.backward(gy.astype(np.float64))
    return y.numpy(), [t.grad.numpy() for t in ts]


EMULATED_DTYPES = [np.float64, np.float32, np.float16]
dtypes = st.sampled_from(EMULATED_DTYPES)


def check_op(emulated, spec, case, dtype, seed):
    """``spec``'s op class of kernels/cuda on ``case`` in ``dtype`` against the float64 reference
    on the same (rounded) values: output, then each input's gradient. A fused ReLU op below float64
    is held to relu(unfused reference), differentiated where its own output is positive (a value
    rounded across zero flips the mask, which is not an error). State (``spec.state``) is compared
    after the call."""
    cast = cast_arrays(spec, case, dtype)
    rounded = type(case)([a.astype(np.float64) for a in cast], case.params)  # before the call updates state
    grad_of = differentiable(spec, rounded)
    cls = getattr(emulated, spec.op)
    impl = cls(tf32=False) if "tf32" in inspect.signature(cls).parameters else cls()  # only GEMM classes take it
    impl.needs_input_grad = (True,) * len(grad_of)
    y = impl.forward(*cast, **spec.kernel_params(case.params))
    gy = np.random.default_rng(seed).standard_normal(y.shape)
    own_mask = spec.fused_relu_of is not None and dtype != np.float64
    reference = BY_NAME[spec.fused_relu_of] if own_mask else spec
    with mt.config.using(backend="reference"):
        ts = tensors(rounded, np.float64, state=spec.state)
        y_ref = reference.run(ts, case.params)
        expected, gy_ref = y_ref.numpy(), gy.astype(dtype).astype(np.float64)
        if own_mask:
            expected, gy_ref = np.maximum(expected, 0), gy_ref * (y.astype(np.float64) > 0)
        y_ref.backward(mt.tensor(gy_ref))
    close(y, expected, dtype)
    grads = impl.backward(gy.astype(dtype))
    # one per differentiable input, as the CPU kernels return (a mask or other parameter gets none)
    assert len(grads) == len(grad_of), f"{len(grads)} gradients for {len(grad_of)} differentiable inputs"
    for i, g in zip(grad_of, grads):
        assert g is not None, f"gradient of input {i}"
        close(g, ts[i].grad.numpy(), dtype)
    for i in spec.state:  # statistics of 16-bit inputs are float32 sums of 16-bit-rounded values
        close(cast[i].astype(dtype, copy=False), ts[i].numpy(), dtype)


HOT = [s for s in SPECS if hot(s)]


@pytest.mark.parametrize("dtype", EMULATED_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("spec", HOT, ids=repr)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_op_equals_the_reference(emulated, spec, dtype, data, seed):
    check_op(emulated, spec, data.draw(spec.cases), dtype, seed)


@pytest.mark.parametrize("dtype", EMULATED_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("spec", [s for s in HOT if s.examples], ids=repr)
def test_op_examples_equal_the_reference(emulated, spec, dtype):
    for i, case in enumerate(spec.examples):
        check_op(emulated, spec, case, dtype, seed=i)


@given(data=st.data(), dtype=dtypes)
def test_maxpool_winners_are_flat_int32_indices_of_each_plane(emulated, data, dtype):
    case = data.draw(BY_NAME["max_pool2d"].cases)
    (x,) = case.arrays
    impl = emulated.MaxPool2d()
    impl.needs_input_grad = (True,)
    impl.forward(x.astype(dtype), **case.params)
    assert impl.argmax.dtype == np.int32 and impl.argmax.min() >= 0 and impl.argmax.max() < x.shape[2] * x.shape[3]


@given(geo=conv_geometries(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_im2col_and_col2im_equal_the_reference(emulated, geo, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((geo["n"], geo["cin"], geo["h"], geo["w"])).astype(dtype)
    col = emulated.im2col(x, geo["k"], geo["stride"], geo["padding"])
    np.testing.assert_array_equal(col, ref_im2col.im2col(x, geo["k"], geo["stride"], geo["padding"]))  # a copy: exact
    g = rng.standard_normal(col.shape).astype(dtype)
    back = emulated.col2im(g, x.shape, geo["k"], geo["stride"], geo["padding"])
    close(back, ref_im2col.col2im(g.astype(np.float64), x.shape, geo["k"], geo["stride"], geo["padding"]), dtype)


def test_conv2d_backward_computes_only_the_gradients_asked_for(emulated, rng):
    x, w, b = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    impl = emulated.Conv2d()
    impl.needs_input_grad = (False, True, False)
    impl.forward(x, w, b, stride=(1, 1), padding=(1, 1), groups=2)
    gx, gw, gb = impl.backward(np.ones((2, 6, 6, 6)))
    assert gx is None and gb is None and gw.shape == w.shape
    impl = emulated.Conv2d()
    impl.needs_input_grad = (False, False, False)  # no_grad: nothing kept for a backward pass
    impl.forward(x, w, b, stride=(1, 1), padding=(1, 1), groups=2)
    assert not hasattr(impl, "col")


def test_conv2d_relu_fuses_the_relu_forward_and_backward(emulated, rng):
    x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gy = rng.standard_normal((2, 4, 7, 7))
    y_ref, grads_ref = run_reference(lambda *t: F.relu(F.conv2d(*t, 1, 1)), [x, w, b], gy)
    impl = emulated.Conv2dReLU()
    impl.needs_input_grad = (True, True, True)
    y = impl.forward(x, w, b, stride=(1, 1), padding=(1, 1), groups=1)
    assert (y == 0).any() and (y > 0).any()
    close(y, y_ref, np.float64)
    for g, ref in zip(impl.backward(gy), grads_ref):
        close(g, ref, np.float64)


def test_maxpool_ties_go_to_the_first_entry_and_nan_wins(emulated):
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, np.nan, 2.0], [0.0, 3.0, 3.0]]]])
    y, argmax = emulated.maxpool_forward(x, (2, 2), (1, 1), (0, 0))
    assert argmax.reshape(-1).tolist() == [4, 4, 4, 4]  # the NaN is in every window
    y, argmax = emulated.maxpool_forward(np.ones((1, 1, 3, 3)), (2, 2), (1, 1), (0, 0))
    assert argmax.reshape(-1).tolist() == [0, 1, 3, 4]  # ties: each window's top-left entry


def test_relu_keeps_nan_like_numpy(emulated):
    y = emulated.ReLU().forward(np.array([np.nan, -1.0, 2.0]))
    assert np.isnan(y[0]) and y[1:].tolist() == [0.0, 2.0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_kernel_is_the_papers_rule(emulated, rng, dtype):
    w, v, g = (rng.standard_normal(50).astype(dtype) for _ in range(3))
    m, wd, lr = 0.9, 5e-4, 0.01
    v_ref = m * v.astype(np.float64) - wd * lr * w - lr * g
    w_ref = w + v_ref
    emulated.sgd_momentum_update_(w, v, g, m, wd, lr)
    close(v, v_ref, dtype)
    close(w, w_ref, dtype)


def test_wrappers_refuse_dimensions_beyond_32_bits():
    from minitorch_alex_kernels.cuda import _launch

    with pytest.raises(ValueError, match="32-bit"):
        _launch.i32(2**31)
    assert _launch.i32(2**31 - 1) == [np.int32(2**31 - 1)]
    assert _launch.i64(2**31 + 5) == [np.int64(2**31 + 5)]  # element totals: 64-bit in the kernels


def test_float32_kernels_flush_subnormals_as_cupys_ftz_build_does(emulated):
    """CuPy builds every kernel with -ftz=true: a float32 subnormal is zero on the GPU, and the
    emulation matches it; float64 is never flushed; NumPy after the call is left as it was."""
    tiny32, tiny64 = np.float32(1e-39), 1e-310  # both subnormal
    w, v, g = np.array([tiny32, 1.0], np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32)
    emulated.sgd_momentum_update_(w, v, g, 0.9, 0.0, 0.01)
    assert w.tolist() == [0.0, 1.0]  # w + 0 with the subnormal flushed
    w64, v64, g64 = np.array([tiny64, 1.0]), np.zeros(2), np.zeros(2)
    emulated.sgd_momentum_update_(w64, v64, g64, 0.9, 0.0, 0.01)
    assert w64.tolist() == [tiny64, 1.0]
    assert np.float32(tiny32) * np.float32(1.0) == tiny32  # the control register was restored


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_unscale_is_a_cast_a_scale_and_a_finite_flag(emulated, rng, dtype):
    g = (rng.standard_normal(300) * 100).astype(dtype)
    found = np.zeros(1, np.int32)
    out = emulated.unscale(g, 1 / 64, found)
    assert out.dtype == np.float32 and found[0] == 0
    np.testing.assert_array_equal(out, g.astype(np.float32) * np.float32(1 / 64))
    g[7], g[100] = np.inf, np.nan
    emulated.unscale(g, 1 / 64, found)
    assert found[0] == 1


def test_mixed_precision_unscales_each_gradient_with_one_kernel_and_one_read(emulated, monkeypatch):
    """MixedPrecision on a GPU (here: its parameters on a stand-in cuda device whose arrays are
    NumPy's, the kernels the host builds): one launch per gradient, the flag read once, the same
    float32 gradients as the host path, and an overflow anywhere reported."""
    import contextlib

    from minitorch_alex import amp

    class Gpu:
        type, index, xp = "cuda", 0, np

        def context(self):
            return contextlib.nullcontext()

    def run(cuda, poison=False):
        mt.manual_seed(0)
        model = mt.nn.Sequential(mt.nn.Linear(6, 5), mt.nn.ReLU(), mt.nn.Linear(5, 3))
        mp = amp.MixedPrecision(model, "float16")
        mp.backward(F.cross_entropy(mp(mt.tensor(np.ones((4, 6), np.float32))), [0, 1, 2, 0]))
        if poison:
            mp.model_params[2].grad.data[0, 0] = np.inf
        if cuda:
            for p in mp.model_params:
                p.device = Gpu()
        return mp.unscale_grads(), [m.grad.numpy().copy() for m in mp.master]

    launches = []
    original = kc.loader.function
    monkeypatch.setattr(kc.loader, "function", lambda src, kernel, dtype: launches.append((src, kernel)) or original(src, kernel, dtype))
    (ok_gpu, grads_gpu), (ok_host, grads_host) = run(cuda=True), run(cuda=False)
    assert ok_gpu is ok_host is True
    assert launches == [("elementwise", "unscale")] * 4  # 4 parameters, one kernel each
    for a, b in zip(grads_gpu, grads_host):
        np.testing.assert_array_equal(a, b)
    assert run(cuda=True, poison=True)[0] is False
