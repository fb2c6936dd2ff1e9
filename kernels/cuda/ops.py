"""Array-level wrappers around the CUDA kernels: CuPy arrays in, CuPy arrays out.

Every function matches the NumPy reference in ``minitorch_alex.ops`` (and the numba kernels in
``kernels.cpu``) in shapes and meaning; ``tests/test_gpu.py`` checks each against it. Kernels
are launched on the current stream under the device that holds the first array, so a tower on
``cuda:1`` runs its kernels there whatever the current device is.

GEMMs go to cuBLAS through ``cupy.matmul``, batched over convolution groups (one call for both
of AlexNet's towers). With ``minitorch_alex.backend.set_tf32(True)`` float32 GEMMs use TF32
tensor cores.
"""
from __future__ import annotations

import contextlib
import sys

import numpy as np


def cupy():
    """The array module (cupy; the emulation test swaps in numpy through the package)."""
    return sys.modules[__package__].cupy()


def function(source_name, kernel, dtype):
    """The package's kernel lookup, looked up at call time so a test can swap it."""
    return sys.modules[__package__].function(source_name, kernel, dtype)


def _on(array):
    """The device context of a CuPy array (launches and allocations go to its GPU)."""
    device = getattr(array, "device", None)
    return device if hasattr(device, "__enter__") else contextlib.nullcontext()

BLOCK = 256  # threads per block: enough warps to hide memory latency on every kernel here
MAX_BLOCKS = 1 << 20  # grid-stride loops cover the rest
MAX_GRID_Y = 65535
_INT_MAX = 2**31 - 1


def _i32(*values):
    """Kernel int arguments; the kernels index with 32-bit ints, so sizes must fit."""
    for v in values:
        if v > _INT_MAX:
            raise ValueError(f"CUDA kernels index with 32-bit ints; a size of {v} is too large (split the batch)")
    return [np.int32(v) for v in values]


def _blocks(total):
    return max(1, min((total + BLOCK - 1) // BLOCK, MAX_BLOCKS))


def _launch(kern, total, args, grid_y=1):
    kern((_blocks(total), grid_y), (BLOCK,), tuple(args))


def _out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


# ----- im2col / col2im ---------------------------------------------------------------------------
def im2col(x, kernel_size, stride=(1, 1), padding=(0, 0), pad_value=0.0):
    """x (N, C, H, W) -> col (C*kh*kw, N*OH*OW), the reference layout."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    rows, ncols = c * kh * kw, n * oh * ow
    with _on(x):
        col = cp.empty((rows, ncols), dtype=x.dtype)
        _i32(ncols, x.size)  # rows are walked by grid.y, and row offsets are 64-bit
        _launch(function("im2col", "im2col", x.dtype), ncols,
                [x, col, *_i32(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow), np.float64(pad_value)],
                grid_y=min(rows, MAX_GRID_Y))
    return col


def col2im(col, x_shape, kernel_size, stride=(1, 1), padding=(0, 0)):
    """The adjoint of im2col: col (C*kh*kw, N*OH*OW) -> x (N, C, H, W), overlapping entries added."""
    cp = cupy()
    col = cp.ascontiguousarray(col)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    with _on(col):
        x = cp.empty(tuple(x_shape), dtype=col.dtype)
        _launch(function("im2col", "col2im", col.dtype), x.size,
                [col, x, *_i32(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)])
    return x


# ----- convolution -------------------------------------------------------------------------------
def conv2d_forward(x, weight, bias, stride, padding, groups, relu=False):
    """(y (N, O, OH, OW), col) for x (N, C, H, W), weight (O, C/G, kh, kw), bias (O,) or None.

    One im2col, one batched GEMM over the G groups, then one pass that moves the GEMM's
    (O, N*OH*OW) rows into NCHW while adding the bias (and the ReLU when ``relu``). ``col`` is
    what the backward pass needs.
    """
    cp = cupy()
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    oh, ow = _out_size(h, kh, stride[0], padding[0]), _out_size(w, kw, stride[1], padding[1])
    p = oh * ow
    with _on(x):
        col = im2col(x, (kh, kw), stride, padding)  # (C*kh*kw, N*P)
        wmat = cp.ascontiguousarray(weight).reshape(groups, o // groups, cg * kh * kw)
        rows = cp.matmul(wmat, col.reshape(groups, cg * kh * kw, n * p))  # (G, O/G, N*P)
        y = cp.empty((n, o, oh, ow), dtype=x.dtype)
        b = bias if bias is not None else rows  # any array of the dtype: not read without a bias
        _launch(function("elementwise", "bias_act_nchw", x.dtype), y.size,
                [rows, cp.ascontiguousarray(b), y, *_i32(n, o, p, bias is not None, bool(relu))])
    return y, col


def conv2d_backward(col, weight, gy, x_shape, stride, padding, groups, need_x=True, need_weight=True,
                    need_bias=True):
    """(gx, gw, gb) of the convolution (None where not needed), from the forward pass's ``col``:

        dW_g = dY_g · col_gᵀ,   dcol_g = W_gᵀ · dY_g,   dx = col2im(dcol),   db = sum of dY
    """
    cp = cupy()
    n = x_shape[0]
    o, cg, kh, kw = weight.shape
    k = cg * kh * kw
    with _on(gy):
        p = gy.shape[2] * gy.shape[3]
        # (N, O, P) -> (G, O/G, N*P): the GEMM wants output channels as rows
        gy_rows = cp.ascontiguousarray(gy.reshape(n, o, p).transpose(1, 0, 2)).reshape(groups, o // groups, n * p)
        gx = gw = gb = None
        if need_weight:
            gw = cp.matmul(gy_rows, col.reshape(groups, k, n * p).transpose(0, 2, 1)).reshape(weight.shape)
        if need_x:
            wmat = cp.ascontiguousarray(weight).reshape(groups, o // groups, k)
            gcol = cp.matmul(wmat.transpose(0, 2, 1), gy_rows)  # (G, K/G, N*P)
            gx = col2im(gcol.reshape(groups * k, n * p), x_shape, (kh, kw), stride, padding)
        if need_bias:  # a float32 sum even for half gradients: N*P terms per channel
            gb = gy.sum(axis=(0, 2, 3), dtype=np.float32 if gy.dtype.itemsize < 4 else gy.dtype).astype(gy.dtype)
    return gx, gw, gb


def linear_forward(x, weight, bias, relu=False):
    """y (N, out) = x (N, in) · weightᵀ (+ bias, then ReLU if ``relu``), the bias added in place."""
    cp = cupy()
    with _on(x):
        y = cp.matmul(x, weight.T)
        if bias is not None or relu:
            bias_act_rows_(y, bias if bias is not None else cp.zeros(y.shape[1], y.dtype), relu)
    return y


def bias_act_rows_(y, bias, relu=False):
    """In place: y (N, O) += bias (O,), then max(., 0) if ``relu``. y must be C-contiguous."""
    cp = cupy()
    if not y.flags.c_contiguous:
        raise ValueError("bias_act_rows_: y must be C-contiguous")
    with _on(y):
        _launch(function("elementwise", "bias_act_rows", y.dtype), y.size,
                [y, cp.ascontiguousarray(bias), *_i32(y.shape[0], y.shape[1], bool(relu))])
    return y


# ----- LRN ---------------------------------------------------------------------------------------
def lrn_forward(x, size, alpha, beta, k, groups):
    """(y, scale), both (N, C, H, W): the paper's LRN (alpha times the sum) and the denominator
    base s = k + alpha * sum of squares, which the backward pass reuses."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    n, c, h, w = x.shape
    with _on(x):
        y, scale = cp.empty_like(x), cp.empty_like(x)
        _launch(function("lrn", "lrn_forward", x.dtype), x.size,
                [x, y, scale, *_i32(n, c, h * w, groups, size // 2, (size - 1) // 2),
                 np.float64(alpha), np.float64(beta), np.float64(k)])
    return y, scale


def lrn_backward(x, scale, gy, size, alpha, beta, groups):
    """gx (N, C, H, W), the LRN gradient at x for the output gradient gy."""
    cp = cupy()
    n, c, h, w = x.shape
    with _on(x):
        x, gy = cp.ascontiguousarray(x), cp.ascontiguousarray(gy)
        gx = cp.empty_like(x)
        _launch(function("lrn", "lrn_backward", x.dtype), x.size,
                [x, scale, gy, gx, *_i32(n, c, h * w, groups, size // 2, (size - 1) // 2),
                 np.float64(alpha), np.float64(beta)])
    return gx


# ----- max pooling -------------------------------------------------------------------------------
def maxpool_forward(x, kernel_size, stride, padding):
    """(y, argmax) for x (N, C, H, W); argmax (N, C, OH, OW) int32 holds h*W + w of each winner."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    with _on(x):
        y = cp.empty((n, c, oh, ow), dtype=x.dtype)
        argmax = cp.empty((n, c, oh, ow), dtype=cp.int32)
        _launch(function("pool", "maxpool_forward", x.dtype), y.size,
                [x, y, argmax, *_i32(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)])
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kernel_size, stride, padding):
    """gx of ``x_shape``: each input pixel gathers the gradients of the windows it won."""
    cp = cupy()
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh, ow = argmax.shape[2], argmax.shape[3]
    with _on(gy):
        gy = cp.ascontiguousarray(gy)
        gx = cp.empty(tuple(x_shape), dtype=gy.dtype)
        _launch(function("pool", "maxpool_backward", gy.dtype), gx.size,
                [gy, argmax, gx, *_i32(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)])
    return gx


# ----- elementwise -------------------------------------------------------------------------------
def dropout_apply(x, keep, scale):
    """x * scale where ``keep`` (bool, x's shape) else 0, as a new array."""
    cp = cupy()
    with _on(x):
        x, keep = cp.ascontiguousarray(x), cp.ascontiguousarray(keep)
        y = cp.empty_like(x)
        _launch(function("elementwise", "dropout_apply", x.dtype), x.size,
                [x, keep, y, *_i32(x.size), np.float64(scale)])
    return y


def relu_forward(x):
    cp = cupy()
    with _on(x):
        x = cp.ascontiguousarray(x)
        y = cp.empty_like(x)
        _launch(function("elementwise", "relu_forward", x.dtype), x.size, [x, y, *_i32(x.size)])
    return y


def relu_backward(y, gy):
    """gy where y > 0, else 0 (y is the forward output)."""
    cp = cupy()
    with _on(y):
        gy = cp.ascontiguousarray(gy)
        gx = cp.empty_like(y)
        _launch(function("elementwise", "relu_backward", y.dtype), y.size, [y, gy, gx, *_i32(y.size)])
    return gx


# ----- SGD ---------------------------------------------------------------------------------------
def sgd_momentum_update_(w, v, g, momentum, weight_decay, lr):
    """The paper's update in place on C-contiguous w, v (and gradient g) of one shape and dtype."""
    with _on(w):
        _launch(function("sgd", "sgd_momentum", w.dtype), w.size,
                [w, v, g, *_i32(w.size), np.float64(momentum), np.float64(weight_decay * lr), np.float64(lr)])
