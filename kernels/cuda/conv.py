"""Convolution on the GPU: CUDA im2col/col2im gathers (``im2col.cu``) and one 2-D cuBLAS GEMM
per channel group into preallocated outputs (``_launch.gemm``: the path that honours the
compute type, TF32 included, and keeps float16/bfloat16 inputs 16-bit).

Shapes: x (N, C, H, W), weight (O, C/G, kh, kw), bias (O,), y (N, O, OH, OW); col, the column
matrix, is (C*kh*kw, N*OH*OW) in the reference layout (minitorch_alex/ops/im2col.py), so group
g's rows are the contiguous block [g*K, (g+1)*K) with K = C/G*kh*kw.
"""
from __future__ import annotations

import numpy as np

from ..common import conv_output_size
from . import _launch as L
from .gemm_layer import GemmLayer


def im2col(x, kernel_size, stride=(1, 1), padding=(0, 0), pad_value=0.0):
    """x (N, C, H, W) -> col (C*kh*kw, N*OH*OW), the reference layout."""
    cp = L.cupy()
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = L.pair(kernel_size), L.pair(stride), L.pair(padding)
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    rows, ncols = c * kh * kw, n * oh * ow
    with L.on(x):
        x = cp.ascontiguousarray(x)
        col = cp.empty((rows, ncols), dtype=x.dtype)
        L.i32(ncols, n * c, rows)  # columns and rows are 32-bit; row offsets are 64-bit
        L.launch(L.function("im2col", "im2col", x.dtype), ncols,
                 [x, col, *L.i32(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow), np.float64(pad_value)],
                 grid_y=min(rows, L.MAX_GRID_Y))
    return col


def col2im(col, x_shape, kernel_size, stride=(1, 1), padding=(0, 0)):
    """The adjoint of im2col: col (C*kh*kw, N*OH*OW) -> x (N, C, H, W), overlapping entries added."""
    cp = L.cupy()
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = L.pair(kernel_size), L.pair(stride), L.pair(padding)
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    with L.on(col):
        col = cp.ascontiguousarray(col)
        x = cp.empty(tuple(x_shape), dtype=col.dtype)
        L.i32(n * oh * ow, n * c)
        L.launch(L.function("im2col", "col2im", col.dtype), x.size,
                 [col, x, *L.i32(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)])
    return x


def conv2d_forward(x, weight, bias, stride, padding, groups, relu=False, tf32=None):
    """(y (N, O, OH, OW), col): one im2col, one GEMM per group into (G, O/G, N*OH*OW), then one
    pass that moves those rows into NCHW adding the bias (and the ReLU when ``relu``)."""
    cp = L.cupy()
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    stride, padding = L.pair(stride), L.pair(padding)
    oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    p, k, og = oh * ow, cg * kh * kw, o // groups
    with L.on(x):
        col = im2col(x, (kh, kw), stride, padding)
        wmat = cp.ascontiguousarray(weight).reshape(groups, og, k)
        rows = cp.empty((groups, og, n * p), dtype=x.dtype)
        for g in range(groups):
            L.gemm(wmat[g], col[g * k:(g + 1) * k], rows[g], tf32)
        y = cp.empty((n, o, oh, ow), dtype=x.dtype)
        b = cp.ascontiguousarray(bias) if bias is not None else rows  # not read without a bias
        L.launch(L.function("elementwise", "bias_act_nchw", x.dtype), y.size,
                 [rows, b, y, *L.i32(n, o, p, bias is not None, bool(relu))])
    return y, col


def conv2d_backward(col, weight, gy, x_shape, stride, padding, groups, need_x=True, need_weight=True,
                    need_bias=True, tf32=None):
    """(gx, gw, gb) of the convolution (None where not needed), from the forward pass's ``col``:

        dW_g = dY_g · col_gᵀ,   dcol_g = W_gᵀ · dY_g,   dx = col2im(dcol),   db = sum of dY

    col_gᵀ and W_gᵀ are transposed views, which the 2-D GEMM takes as they are (no copy).
    """
    cp = L.cupy()
    n = x_shape[0]
    o, cg, kh, kw = weight.shape
    k, og = cg * kh * kw, o // groups
    with L.on(gy):
        p = gy.shape[2] * gy.shape[3]
        # (N, O, P) -> (G, O/G, N*P): the GEMMs want output channels as rows. This copy is kept:
        # (O, N*P) is no strided view of (N, O, P), and the alternatives cost more. N GEMMs per
        # group (one per image, accumulating) are 128 launches at batch 128 (~5 us each), where
        # the copy moves 2 x 149 MB for conv1's gy (the largest) in ~0.1 ms at H100 bandwidth;
        # CuPy's batched GEMM upcasts float16 and has no bfloat16 (see _launch.gemm).
        gy_rows = cp.ascontiguousarray(gy.reshape(n, o, p).transpose(1, 0, 2)).reshape(groups, og, n * p)
        gx = gw = gb = None
        if need_weight:
            gw = cp.empty((groups, og, k), dtype=gy.dtype)
            for g in range(groups):
                L.gemm(gy_rows[g], col[g * k:(g + 1) * k].T, gw[g], tf32)
            gw = gw.reshape(weight.shape)
        if need_x:
            wmat = cp.ascontiguousarray(weight).reshape(groups, og, k)
            gcol = cp.empty((groups * k, n * p), dtype=gy.dtype)
            for g in range(groups):
                L.gemm(wmat[g].T, gy_rows[g], gcol[g * k:(g + 1) * k], tf32)
            gx = col2im(gcol, x_shape, (kh, kw), stride, padding)
        if need_bias:  # float32 sums for 16-bit gradients: N*P terms per channel
            gb = L.sum_rows(gy, (0, 2, 3))
    return gx, gw, gb


class Conv2d(GemmLayer):
    """conv2d(x, weight[, bias], stride=, padding=, groups=) -> y; keeps col for the backward pass."""

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), groups=1):
        y, col = conv2d_forward(x, weight, bias, stride, padding, groups, relu=self.relu, tf32=self.tf32)
        self._save(y, bias, col=col, weight=weight, x_shape=x.shape, stride=stride, padding=padding, groups=groups)
        return y

    def backward(self, gy):
        gy, need_x, need_w, need_b = self._grad_in(gy)
        return self._out(*conv2d_backward(self.col, self.weight, gy, self.x_shape, self.stride, self.padding,
                                          self.groups, need_x, need_w, need_b, tf32=self.tf32))


class Conv2dReLU(Conv2d):
    """relu(conv2d(...)) in one pass (the ReLU applied while moving the GEMM's rows into NCHW);
    the backward pass masks gy with the saved output."""

    relu = True
