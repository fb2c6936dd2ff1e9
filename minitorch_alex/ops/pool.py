"""Max pooling, overlapping windows allowed (AlexNet pools 3x3 windows with stride 2).

Pooling is im2col with one channel at a time: unroll each channel's windows into columns
(padding with -inf so padding never wins), take the max of every column, and remember which
row won. Backward sends each output gradient to the winner only; col2im adds them up where
windows overlap. Ties go to the first entry of the window in row-major order.

This is the reference (``minitorch_alex.dispatch`` says which backend runs a call).
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..device import get_array_module
from .common import check_float, check_rank, check_window_fits, conv_output_size, pair
from .im2col import col2im, im2col


class MaxPool2d(Function):
    fresh_grads = True  # each input's gradient is a new array

    def forward(self, x, kernel_size, stride, padding):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        oh, ow = (conv_output_size(s, k, st, p) for s, k, st, p in zip((h, w), kernel_size, stride, padding))
        col = im2col(x.reshape(n * c, 1, h, w), kernel_size, stride, padding, pad_value=-np.inf)  # (kh*kw, N*C*OH*OW)
        self.argmax = col.argmax(axis=0)
        y = col[self.argmax, xp.arange(col.shape[1])]
        self.x_shape, self.kernel_size, self.stride, self.padding = x.shape, kernel_size, stride, padding
        return y.reshape(n, c, oh, ow)

    def backward(self, gy):
        xp = get_array_module(gy)
        n, c, h, w = self.x_shape
        kh, kw = self.kernel_size
        gcol = xp.zeros((kh * kw, gy.size), dtype=gy.dtype)
        gcol[self.argmax, xp.arange(gy.size)] = gy.reshape(-1)
        gx = col2im(gcol, (n * c, 1, h, w), self.kernel_size, self.stride, self.padding)
        return (gx.reshape(self.x_shape),)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over kh x kw windows of ``x`` (N, C, H, W); ``stride`` defaults to the kernel size.

    Output (N, C, OH, OW) with OH = floor((H + 2*padding - kh) / stride) + 1 (PyTorch's
    ceil_mode=False; AlexNet's 55 -> 27 -> 13 -> 6 is the same either way).
    """
    op = "max_pool2d"
    kernel_size = pair(kernel_size, "kernel_size", op)
    stride = kernel_size if stride is None else pair(stride, "stride", op)
    padding = pair(padding, "padding", op)
    check_rank(x, 4, "(N, C, H, W)", op)
    check_float(x, op)
    if min(kernel_size) < 1 or min(stride) < 1:
        raise ValueError(f"{op}: expected kernel_size >= 1 and stride >= 1, got {kernel_size} and {stride}")
    if any(2 * p > k for p, k in zip(padding, kernel_size)) or min(padding) < 0:
        raise ValueError(f"{op}: padding must be between 0 and half the kernel size {kernel_size}, got {padding}")
    check_window_fits(x.shape[2:], kernel_size, padding, op)
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)
