"""The numba kernels (``kernels.cpu``) against the readable NumPy references, float32 and float64,
on hypothesis-generated shapes; and the settings (``mt.config``) and dispatch that choose between them.

Every kernel is compared with the reference it replaces: im2col/col2im with
``minitorch_alex.ops.im2col``; convolution (im2col and Winograd, one or many chunks), linear,
LRN and max-pool with the ops run under the 'reference' backend; ReLU, dropout and the SGD
update with the NumPy expressions of the core. Then the thread pool and the malloc setting, the
settings and the dispatch, and op-level tests of a whole AlexNet step on both backends (each op
through the public API on both: tests/ops/test_op_backends.py, from tests/op_specs.py).
"""
import contextlib
import os
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import DTYPES, KERNEL_TOL, assert_close, conv_arrays, conv_geometries, distinct_values, dtypes, pool_geometries

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex.autograd import grad_fn_name
from minitorch_alex.ops import im2col as ref_im2col
from minitorch_alex.ops.common import conv_output_size

K = pytest.importorskip("minitorch_alex_kernels.cpu")
conv_kernels = pytest.importorskip("minitorch_alex_kernels.cpu.conv")
fourier = pytest.importorskip("minitorch_alex_kernels.cpu.fourier")



def close(actual, expected, dtype, scale=1.0):
    """float64 kernels agree with the reference to rounding; float32 to a few ulps of the sums."""
    assert actual.dtype == np.dtype(dtype)
    assert_close(actual, expected, dtype, KERNEL_TOL, scale)


def out_size(g):
    return tuple(conv_output_size(s, k, st_, p) for s, k, st_, p in zip((g["h"], g["w"]), g["k"], g["stride"], g["padding"]))


# ----- im2col / col2im ----------------------------------------------------------------------------
@given(geo=conv_geometries(), dtype=dtypes, seed=st.integers(0, 2**16), data=st.data())
def test_im2col_into_equals_reference_on_any_chunk(geo, dtype, seed, data):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((geo["n"], geo["cin"], geo["h"], geo["w"])).astype(dtype)
    oh, ow = out_size(geo)
    n_start = data.draw(st.integers(0, geo["n"] - 1))
    n_count = data.draw(st.integers(1, geo["n"] - n_start))
    pad_value = data.draw(st.sampled_from([0.0, -np.inf]))
    rows = geo["cin"] * geo["k"][0] * geo["k"][1]
    extra = data.draw(st.integers(0, 3))  # the kernel must leave columns past the chunk alone
    col = np.full((rows, n_count * oh * ow + extra), 7.0, dtype=dtype)
    K.im2col_into(x, col, n_start, n_count, *geo["k"], *geo["stride"], *geo["padding"], oh, ow, dtype(pad_value))
    expected = ref_im2col.im2col(x[n_start:n_start + n_count], geo["k"], geo["stride"], geo["padding"], pad_value=pad_value)
    np.testing.assert_array_equal(col[:, :n_count * oh * ow], expected)
    np.testing.assert_array_equal(col[:, n_count * oh * ow:], 7.0)


@given(geo=conv_geometries(), dtype=dtypes, seed=st.integers(0, 2**16), data=st.data())
def test_col2im_into_equals_reference(geo, dtype, seed, data):
    rng = np.random.default_rng(seed)
    oh, ow = out_size(geo)
    n_start = data.draw(st.integers(0, geo["n"] - 1))
    n_count = data.draw(st.integers(1, geo["n"] - n_start))
    rows = geo["cin"] * geo["k"][0] * geo["k"][1]
    col = rng.standard_normal((rows, n_count * oh * ow)).astype(dtype)
    x = np.full((geo["n"], geo["cin"], geo["h"], geo["w"]), 7.0, dtype=dtype)
    K.col2im_into(col, x, n_start, n_count, *geo["k"], *geo["stride"], *geo["padding"], oh, ow)
    expected = ref_im2col.col2im(col, (n_count, geo["cin"], geo["h"], geo["w"]), geo["k"], geo["stride"], geo["padding"])
    close(x[n_start:n_start + n_count], expected, dtype, scale=geo["k"][0] * geo["k"][1])
    np.testing.assert_array_equal(np.delete(x, np.s_[n_start:n_start + n_count], axis=0), 7.0)  # other images untouched


@given(n=st.integers(1, 4), o=st.integers(1, 5), p=st.integers(1, 30), relu=st.booleans(), dtype=dtypes,
       seed=st.integers(0, 2**16), data=st.data())
def test_rows_to_nchw_and_back(n, o, p, relu, dtype, seed, data):
    rng = np.random.default_rng(seed)
    n_start = data.draw(st.integers(0, n - 1))
    n_count = data.draw(st.integers(1, n - n_start))
    rows = rng.standard_normal((o, n_count * p)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype)
    y = np.zeros((n, o, p), dtype=dtype)
    K.rows_to_nchw(rows, bias, y, n_start, n_count, relu)
    expected = rows.reshape(o, n_count, p).transpose(1, 0, 2) + bias[:, None]
    close(y[n_start:n_start + n_count], np.maximum(expected, 0) if relu else expected, dtype)

    back = np.zeros((o, n_count * p), dtype=dtype)
    bias_grad = np.ones(o)  # the kernel adds to it
    K.nchw_to_rows(y, back, bias_grad, n_start, n_count)
    np.testing.assert_array_equal(back, y[n_start:n_start + n_count].transpose(1, 0, 2).reshape(o, -1))
    np.testing.assert_allclose(bias_grad, 1 + y[n_start:n_start + n_count].sum(axis=(0, 2), dtype=np.float64), rtol=1e-12)



@given(n=st.integers(1, 4), o=st.integers(1, 5), p=st.integers(1, 30), dtype=dtypes, seed=st.integers(0, 2**16),
       data=st.data())
def test_nchw_to_rows_relu_masks_where_the_output_is_not_positive(n, o, p, dtype, seed, data):
    rng = np.random.default_rng(seed)
    n_start = data.draw(st.integers(0, n - 1))
    n_count = data.draw(st.integers(1, n - n_start))
    g = rng.standard_normal((n, o, p)).astype(dtype)
    y = np.maximum(rng.standard_normal((n, o, p)), 0).astype(dtype)  # a ReLU's output: zeros and positives
    rows = np.full((o, n_count * p), np.nan, dtype=dtype)
    bias_grad = np.ones(o)
    K.nchw_to_rows_relu(g, y, rows, bias_grad, n_start, n_count)
    masked = np.where(y > 0, g, 0)[n_start:n_start + n_count]
    np.testing.assert_array_equal(rows, masked.transpose(1, 0, 2).reshape(o, -1))
    np.testing.assert_allclose(bias_grad, 1 + masked.sum(axis=(0, 2), dtype=np.float64), rtol=1e-12)


# ----- convolution --------------------------------------------------------------------------------
def reference_op(fn, inputs, gy):
    """Output and input gradients of ``fn`` under the reference backend (as NumPy arrays)."""
    return run_op(fn, inputs, gy, "reference")


def run_op(fn, inputs, gy, backend):
    tensors = [mt.tensor(a, requires_grad=True) if a is not None else None for a in inputs]
    with mt.config.using(backend=backend):
        y = fn(*tensors)
        y.backward(mt.tensor(gy))
    return y.numpy(), [t.grad.numpy() if t is not None else None for t in tensors]


@contextlib.contextmanager
def conv_chunking(many_chunks):
    """The convolution kernels with their own chunk sizes, or forced down to one image per chunk
    so the accumulation across chunks (weight and bias gradients) is exercised."""
    with pytest.MonkeyPatch.context() as patch:
        if many_chunks:
            patch.setattr(conv_kernels, "TARGET_BYTES", 1)
            patch.setattr(conv_kernels, "MIN_COLUMNS", 1)
            patch.setattr(fourier, "CHUNK_IMAGES", 1)
            patch.setattr(conv_kernels, "WINOGRAD_MIN_TILES", 1)
            patch.setattr(conv_kernels, "WINOGRAD_TARGET_BYTES", 1)
        yield


# F(4x4, 3x3)'s transforms have coefficients up to 8 and 1/24, F(5x5, 3x3)'s up to 16 and 1/60: in
# float32 their error is several times that of the other algorithms (~1e-6 of the output's scale;
# the same trade cuDNN and oneDNN make)
ATOL_FACTOR = {name: {np.float32: 5.0, np.float64: 1.0} for name in ("winograd4", "winograd5", "polyphase")}


def atol_factor(algorithm, dtype):
    return ATOL_FACTOR.get(algorithm, {}).get(dtype, 1.0)


def check_conv(x, w, b, stride, padding, groups, dtype, rng, algorithm="auto", relu=False, fused_backward=False,
               saved=False):
    """conv2d_forward (ReLU'd output if ``relu``) and conv2d_backward with ``algorithm``, against
    the reference convolution's output and gradients. ``fused_backward``: the backward of the
    fused conv + ReLU (``relu_output=y``), whose gradients are the reference's for gy masked
    where the fused output is not positive (that mask, not the reference's, so values that round
    to 0 on one side and not the other cannot make the test flaky). ``saved``: the two calls
    share a ``saved`` dict, as in training (the backward then reuses what the forward kept)."""
    shared = {} if saved else None
    y = K.conv2d_forward(x, w, b, stride, padding, groups, relu=relu, algorithm=algorithm, saved=shared)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = K.conv2d_backward(x, w, gy, stride, padding, groups, need_bias=b is not None, algorithm=algorithm,
                                   relu_output=y if fused_backward else None, saved=shared)
    kw = dict(stride=stride, padding=padding, groups=groups)
    gy_ref = np.where(y > 0, gy, 0) if fused_backward else gy
    y_ref, grads_ref = reference_op(lambda x, w, b: F.conv2d(x, w, b, **kw), [x, w, b], gy_ref)
    loose = atol_factor(algorithm, dtype)
    scale = np.sqrt(w[0].size) * loose
    close(y, np.maximum(y_ref, 0) if relu else y_ref, dtype, scale=scale)
    close(gx, grads_ref[0], dtype, scale=scale)
    close(gw, grads_ref[1], dtype, scale=np.sqrt(gy[:, 0].size) * loose)
    if b is not None:
        close(gb, grads_ref[2], dtype, scale=np.sqrt(gy[:, 0].size))
    else:
        assert gb is None


def check_fused_relu_conv(x, w, b, stride, padding, groups, dtype, rng, algorithm="auto"):
    """conv2d_forward(relu=True) and conv2d_backward(relu_output=y) against the reference."""
    check_conv(x, w, b, stride, padding, groups, dtype, rng, algorithm, relu=True, fused_backward=True)


@pytest.mark.parametrize("many_chunks", [False, True], ids=["own chunks", "one image per chunk"])
@given(geo=conv_geometries(), bias=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_kernels_equal_reference(many_chunks, geo, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    with conv_chunking(many_chunks):
        check_conv(*conv_arrays(geo, bias, rng, dtype), geo["stride"], geo["padding"], geo["groups"], dtype, rng)


@pytest.mark.parametrize("many_chunks", [False, True], ids=["own chunks", "one image per chunk"])
@given(geo=conv_geometries(), bias=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_kernels_fused_with_relu_equal_reference(many_chunks, geo, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    with conv_chunking(many_chunks):
        check_fused_relu_conv(*conv_arrays(geo, bias, rng, dtype), geo["stride"], geo["padding"], geo["groups"], dtype, rng)


@st.composite
def winograd_geometries(draw):
    """3x3 stride-1 convolutions (those Winograd's F(m x m, 3x3) handles), odd and even sizes."""
    groups = draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    return dict(n=draw(st.integers(1, 3)), cin=groups * draw(st.integers(1, 3)), cout=groups * draw(st.integers(1, 3)),
                h=draw(st.integers(max(1, 3 - 2 * ph), 9)), w=draw(st.integers(max(1, 3 - 2 * pw), 9)), k=(3, 3),
                stride=(1, 1), padding=(ph, pw), groups=groups)


@pytest.mark.parametrize("algorithm", ["winograd", "winograd4", "winograd5", "im2col"])
@given(geo=winograd_geometries(), bias=st.booleans(), relu=st.booleans(), saved=st.booleans(), dtype=dtypes,
       seed=st.integers(0, 2**16))
def test_conv2d_3x3_kernels_equal_reference_with_either_algorithm(algorithm, geo, bias, relu, saved, dtype, seed):
    rng = np.random.default_rng(seed)
    assert conv_kernels.choose_algorithm((3, 3), (1, 1), geo["padding"], algorithm) == algorithm
    check_conv(*conv_arrays(geo, bias, rng, dtype), (1, 1), geo["padding"], geo["groups"], dtype, rng, algorithm, relu,
               saved=saved)


def test_winograd5_matrices_compute_the_correlation():
    """F(5x5, 3x3)'s matrices: Aᵀ [(G g) ⊙ (Bᵀ d)] is the 5 outputs of the 3-tap correlation of 7 inputs
    (the 2-D algorithm applies this along each axis), and Aᵀ, Bᵀ are exact in float32 (the kernels
    use them in the data's dtype; G is applied in float64)."""
    from minitorch_alex_kernels.cpu import winograd5

    rng = np.random.default_rng(0)
    for _ in range(20):
        d, g = rng.standard_normal(7), rng.standard_normal(3)
        want = [d[i:i + 3] @ g for i in range(5)]
        np.testing.assert_allclose(winograd5.AT5 @ ((winograd5.G5 @ g) * (winograd5.BT5 @ d)), want, rtol=0, atol=1e-13)
    for matrix in (winograd5.AT5, winograd5.BT5):
        assert np.array_equal(matrix.astype(np.float32).astype(np.float64), matrix)


@pytest.mark.parametrize("algorithm", ["winograd", "winograd4", "winograd5"])
def test_winograd_backward_transforms_x_again_only_without_the_forwards_saved_chunks(algorithm):
    rng = np.random.default_rng(0)
    x, w, gy = rng.standard_normal((5, 4, 9, 9)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal((5, 6, 9, 9))
    args = ((1, 1), (1, 1), 2)
    variant = conv_kernels.WINOGRAD[algorithm]
    transform = variant.input_transform
    fresh = K.conv2d_backward(x, w, gy, *args, algorithm=algorithm)
    for many_chunks in (False, True):
        with conv_chunking(many_chunks), pytest.MonkeyPatch.context() as patch:
            seen = []
            patch.setattr(variant, "input_transform", lambda a, *rest: (seen.append(a.shape[1]), transform(a, *rest)))
            saved = {}
            K.conv2d_forward(x, w, None, *args, algorithm=algorithm, saved=saved)
            assert "winograd" in saved and seen.count(4) == len(saved["winograd"][2]) >= 1 + many_chunks
            seen.clear()
            got = K.conv2d_backward(x, w, gy, *args, algorithm=algorithm, saved=saved)
            assert 4 not in seen and seen and "winograd" not in saved  # only gy's transforms (6 channels)
        for g, want in zip(got, fresh):
            np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["winograd", "winograd4", "winograd5", "im2col"])
@given(geo=winograd_geometries(), bias=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_3x3_kernels_fused_with_relu_equal_reference(algorithm, geo, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    check_fused_relu_conv(*conv_arrays(geo, bias, rng, dtype), (1, 1), geo["padding"], geo["groups"], dtype, rng, algorithm)


@st.composite
def stride1_geometries(draw):
    """Stride-1 convolutions of every kernel size up to 6 and every padding up to k + 1 (the
    Fourier algorithm handles them all), odd and even sizes, sometimes wider than tall."""
    groups = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    ph, pw = draw(st.integers(0, kh + 1)), draw(st.integers(0, kw + 1))
    return dict(n=draw(st.integers(1, 4)), cin=groups * draw(st.integers(1, 3)), cout=groups * draw(st.integers(1, 3)),
                h=draw(st.integers(max(1, kh - 2 * ph), 12)), w=draw(st.integers(max(1, kw - 2 * pw), 12)), k=(kh, kw),
                stride=(1, 1), padding=(ph, pw), groups=groups)


@pytest.mark.parametrize("many_chunks", [False, True], ids=["own chunks", "one image per chunk"])
@given(geo=stride1_geometries(), bias=st.booleans(), relu=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_fourier_kernels_equal_reference(many_chunks, geo, bias, relu, dtype, seed):
    rng = np.random.default_rng(seed)
    with conv_chunking(many_chunks):
        check_conv(*conv_arrays(geo, bias, rng, dtype), (1, 1), geo["padding"], geo["groups"], dtype, rng, "fourier", relu)


@given(maps=st.integers(1, 300), h=st.integers(1, 5), w=st.integers(1, 9), fw=st.integers(1, 6),
       split=st.integers(0, 300), dtype=dtypes, seed=st.integers(0, 2**16))
def test_fourier_rows_kernel(maps, h, w, fw, split, dtype, seed):
    """The DFT's first step written transposed for the column DFT, over more maps than a block
    (fourier.BLOCK) and a part of one, in two calls as two threads split the maps."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((maps, h, w)).astype(dtype)
    rows = rng.standard_normal((w, 2 * fw)).astype(dtype)
    spectra = np.full((h * fw, 2 * maps), np.nan, dtype)
    split = min(split, maps)
    fourier.rows_to_spectra(x, rows, spectra, 0, split)
    fourier.rows_to_spectra(x, rows, spectra, split, maps)
    want = x.astype(np.float64) @ rows.astype(np.float64)  # (m, i, j)
    close(spectra, want.reshape(maps, h, fw, 2).transpose(1, 2, 0, 3).reshape(h * fw, 2 * maps), dtype)


@given(maps=st.integers(1, 300), oh=st.integers(1, 5), fw=st.integers(1, 6), ow=st.integers(1, 9),
       split=st.integers(0, 300), relu=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_fourier_inverse_rows_kernel(maps, oh, fw, ow, split, relu, dtype, seed):
    """The inverse DFT's last step read from the transposed spectra, over more maps than a block
    (fourier.BLOCK) and a part of one, in two calls as two threads split the maps."""
    rng = np.random.default_rng(seed)
    spectra = rng.standard_normal((oh * fw, 2 * maps)).astype(dtype)
    irows = rng.standard_normal((2 * fw, ow)).astype(dtype)
    out = np.full((maps, oh, ow), np.nan, dtype)
    split = min(split, maps)
    fourier.spectra_to_rows(spectra, irows, out, 0, split, relu)
    fourier.spectra_to_rows(spectra, irows, out, split, maps, relu)
    rows = spectra.reshape(oh, fw, maps, 2).transpose(2, 0, 1, 3).reshape(maps, oh, 2 * fw)  # (m, i, j)
    want = rows.astype(np.float64) @ irows.astype(np.float64)
    close(out, np.maximum(want, 0) if relu else want, dtype)


def test_fourier_weight_spectrum_runs_its_gemms_with_the_blas_single_threaded(monkeypatch):
    """The weights' spectrum multiplies on our threads with the BLAS at one thread, never on the
    BLAS's own: those spin for up to ~0.1 s after a GEMM and preempted the frequency products
    that follow (conv2's first chunk's products took 38-84 ms against 28-36 for the second)."""
    from minitorch_alex_kernels.cpu import parallel

    if not parallel.blas_controllable():
        pytest.skip("this BLAS cannot switch threads at run time")
    blas_threads = []

    def matmul(*args, **kwargs):
        blas_threads.append(parallel._blas.get())
        return np.matmul(*args, **kwargs)

    proxy = types.ModuleType("numpy")
    proxy.__getattr__ = lambda name: getattr(np, name)
    proxy.matmul = matmul
    monkeypatch.setattr(fourier, "np", proxy)
    saved_threads, saved_blas = parallel.get_num_threads(), parallel._blas.get()
    parallel.set_num_threads(2)
    parallel._blas.set(2)
    try:
        pl = fourier.plan(9, 9, 5, 5, 2, 2, "<f4")
        fourier.weight_spectrum(pl, np.ones((4, 3, 5, 5), np.float32))
    finally:
        parallel.set_num_threads(saved_threads)
        parallel._blas.set(saved_blas)
    assert blas_threads and set(blas_threads) == {1}, blas_threads


@given(geo=stride1_geometries(), bias=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_fourier_kernels_fused_with_relu_equal_reference(geo, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    check_fused_relu_conv(*conv_arrays(geo, bias, rng, dtype), (1, 1), geo["padding"], geo["groups"], dtype, rng, "fourier")


@st.composite
def polyphase_geometries(draw):
    """Strided convolutions whose kernel spans 3 strides (ceil(k / s) = 3 both ways, like conv1's
    11x11 at stride 4): the polyphase algorithm's. Any padding below the kernel size."""
    groups = draw(st.integers(1, 3))
    sh, sw = draw(st.sampled_from([(1, 2), (2, 1), (2, 2), (2, 3), (3, 3), (4, 4)]))
    kh, kw = draw(st.integers(2 * sh + 1, 3 * sh)), draw(st.integers(2 * sw + 1, 3 * sw))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    return dict(n=draw(st.integers(1, 3)), cin=groups * draw(st.integers(1, 2)), cout=groups * draw(st.integers(1, 3)),
                h=draw(st.integers(max(1, kh - 2 * ph), 14)), w=draw(st.integers(max(1, kw - 2 * pw), 14)),
                k=(kh, kw), stride=(sh, sw), padding=(ph, pw), groups=groups)


@pytest.mark.parametrize("many_chunks", [False, True], ids=["own chunks", "one image per chunk"])
@given(geo=polyphase_geometries(), bias=st.booleans(), relu=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_polyphase_kernels_equal_reference(many_chunks, geo, bias, relu, dtype, seed):
    rng = np.random.default_rng(seed)
    assert conv_kernels.choose_algorithm(geo["k"], geo["stride"], geo["padding"]) == "polyphase"
    with conv_chunking(many_chunks):
        check_conv(*conv_arrays(geo, bias, rng, dtype), geo["stride"], geo["padding"], geo["groups"], dtype, rng,
                   "polyphase", relu)


@given(geo=polyphase_geometries(), bias=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_polyphase_kernels_fused_with_relu_equal_reference(geo, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    check_fused_relu_conv(*conv_arrays(geo, bias, rng, dtype), geo["stride"], geo["padding"], geo["groups"], dtype, rng,
                          "polyphase")


@given(geo=polyphase_geometries(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_polyphase_split_and_merge_are_adjoint(geo, dtype, seed):
    """<split(x), g> = <x, merge(g)>: the input gradient's rearrangement is the transpose of the
    forward's, pixels the convolution never reads included (their gradient is 0)."""
    from minitorch_alex_kernels.cpu import polyphase

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((geo["n"], geo["cin"], geo["h"], geo["w"])).astype(dtype)
    xs = conv_kernels._split_phases(x, geo["k"], geo["stride"], geo["padding"])
    g = rng.standard_normal(xs.shape).astype(dtype)
    gx = np.empty_like(x)
    polyphase.merge_phase_grads(g, gx, 0, x.shape[0], *geo["stride"], *geo["padding"])
    np.testing.assert_allclose(np.vdot(xs, g), np.vdot(x, gx), rtol=KERNEL_TOL[dtype]["rtol"] * 10)
    w = rng.standard_normal((geo["cout"], geo["cin"] // geo["groups"], *geo["k"])).astype(dtype)
    ws = polyphase.split_weight(w, geo["stride"])
    np.testing.assert_array_equal(polyphase.merge_weight_grad(ws, geo["k"], geo["stride"]), w)
    assert ws.sum(dtype=np.float64) == pytest.approx(w.sum(dtype=np.float64))  # the added taps are zeros


def test_conv2d_fourier_backward_reuses_the_forward_spectrum_only_while_it_is_intact():
    """The backward takes the weights' spectrum its forward left in the workspace, unless another
    forward has overwritten it since: then it must compute it again, not use the other's."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 9, 9))
    w_a, w_b = rng.standard_normal((6, 2, 5, 5)), rng.standard_normal((6, 2, 5, 5))
    gy = rng.standard_normal((3, 6, 9, 9))
    args = ((1, 1), (2, 2), 2)
    fresh = {name: K.conv2d_backward(x, w, gy, *args) for name, w in (("a", w_a), ("b", w_b))}
    saved_a, saved_b = {}, {}
    K.conv2d_forward(x, w_a, None, *args, saved=saved_a)
    K.conv2d_forward(x, w_b, None, *args, saved=saved_b)  # same shapes: overwrites a's spectrum
    assert saved_a["h"] != saved_b["h"] == fourier._tokens.h
    calls, matmul_cols = [], fourier._matmul_cols
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fourier, "_matmul_cols", lambda *a: (calls.append(a[0].shape), matmul_cols(*a)))
        for name, saved, w in (("b", saved_b, w_b), ("a", saved_a, w_a)):
            got = K.conv2d_backward(x, w, gy, *args, saved=saved)
            for g, want in zip(got, fresh[name]):
                np.testing.assert_array_equal(g, want)
    spectrum_products = [shape for shape in calls if shape == fourier.plan(9, 9, 5, 5, 2, 2, "<f8").col_taps.shape]
    assert len(spectrum_products) == 1  # b reused its spectrum, a had to compute its own


def test_each_algorithm_only_where_it_applies():
    choose = conv_kernels.choose_algorithm
    assert choose((3, 3), (1, 1), (1, 1)) == "winograd5"  # 'auto', AlexNet's conv3-5
    assert choose((5, 5), (1, 1), (2, 2)) == "fourier"  # conv2
    assert choose((11, 11), (4, 4), (2, 2)) == "polyphase"  # conv1: 3x3 blocks of 4x4 taps
    assert choose((11, 11), (4, 4), (2, 2), "im2col") == "im2col"
    assert choose((5, 5), (2, 2), (0, 0)) == "polyphase"
    assert choose((4, 4), (2, 2), (1, 1)) == "im2col"  # 2x2 blocks: not F(m x m, 3x3)'s
    assert choose((1, 1), (1, 1), (0, 0)) == "im2col"  # a 1x1 convolution is one GEMM already
    assert choose((3, 3), (1, 1), (3, 3)) == "im2col"  # Winograd's input gradient would need padding -1
    assert choose((3, 3), (1, 1), (3, 3), "fourier") == "fourier"
    assert choose((3, 3), (2, 2), (1, 1)) == "im2col"
    with pytest.raises(ValueError, match="Winograd F"):
        choose((11, 11), (4, 4), (2, 2), "winograd")
    with pytest.raises(ValueError, match="Fourier algorithm needs stride 1, got stride \\(4, 4\\)"):
        choose((11, 11), (4, 4), (2, 2), "fourier")
    with pytest.raises(ValueError, match="polyphase algorithm needs a stride > 1"):
        choose((3, 3), (1, 1), (1, 1), "polyphase")
    with pytest.raises(ValueError, match="got kernel \\(4, 4\\), stride \\(2, 2\\)"):
        choose((4, 4), (2, 2), (1, 1), "polyphase")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        choose((3, 3), (1, 1), (1, 1), "fft")


@pytest.mark.parametrize("algorithm", ["im2col", "winograd", "winograd4", "winograd5", "fourier", "polyphase"])
def test_conv2d_weight_gradient_has_the_same_bits_whichever_thread_takes_which_chunk(algorithm):
    """Exact --resume needs bit-identical steps: the cross-chunk sums may not depend on scheduling."""
    from minitorch_alex_kernels.cpu import parallel

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 6, 9, 9)).astype(np.float32)
    k, stride = (5, 2) if algorithm == "polyphase" else (3, 1)
    w = rng.standard_normal((4, 3, k, k)).astype(np.float32)
    y_size = (9 + 2 - k) // stride + 1
    gy = rng.standard_normal((8, 4, y_size, y_size)).astype(np.float32)
    jitter = np.random.default_rng(1)

    def late(fn):  # a random delay before each chunk's work shuffles which thread takes which chunk
        def call(*args, **kw):
            time.sleep(jitter.uniform(0, 2e-3))
            return fn(*args, **kw)
        return call

    results = []
    with conv_chunking(True), pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv_kernels, "im2col_into", late(conv_kernels.im2col_into))
        for variant in conv_kernels.WINOGRAD.values():
            patch.setattr(variant, "grad_output_transform", late(variant.grad_output_transform))
        patch.setattr(fourier, "copy_map_rows", late(fourier.copy_map_rows))
        saved = parallel.get_num_threads()
        parallel.set_num_threads(4)
        try:
            for _ in range(6):
                results.append(K.conv2d_backward(x, w, gy, (stride, stride), (1, 1), 2, algorithm=algorithm))
        finally:
            parallel.set_num_threads(saved)
    for gx, gw, gb in results[1:]:
        np.testing.assert_array_equal(gw, results[0][1])
        np.testing.assert_array_equal(gb, results[0][2])
        np.testing.assert_array_equal(gx, results[0][0])


def test_conv2d_backward_computes_only_what_is_asked():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    gy = rng.standard_normal((2, 3, 3, 3))
    gx, gw, gb = K.conv2d_backward(x, w, gy, (1, 1), (0, 0), 1, need_x=False, need_weight=True, need_bias=False)
    assert gx is None and gb is None and gw.shape == w.shape
    gx, gw, gb = K.conv2d_backward(x, w, gy, (1, 1), (0, 0), 1, need_x=True, need_weight=False, need_bias=True)
    assert gw is None and gx.shape == x.shape and gb.shape == (3,)


def test_conv2d_chunks_are_sized_for_gemm_cache_and_threads():
    k_rows, p = 256 * 9, 13 * 13  # AlexNet's conv3
    b = conv_kernels.chunk_images(128, k_rows, p, 4, threads=2)
    assert b * p >= conv_kernels.MIN_COLUMNS  # wide enough for an efficient GEMM
    assert b * k_rows * p * 4 <= conv_kernels.TARGET_BYTES  # the column matrix stays cache-sized
    assert conv_kernels.chunk_images(3, 10, 10, 4, threads=2) == 2  # both threads get a chunk
    assert conv_kernels.chunk_images(128, 10**6, 10**4, 4, threads=2) == 1  # huge images: one at a time
    plan = conv_kernels.chunk_plan(7, 10, 10, 4)
    assert [n for _, n in plan] and sum(n for _, n in plan) == 7 and plan[0][0] == 0


# ----- fully connected ------------------------------------------------------------------------------
@given(n=st.integers(1, 6), fin=st.integers(1, 20), fout=st.integers(1, 20), bias=st.booleans(), dtype=dtypes,
       seed=st.integers(0, 2**16))
def test_linear_kernels_equal_reference(n, fin, fout, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n, fin)).astype(dtype), rng.standard_normal((fout, fin)).astype(dtype)
    b = rng.standard_normal(fout).astype(dtype) if bias else None
    y = K.linear_forward(x, w, b)
    gy = rng.standard_normal(y.shape).astype(dtype)
    y_ref, grads_ref = reference_op(F.linear, [x, w, b], gy)
    close(y, y_ref, dtype, scale=np.sqrt(fin))
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(K.linear_forward(x, w, b, relu=True), np.maximum(y, 0))
    gx, gw, gb = K.linear_backward(x, w, gy, need_bias=bias)
    close(gx, grads_ref[0], dtype, scale=np.sqrt(fout))
    close(gw, grads_ref[1], dtype, scale=np.sqrt(n))
    if bias:
        close(gb, grads_ref[2], dtype, scale=np.sqrt(n))
    gx, gw, gb = K.linear_backward(x, w, gy, need_x=False, need_weight=True, need_bias=False)
    assert gx is None and gb is None and gw.shape == w.shape


# ----- LRN ----------------------------------------------------------------------------------------
@given(size=st.integers(1, 7), groups=st.sampled_from([1, 2, 3]), c_per_group=st.integers(1, 7),
       hw=st.sampled_from([(3, 3), (1, 1), (23, 24)]),  # 23 x 24 = 552 pixels: more than one tile of 512
       beta=st.sampled_from([0.75, 0.5, 1.3]), alpha=st.sampled_from([1e-4, 0.3]), k=st.sampled_from([2.0, 1.0]),
       dtype=dtypes, seed=st.integers(0, 2**16))
def test_lrn_kernels_equal_reference(size, groups, c_per_group, hw, beta, alpha, k, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2, groups * c_per_group, *hw)) * 3).astype(dtype)
    params = dict(size=size, alpha=alpha, beta=beta, k=k, groups=groups)
    y = K.lrn_forward(x, size, alpha, beta, k, groups)
    gy = rng.standard_normal(y.shape).astype(dtype)
    y_ref, (gx_ref,) = reference_op(lambda x: F.local_response_norm(x, **params), [x], gy)
    close(y, y_ref, dtype, scale=3)
    close(K.lrn_backward(x, gy, size, alpha, beta, k, groups), gx_ref, dtype, scale=3)


def test_lrn_kernel_has_no_cross_group_leak():
    """A group whose channels are all zero stays exactly zero, whatever the other group holds."""
    x = np.zeros((1, 6, 2, 2), np.float32)
    x[:, 3:] = 5.0
    y = K.lrn_forward(x, 5, 0.3, 0.75, 2.0, 2)
    assert np.all(y[:, :3] == 0) and np.all(y[:, 3:] != 0)
    gx = K.lrn_backward(x, np.ones_like(x), 5, 0.3, 0.75, 2.0, 2)
    np.testing.assert_allclose(gx[:, :3], 2.0 ** -0.75, rtol=1e-6)  # only the diagonal term: x is 0 there


# ----- max-pool -----------------------------------------------------------------------------------
@pytest.mark.parametrize("max_size", [12, 48])  # 48: outputs of 16 columns and more take the per-window kernel
@given(data=st.data(), ties=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_maxpool_kernels_equal_reference(max_size, data, ties, dtype, seed):
    """Including ties (small integers repeat a lot): the gradient must go to the same winner."""
    geo = data.draw(pool_geometries(max_size=max_size, max_batch=3 if max_size <= 12 else 1))
    shape, k, stride, padding = geo["shape"], geo["k"], geo["stride"], geo["padding"]
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if ties else distinct_values(rng, shape)).astype(dtype)
    y, argmax = K.maxpool_forward(x, k, stride, padding)
    gy = rng.standard_normal(y.shape).astype(dtype)
    y_ref, (gx_ref,) = reference_op(lambda x: F.max_pool2d(x, k, stride, padding), [x], gy)
    np.testing.assert_array_equal(y, y_ref)
    assert argmax.dtype == np.int32
    close(K.maxpool_backward(gy, argmax, x.shape), gx_ref, dtype, scale=4)
    y_only, none = K.maxpool_forward(x, k, stride, padding, need_argmax=False)  # evaluation's forward
    np.testing.assert_array_equal(y_only, y_ref)
    assert none is None


@pytest.mark.parametrize("width", [3, 40])  # 40: a wide output, the per-window kernel
@pytest.mark.parametrize("need_argmax", [True, False])
def test_maxpool_kernel_nan_wins_like_reference(need_argmax, width):
    x = np.full((1, 1, 3, width), -1.0)
    x[0, 0, :, :3] = [[1.0, np.nan, 3.0], [np.nan, 2.0, 0.0], [5.0, 1.0, 2.0]]
    y, argmax = K.maxpool_forward(x, (2, 2), (1, 1), (0, 0), need_argmax=need_argmax)
    with mt.config.using(backend="reference"):
        y_ref = F.max_pool2d(mt.tensor(x), 2, 1).numpy()
    np.testing.assert_array_equal(y, y_ref)  # NaNs compare equal in assert_array_equal
    if need_argmax:
        assert argmax[0, 0, 0, 0] == 1  # the first NaN in row-major order


def test_maxpool_op_keeps_no_winners_when_no_gradient_is_wanted():
    """Under no_grad (evaluation) the numba op runs the forward without argmax; with a gradient, the
    op's backward still finds its winners."""
    x = distinct_values(np.random.default_rng(0), (2, 3, 7, 7)).astype(np.float32)
    with mt.config.using(backend="numba"):
        with mt.no_grad():
            y = F.max_pool2d(mt.tensor(x), 3, 2)
        t = mt.tensor(x, requires_grad=True)
        y_grad = F.max_pool2d(t, 3, 2)
        y_grad.backward(mt.tensor(np.ones(y_grad.shape, np.float32)))
    np.testing.assert_array_equal(y.numpy(), y_grad.numpy())
    assert t.grad.numpy().sum() == y_grad.numpy().size  # every output sent its 1 to one winner


# ----- elementwise --------------------------------------------------------------------------------
@given(shape=st.lists(st.integers(1, 40), min_size=1, max_size=4), dtype=dtypes, seed=st.integers(0, 2**16))
def test_relu_kernels_equal_reference(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::7] = 0.0  # exact zeros: the kink, where no gradient flows (as the reference)
    y = K.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    gy = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(K.relu_backward(y, gy), gy * (np.maximum(x, 0) > 0))


def test_relu_kernel_keeps_nan_like_np_maximum():
    y = K.relu_forward(np.array([np.nan, -1.0, 2.0], np.float32))
    np.testing.assert_array_equal(y, [np.nan, 0.0, 2.0])


@given(shape=st.lists(st.integers(1, 30), min_size=1, max_size=3), scale=st.sampled_from([1.0, 2.0, 1 / 0.7]),
       dtype=dtypes, seed=st.integers(0, 2**16))
def test_dropout_kernel_equals_reference(shape, scale, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    keep = rng.random(shape) >= 0.5
    close(K.dropout_apply(x, keep, scale), x * (keep.astype(dtype) * dtype(scale)), dtype)


@given(shape=st.lists(st.integers(1, 50), min_size=1, max_size=2), momentum=st.sampled_from([0.0, 0.9]),
       wd=st.sampled_from([0.0, 5e-4]), lr=st.sampled_from([0.01, 0.3]), dtype=dtypes, seed=st.integers(0, 2**16))
def test_sgd_kernel_equals_reference_rule(shape, momentum, wd, lr, dtype, seed):
    rng = np.random.default_rng(seed)
    w, v, g = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    w_ref, v_ref = w.copy(), v.copy()
    v_ref *= momentum
    v_ref -= (wd * lr) * w_ref
    v_ref -= lr * g
    w_ref += v_ref
    K.sgd_momentum_update_(w, v, g, momentum, wd, lr)
    close(v, v_ref, dtype)
    close(w, w_ref, dtype)


def test_workspace_is_reused_and_grows():
    a = K.workspace("test.ws", (4, 5), np.float32)
    b = K.workspace("test.ws", (2, 3), np.float32)
    assert np.shares_memory(a, b)  # the same buffer, reused
    c = K.workspace("test.ws", (100, 100), np.float32)
    assert c.shape == (100, 100) and c.flags.c_contiguous
    assert not np.shares_memory(K.workspace("test.other", (2, 3), np.float32), c)


# ----- threads and memory -------------------------------------------------------------------------
def test_run_parallel_keeps_order_and_runs_every_item():
    from minitorch_alex_kernels.cpu import parallel

    seen = []
    assert parallel.run_parallel(lambda i: seen.append(i) or i * i, range(50)) == [i * i for i in range(50)]
    assert sorted(seen) == list(range(50))


def test_run_parallel_uses_several_threads_and_reraises():
    import threading
    import time

    from minitorch_alex_kernels.cpu import parallel

    if parallel.get_num_threads() < 2:
        pytest.skip("one kernel thread configured")
    names = parallel.run_parallel(lambda i: time.sleep(0.01) or threading.current_thread().name, range(8))
    assert len(set(names)) >= 2

    def fail(i):
        if i == 5:
            raise KeyError("item 5")
        return i

    with pytest.raises(KeyError, match="item 5"):
        parallel.run_parallel(fail, range(8))


def test_run_parallel_nested_calls_run_inline():
    from minitorch_alex_kernels.cpu import parallel

    inner = parallel.run_parallel(lambda i: parallel.run_parallel(lambda j: (i, j), range(3)), range(4))
    assert inner == [[(i, j) for j in range(3)] for i in range(4)]


def test_blas_is_single_threaded_inside_parallel_work_and_restored():
    from minitorch_alex_kernels.cpu import parallel

    if not parallel.blas_controllable():
        pytest.skip("this BLAS cannot switch threads at run time")
    get = parallel._blas.get
    before = get()
    inside = parallel.run_parallel(lambda i: get(), range(4), uses_blas=True)
    assert inside == [1, 1, 1, 1] and get() == before


def test_split_range_covers_everything_once():
    from minitorch_alex_kernels.cpu.parallel import split_range

    for total, parts in [(10, 3), (2, 5), (1, 1), (100, 7)]:
        ranges = split_range(total, parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == total
        assert all(a < b for a, b in ranges) and all(r[1] == s[0] for r, s in zip(ranges, ranges[1:]))


def run_python(code, **env_changes):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINITORCH_ALEX_")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_importing_the_kernels_leaves_malloc_alone_and_the_setting_applies_it():
    """Importing kernels.cpu (or minitorch_alex) changes nothing process-wide; a training run
    applies mt.config.retain_freed_memory (on unless MINITORCH_ALEX_RETAIN_MEMORY=0)."""
    code = ("import minitorch_alex_kernels.cpu as K, minitorch_alex as mt; import minitorch_alex_kernels.cpu.memory as M; "
            "print(K.retaining(), M._mallopt is None, mt.config.apply_retain_freed_memory(), K.retaining())")
    imported, untouched, applied, after = run_python(code).stdout.split()
    assert imported == "False" and untouched == "True"  # libc's mallopt was not even looked up at import
    assert applied == after and applied in ("True", "False")  # True with glibc; other C libraries keep their malloc
    off = run_python(code, MINITORCH_ALEX_RETAIN_MEMORY="0").stdout.split()
    assert off == ["False", "True", "False", "False"]
    toggled = run_python("import minitorch_alex as mt, minitorch_alex_kernels.cpu as K; mt.config.set(retain_freed_memory=True); "
                         "a = K.retaining(); mt.config.set(retain_freed_memory=False); print(a, K.retaining())")
    assert toggled.stdout.split()[1] == "False"
    with pytest.raises(ValueError, match="process-wide"), mt.config.using(retain_freed_memory=True):
        pass


# ----- the settings and the backend switch ---------------------------------------------------------
def test_config_using_is_scoped_restored_and_validated():
    start = mt.config.backend
    with mt.config.using(backend="reference"):
        assert mt.config.backend == "reference"
        with pytest.raises(ZeroDivisionError), mt.config.using(backend="numba", tf32=True):
            assert (mt.config.backend, mt.config.tf32) == ("numba", True)
            1 / 0
        assert (mt.config.backend, mt.config.tf32) == ("reference", False)  # restored even after an exception
    assert mt.config.backend == start
    with pytest.raises(ValueError, match="unknown backend 'gpu'"), mt.config.using(backend="gpu"):
        pass
    with pytest.raises(TypeError, match="tf32 must be True or False"):
        mt.config.set(tf32="yes")
    with pytest.raises(AttributeError, match=r"mt.config.backend is read-only: use mt.config.set\(backend"):
        mt.config.backend = "reference"
    previous = mt.config.set(backend="reference")
    try:
        assert mt.config.backend == "reference"
    finally:
        mt.config.set(**previous)
    assert mt.config.backend == start


def test_config_using_is_per_thread_and_set_is_process_wide():
    import threading

    seen = {}
    with mt.config.using(backend="reference"):
        worker = threading.Thread(target=lambda: seen.update(backend=mt.config.backend))
        worker.start()
        worker.join()
    assert seen["backend"] == "auto"  # the other thread never saw this thread's override
    previous = mt.config.set(tf32=True)
    try:
        worker = threading.Thread(target=lambda: seen.update(tf32=mt.config.tf32))
        worker.start()
        worker.join()
    finally:
        mt.config.set(**previous)
    assert seen["tf32"] is True


def test_default_backend_is_auto_and_env_vars_give_start_values():
    code = "import minitorch_alex as mt; print(mt.config.backend, mt.config.tf32)"
    assert run_python(code).stdout.split() == ["auto", "False"]
    assert run_python(code, MINITORCH_ALEX_BACKEND="reference").stdout.split() == ["reference", "False"]
    assert run_python(code, MINITORCH_ALEX_BACKEND="fast", MINITORCH_ALEX_TF32="1").stdout.split() == [
        "auto", "True"]  # the old name of 'auto'
    bad = run_python(code, MINITORCH_ALEX_BACKEND="turbo")
    assert bad.returncode != 0 and "MINITORCH_ALEX_BACKEND='turbo'" in bad.stderr


def test_numba_only_for_numpy_float_arrays():
    from minitorch_alex.dispatch import backend_for

    for setting in ("auto", "numba"):
        with mt.config.using(backend=setting):
            assert backend_for("ReLU", (np.zeros(3, np.float32), np.zeros(3), None)) == "numba"
            assert backend_for("ReLU", (np.zeros(3, np.int64),)) == "reference"
            assert backend_for("ReLU", (np.zeros(3, np.float16),)) == "reference"

            class NotNumpy:  # e.g. a CuPy array: never handed to the CPU kernels
                dtype = np.dtype(np.float32)

            assert backend_for("ReLU", (np.zeros(3, np.float32), NotNumpy())) == "reference"
            # an op's own condition: dropout's kernels take a boolean keep-mask only
            x = np.zeros(3, np.float32)
            assert backend_for("Dropout", (x,), {"mask": np.ones(3, bool)}) == "numba"
            assert backend_for("Dropout", (x,), {"mask": np.ones(3, np.float32)}) == "reference"
    for setting in ("reference", "cuda"):  # 'cuda' takes no NumPy array: the reference does
        with mt.config.using(backend=setting):
            assert backend_for("ReLU", (np.zeros(3, np.float32),)) == "reference"


def test_backward_uses_the_path_chosen_at_forward():
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal((2, 4, 5, 5)), requires_grad=True)
    with mt.config.using(backend="numba"):
        y = F.local_response_norm(x, 3, alpha=0.3)
    assert y._node.backend == "numba" and type(y._node.impl) is K.LocalResponseNorm
    with mt.config.using(backend="reference"):
        y.backward(mt.tensor(np.ones(y.shape)))
    _, (gx_ref,) = reference_op(lambda x: F.local_response_norm(x, 3, alpha=0.3), [x.numpy()], np.ones(y.shape))
    np.testing.assert_allclose(x.grad.numpy(), gx_ref, rtol=1e-12)


# ----- every op through the public API, both backends -----------------------------------------------
@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_leaf_keeps_an_op_made_gradient_without_copying_but_never_a_shared_one(backend):
    rng = np.random.default_rng(0)
    w = mt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    x = mt.tensor(rng.standard_normal((2, 4)))
    with mt.config.using(backend=backend):
        F.linear(x, w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.ones((2, 3)).T @ x.numpy())
    # Add hands the same array to both inputs: each leaf must get its own copy
    a, b = mt.tensor(np.ones(3), requires_grad=True), mt.tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.numpy()[0] = 99.0
    assert b.grad.numpy()[0] == 1.0



def test_fused_relu_ops_are_one_node_on_every_backend():
    """conv2d_relu / linear_relu with a bias are one fused node (Conv2dReLU / LinearReLU), run
    by the numba kernels or by the reference; without a bias, exactly the two ops."""
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal((1, 2, 5, 5)).astype(np.float32), requires_grad=True)
    w = mt.tensor(rng.standard_normal((2, 2, 3, 3)).astype(np.float32), requires_grad=True)
    b = mt.tensor(np.zeros(2, np.float32), requires_grad=True)
    v = mt.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    fw, fb = mt.tensor(rng.standard_normal((5, 4)).astype(np.float32)), mt.tensor(np.zeros(5, np.float32))
    for backend in ("numba", "reference"):
        with mt.config.using(backend=backend):
            y = F.conv2d_relu(x, w, b, padding=1)
            assert (grad_fn_name(y), y._node.backend) == ("Conv2dReLU", backend)
            y = F.linear_relu(v, fw, fb)
            assert (grad_fn_name(y), y._node.backend) == ("LinearReLU", backend)
            assert grad_fn_name(F.conv2d_relu(x, w, None, padding=1)) == "ReLU"
            assert grad_fn_name(F.linear_relu(v, fw, None)) == "ReLU"
    with pytest.raises(ValueError, match="conv2d: expected bias of shape"):
        F.conv2d_relu(x, w, mt.tensor(np.zeros(3, np.float32)))


def test_op_records_which_path_it_took():
    x = mt.tensor(np.ones((1, 2, 4, 4), np.float32), requires_grad=True)
    with mt.config.using(backend="numba"):
        node = F.max_pool2d(x, 2)._node
        assert node.backend == "numba" and type(node.impl) is K.MaxPool2d
    with mt.config.using(backend="reference"):
        node = F.max_pool2d(x, 2)._node
        assert node.backend == "reference" and "impl" not in node.__dict__
    assert (x + x)._node.backend == "reference"  # ops with one implementation


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_step_numba_and_reference_agree(dtype):
    results = {}
    for backend in ("reference", "numba"):
        rng = np.random.default_rng(0)
        params = [mt.nn.Parameter(rng.standard_normal(s), dtype=dtype) for s in [(3, 4), (5,)]]
        opt = mt.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
        with mt.config.using(backend=backend):
            for _ in range(3):
                for p in params:
                    p.grad = mt.tensor(rng.standard_normal(p.shape), dtype=dtype)
                opt.step()
        results[backend] = [p.numpy().copy() for p in params] + [v.copy() for v in opt.state_dict()["state"]["velocity"]]
    for a, b in zip(results["numba"], results["reference"]):
        close(a, b, dtype)


def test_alexnet_training_step_agrees_between_backends():
    """A whole float64 training step of the paper's network (with dropout) on both backends."""
    results = {}
    for backend in ("reference", "numba"):
        mt.manual_seed(0)
        model = mt.models.alexnet(num_classes=10).to(dtype=np.float64)
        opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x = mt.tensor(np.random.default_rng(0).standard_normal((2, 3, 224, 224)))
        with mt.config.using(backend=backend):
            loss = F.cross_entropy(model(x), [3, 7])
            loss.backward()
            opt.step()
        results[backend] = (loss.item(), {n: p.numpy().copy() for n, p in model.named_parameters()})
    assert results["numba"][0] == pytest.approx(results["reference"][0], rel=1e-10)
    for name, p in results["numba"][1].items():
        np.testing.assert_allclose(p, results["reference"][1][name], rtol=1e-9, atol=1e-13, err_msg=name)


def test_constructing_a_trainer_changes_nothing_process_wide(tmp_path):
    """The Trainer draws from its own generator (seeded by its config) and scopes TF32 to its
    own calls: the caller's global generator and settings are as they were."""
    from minitorch_alex.train import TrainConfig, Trainer

    model = mt.nn.Sequential(mt.nn.Linear(2, 2))
    mt.manual_seed(7)
    expected = np.random.default_rng(7).random(3)
    cfg = TrainConfig(out=str(tmp_path), devices=("cpu",), seed=0, tf32=True, plots=False, progress=False)
    from minitorch_alex.data import StoreSplit

    split = StoreSplit(np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1]), np.zeros((8, 8, 3), np.float32),
                       np.ones(3, np.float32), np.eye(3, dtype=np.float32), ["a", "b"])
    trainer = Trainer(cfg, split, split, ["a", "b"], model=model)
    np.testing.assert_array_equal(mt.random.default_generator().random(3), expected)
    assert mt.config.tf32 is False
    np.testing.assert_array_equal(trainer.rng.random(3), np.random.default_rng(0).random(3))
