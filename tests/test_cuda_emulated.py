"""The CUDA kernels' arithmetic, run on the CPU: each ``kernels/cuda/*.cu`` file is compiled by
nvcc with ``-DMT_HOST_EMULATION`` (see ``common.cuh``), which turns every kernel into a plain host
function whose "threads" run one after the other. The op classes of ``kernels/cuda`` (``conv.Conv2d``,
``linear.Linear``, ``pool.MaxPool2d``, ...: the ones the dispatch table names) are then run unchanged
on NumPy arrays (NumPy stands in for CuPy, ctypes for the launch) and compared
with the readable NumPy reference of ``minitorch_alex.ops``.

What this proves without a GPU: the index arithmetic of every kernel (im2col/col2im gathers,
LRN windows, pool windows and argmax, the gather form of the pool backward, the NCHW move with
the bias), the argument lists the wrappers pass, and the float16 conversions. What it cannot
prove (``tests/test_gpu.py`` does, on a GPU): launch geometry, NVRTC compilation through CuPy,
and races between threads (none by design: every kernel is a gather). Skipped without nvcc.
"""
import ctypes
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import test_kernels as tk
from hypothesis import given
from hypothesis import strategies as st
from strategies import distinct_values

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
import minitorch_alex_kernels.cuda as kc
from minitorch_alex.ops import im2col as ref_im2col

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc is not on the PATH")
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-5),
       np.float16: dict(rtol=2e-2, atol=2e-2)}


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """name -> ctypes CDLL of the host-emulated build of ``name.cu``."""
    tmp = tmp_path_factory.mktemp("emulated")

    def build(name):
        src, lib = tmp / f"{name}.cu", tmp / f"{name}.so"
        src.write_text(kc.source(name))
        proc = subprocess.run([NVCC, "-DMT_HOST_EMULATION", "-shared", "-Xcompiler", "-fPIC", "-O1", *kc.OPTIONS,
                               "-o", str(lib), str(src)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return name, ctypes.CDLL(str(lib))

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(pool.map(build, kc.SOURCES))


def signature(source, kernel):
    """The C parameter kinds of ``kernel`` in ``source.cu``: 'ptr', 'int', 'long long', 'double'
    (read from its INSTANTIATE macro, the entry points CuPy launches)."""
    text = kc.source(source).replace("\\\n", " ")
    match = re.search(r"KERNEL void " + kernel + r"_##S\(([^)]*)\)", text)
    assert match, f"{kernel} not found in {source}.cu"
    kinds = []
    for param in match.group(1).split(","):
        param = " ".join(param.split())
        kinds.append("ptr" if "*" in param else "long long" if param.startswith("long long") else param.split()[0])
    return kinds


_KIND = {np.int32: "int", np.int64: "long long", np.float64: "double"}


class _HostKernel:
    """Called like a CuPy RawKernel, ``kernel(grid, block, args)``; runs the host build. The
    arguments must match the kernel's C parameters one for one (CuPy passes a NumPy scalar by its
    own size: an np.int64 for an ``int`` parameter would shift every later argument on a GPU).
    ``library``: a kernel computing in float32 (the f32, f16 and bf16 builds) runs with subnormals
    flushed to zero, as CuPy's -ftz=true build does on a GPU (common.cuh)."""

    def __init__(self, fn, kinds=None, library=None):
        self.fn, self.kinds, self.library = fn, kinds, library

    def __call__(self, grid, block, args):
        if self.kinds is not None:
            given = ["ptr" if isinstance(a, np.ndarray) else _KIND.get(type(a), type(a).__name__) for a in args]
            assert given == self.kinds, f"arguments {given} do not match the kernel's parameters {self.kinds}"
        converted = []
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous, "kernels read arrays as flat C-ordered buffers"
                converted.append(ctypes.c_void_p(a.ctypes.data))
            elif isinstance(a, np.int32):
                converted.append(ctypes.c_int(int(a)))
            elif isinstance(a, np.int64):
                converted.append(ctypes.c_longlong(int(a)))
            elif isinstance(a, np.float64):
                converted.append(ctypes.c_double(float(a)))
            else:
                raise TypeError(f"a kernel argument must be an array, np.int32, np.int64 or np.float64 (as CuPy needs), got {type(a)}")
        if self.library is None:
            self.fn(*converted)
            return
        previous = self.library.mt_emulation_flush_subnormals(1)
        try:
            self.fn(*converted)
        finally:
            self.library.mt_emulation_restore_csr(previous)


def _csr_functions(library):
    library.mt_emulation_flush_subnormals.restype = ctypes.c_uint
    library.mt_emulation_flush_subnormals.argtypes = [ctypes.c_uint]
    library.mt_emulation_restore_csr.argtypes = [ctypes.c_uint]
    return library


@pytest.fixture(scope="module")
def emulated(libraries):
    """minitorch_alex_kernels.cuda with NumPy as its array module and the host builds as its kernels."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kc, "cupy", lambda: np)
        mp.setattr(kc, "set_tf32", lambda enabled: None)  # CuPy's compute type: nothing to set on NumPy
        mp.setattr(kc, "function", lambda src, kernel, dtype: _HostKernel(
            getattr(libraries[src], f"{kernel}_{kc.suffix(dtype)}"), signature(src, kernel),
            library=None if np.dtype(dtype) == np.float64 else _csr_functions(libraries[src])))
        yield kc


def close(actual, expected, dtype):
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual.astype(np.float64), np.asarray(expected, np.float64), **TOL[dtype])


def run_reference(fn, inputs, gy):
    """fn's output and the gradients of its inputs for the upstream gradient gy, with the NumPy
    reference backend in float64."""
    with mt.config.using(backend="reference"):
        ts = [mt.tensor(a.astype(np.float64), requires_grad=True) for a in inputs]
        y = fn(*ts)
        y.backward(gy.astype(np.float64))
    return y.numpy(), [t.grad.numpy() for t in ts]


dtypes = st.sampled_from([np.float64, np.float32, np.float16])


@given(geo=tk.conv_geometries(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_im2col_and_col2im_equal_the_reference(emulated, geo, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((geo["n"], geo["cin"], geo["h"], geo["w"])).astype(dtype)
    col = emulated.im2col(x, geo["k"], geo["stride"], geo["padding"])
    np.testing.assert_array_equal(col, ref_im2col.im2col(x, geo["k"], geo["stride"], geo["padding"]))  # a copy: exact
    g = rng.standard_normal(col.shape).astype(dtype)
    back = emulated.col2im(g, x.shape, geo["k"], geo["stride"], geo["padding"])
    close(back, ref_im2col.col2im(g.astype(np.float64), x.shape, geo["k"], geo["stride"], geo["padding"]), dtype)


@given(geo=tk.conv_geometries(), dtype=dtypes, bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d_forward_and_backward_equal_the_reference(emulated, geo, dtype, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((geo["n"], geo["cin"], geo["h"], geo["w"]))
    w = rng.standard_normal((geo["cout"], geo["cin"] // geo["groups"], *geo["k"]))
    b = rng.standard_normal(geo["cout"])
    gy = rng.standard_normal((geo["n"], geo["cout"], *tk.out_size(geo)))
    inputs = [x, w, b] if bias else [x, w]
    y_ref, grads_ref = run_reference(
        lambda *t: F.conv2d(*t[:2], t[2] if bias else None, geo["stride"], geo["padding"], geo["groups"]), inputs, gy)
    cast = [a.astype(dtype) for a in inputs]
    impl = emulated.Conv2d(tf32=False)
    impl.needs_input_grad = (True,) * len(cast)
    y = impl.forward(*cast, stride=geo["stride"], padding=geo["padding"], groups=geo["groups"])
    close(y, y_ref, dtype)
    grads = impl.backward(gy.astype(dtype))
    assert len(grads) == len(inputs)
    for g, ref in zip(grads, grads_ref):
        close(g, ref, dtype)


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


@pytest.mark.parametrize("cls", ["Linear", "LinearReLU"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_linear_forward_and_backward_equal_the_reference(emulated, rng, cls, dtype):
    x, w, b, gy = rng.standard_normal((5, 7)), rng.standard_normal((3, 7)), rng.standard_normal(3), rng.standard_normal((5, 3))
    relu = cls == "LinearReLU"
    y_ref, grads_ref = run_reference(lambda *t: (F.relu if relu else (lambda v: v))(F.linear(*t)), [x, w, b], gy)
    impl = getattr(emulated, cls)(tf32=False)
    impl.needs_input_grad = (True, True, True)
    y = impl.forward(x.astype(dtype), w.astype(dtype), b.astype(dtype))
    close(y, y_ref, dtype)
    for g, ref in zip(impl.backward(gy.astype(dtype)), grads_ref):
        close(g, ref, dtype)


@given(n=st.integers(1, 3), cpg=st.integers(1, 7), groups=st.integers(1, 3), hw=st.integers(1, 5),
       size=st.integers(1, 6), beta=st.sampled_from([0.75, 0.5, 1.3]), dtype=dtypes, seed=st.integers(0, 2**16))
def test_lrn_forward_and_backward_equal_the_reference(emulated, n, cpg, groups, hw, size, beta, dtype, seed):
    rng = np.random.default_rng(seed)
    alpha, k = 0.3, 2.0  # a large alpha, so the window's sum matters at these scales
    x = rng.standard_normal((n, cpg * groups, hw, hw))
    gy = rng.standard_normal(x.shape)
    y_ref, (gx_ref,) = run_reference(lambda t: F.local_response_norm(t, size, alpha, beta, k, groups), [x], gy)
    impl = emulated.LocalResponseNorm()
    impl.needs_input_grad = (True,)
    y = impl.forward(x.astype(dtype), size=size, alpha=alpha, beta=beta, k=k, groups=groups)
    close(y, y_ref, dtype)
    (gx,) = impl.backward(gy.astype(dtype))
    close(gx, gx_ref, dtype)


@st.composite
def pool_geometries(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 3)), h=draw(st.integers(max(1, kh - 2 * ph), 9)),
                w=draw(st.integers(max(1, kw - 2 * pw), 9)), k=(kh, kw),
                stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=(ph, pw))


@given(geo=pool_geometries(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_maxpool_forward_and_backward_equal_the_reference(emulated, geo, dtype, seed):
    rng = np.random.default_rng(seed)
    x = distinct_values(rng, (geo["n"], geo["c"], geo["h"], geo["w"]))  # float16 rounding may tie: both pick the first
    y_shape = (geo["n"], geo["c"]) + tuple((s + 2 * p - k) // st_ + 1 for s, k, st_, p in
                                             zip((geo["h"], geo["w"]), geo["k"], geo["stride"], geo["padding"]))
    gy = rng.standard_normal(y_shape)
    xd = x.astype(dtype)
    y_ref, (gx_ref,) = run_reference(lambda t: F.max_pool2d(t, geo["k"], geo["stride"], geo["padding"]),
                                     [xd.astype(np.float64)], gy)
    impl = emulated.MaxPool2d()
    impl.needs_input_grad = (True,)
    y = impl.forward(xd, kernel_size=geo["k"], stride=geo["stride"], padding=geo["padding"])
    close(y, y_ref, dtype)
    assert impl.argmax.dtype == np.int32 and impl.argmax.min() >= 0 and impl.argmax.max() < geo["h"] * geo["w"]
    (gx,) = impl.backward(gy.astype(dtype))
    close(gx, gx_ref, dtype)


def test_maxpool_ties_go_to_the_first_entry_and_nan_wins(emulated):
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, np.nan, 2.0], [0.0, 3.0, 3.0]]]])
    y, argmax = emulated.maxpool_forward(x, (2, 2), (1, 1), (0, 0))
    assert argmax.reshape(-1).tolist() == [4, 4, 4, 4]  # the NaN is in every window
    y, argmax = emulated.maxpool_forward(np.ones((1, 1, 3, 3)), (2, 2), (1, 1), (0, 0))
    assert argmax.reshape(-1).tolist() == [0, 1, 3, 4]  # ties: each window's top-left entry


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_elementwise_kernels(emulated, rng, dtype):
    x = rng.standard_normal((5, 7)).astype(dtype)
    keep = rng.random((5, 7)) < 0.5
    gy = rng.standard_normal(x.shape).astype(dtype)
    drop = emulated.Dropout()
    drop.needs_input_grad = (True, False)
    close(drop.forward(x, keep, scale=2.0), np.where(keep, x.astype(np.float64) * 2.0, 0.0), dtype)
    gx, gmask = drop.backward(gy)
    assert gmask is None
    close(gx, np.where(keep, gy.astype(np.float64) * 2.0, 0.0), dtype)
    relu = emulated.ReLU()
    relu.needs_input_grad = (True,)
    close(relu.forward(x), np.maximum(x, 0), dtype)
    close(relu.backward(gy)[0], np.where(x > 0, gy, 0), dtype)


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
    original = kc.function
    monkeypatch.setattr(kc, "function", lambda src, kernel, dtype: launches.append((src, kernel)) or original(src, kernel, dtype))
    (ok_gpu, grads_gpu), (ok_host, grads_host) = run(cuda=True), run(cuda=False)
    assert ok_gpu is ok_host is True
    assert launches == [("elementwise", "unscale")] * 4  # 4 parameters, one kernel each
    for a, b in zip(grads_gpu, grads_host):
        np.testing.assert_array_equal(a, b)
    assert run(cuda=True, poison=True)[0] is False
