"""Pooling: max pooling (overlapping windows allowed: AlexNet pools 3x3 windows with stride 2),
average pooling and adaptive average pooling.

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

    def forward(self, x, kernel_size, stride, padding, dilation=(1, 1)):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        oh, ow = (conv_output_size(*a) for a in zip((h, w), kernel_size, stride, padding, dilation))
        col = im2col(x.reshape(n * c, 1, h, w), kernel_size, stride, padding, pad_value=-np.inf,
                     dilation=dilation)  # (kh*kw, N*C*OH*OW)
        self.argmax = col.argmax(axis=0)
        y = col[self.argmax, xp.arange(col.shape[1])]
        self.x_shape, self.kernel_size, self.stride, self.padding = x.shape, kernel_size, stride, padding
        self.dilation = dilation
        return y.reshape(n, c, oh, ow)

    def backward(self, gy):
        xp = get_array_module(gy)
        n, c, h, w = self.x_shape
        kh, kw = self.kernel_size
        gcol = xp.zeros((kh * kw, gy.size), dtype=gy.dtype)
        gcol[self.argmax, xp.arange(gy.size)] = gy.reshape(-1)
        gx = col2im(gcol, (n * c, 1, h, w), self.kernel_size, self.stride, self.padding, self.dilation)
        return (gx.reshape(self.x_shape),)


def _pool_args(x, kernel_size, stride, padding, op, dilation=1):
    kernel_size = pair(kernel_size, "kernel_size", op)
    stride = kernel_size if stride is None else pair(stride, "stride", op)
    padding, dilation = pair(padding, "padding", op), pair(dilation, "dilation", op)
    check_rank(x, 4, "(N, C, H, W)", op)
    check_float(x, op)
    if min(kernel_size) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{op}: expected kernel_size, stride and dilation >= 1, got {kernel_size}, {stride} and {dilation}")
    if any(2 * p > k for p, k in zip(padding, kernel_size)) or min(padding) < 0:
        raise ValueError(f"{op}: padding must be between 0 and half the kernel size {kernel_size}, got {padding}")
    check_window_fits(x.shape[2:], kernel_size, padding, op, dilation)
    return kernel_size, stride, padding, dilation


def ceil_overhang(size, kernel, stride, padding, dilation=1):
    """How far ``ceil_mode``'s last window reaches past the padded input (0 or more), PyTorch's rule:
    OH = ceil((H + 2p - span) / s) + 1 with span = d(k - 1) + 1, less one if that window would
    start in the right padding."""
    span = dilation * (kernel - 1) + 1
    out = -(-(size + 2 * padding - span) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return max(0, (out - 1) * stride + span - (size + 2 * padding))


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over kh x kw windows of ``x`` (N, C, H, W); ``stride`` defaults to the kernel size.

    Output (N, C, OH, OW) with OH = floor((H + 2*padding - kh) / stride) + 1 (AlexNet's
    55 -> 27 -> 13 -> 6 is the same either way); ``dilation`` d spaces a window's taps d apart
    (it then spans d(kh - 1) + 1 rows); ``ceil_mode``: rounded up, as PyTorch's, by first padding
    the bottom and right with -inf as far as the last window reaches (so every backend's kernel
    runs it unchanged). Arguments in PyTorch's order.
    """
    op = "max_pool2d"
    kernel_size, stride, padding, dilation = _pool_args(x, kernel_size, stride, padding, op, dilation)
    if ceil_mode:
        from .shape import pad

        extra = [ceil_overhang(*a) for a in zip(x.shape[2:], kernel_size, stride, padding, dilation)]
        if any(extra):
            x = pad(x, (0, extra[1], 0, extra[0]), value=-np.inf)
    # only this reference code has dilated windows: dilation is passed only where it is not (1, 1),
    # and dispatch.REFERENCE_ONLY sends such a call here
    dilated = {} if dilation == (1, 1) else dict(dilation=dilation)
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding, **dilated)


class AvgPool2d(Function):
    """The mean over each window: im2col of the zero-padded input, a sum per column, a division by
    the window's count (``counts``, one per output position); backward spreads gy / count."""

    def forward(self, x, kernel_size, stride, widths, counts):
        n, c, h, w = x.shape
        xp = get_array_module(x)
        xpad = xp.pad(x.reshape(n * c, 1, h, w), ((0, 0), (0, 0)) + widths)
        col = im2col(xpad, kernel_size, stride)  # (kh*kw, N*C*OH*OW)
        oh, ow = counts.shape
        self.x_shape, self.pad_shape, self.kernel_size, self.stride, self.widths = x.shape, xpad.shape, kernel_size, stride, widths
        self.counts = counts
        return (col.sum(axis=0).reshape(n * c, oh, ow) / counts).reshape(n, c, oh, ow)

    def backward(self, gy):
        xp = get_array_module(gy)
        n, c, h, w = self.x_shape
        kh, kw = self.kernel_size
        share = (gy.reshape(n * c, *self.counts.shape) / self.counts).reshape(1, -1)
        gcol = xp.broadcast_to(share, (kh * kw, share.shape[1]))
        gpad = col2im(gcol, self.pad_shape, self.kernel_size, self.stride)
        (top, _), (left, _) = self.widths
        return (gpad[:, :, top:top + h, left:left + w].reshape(self.x_shape),)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """The mean over kh x kw windows of ``x`` (N, C, H, W), as PyTorch's: ``stride`` defaults to the
    kernel size; ``count_include_pad`` counts the zero padding in the divisor; ``ceil_mode`` rounds
    the output size up, and the part of a window past the padded input is never counted."""
    op = "avg_pool2d"
    kernel_size, stride, padding, _ = _pool_args(x, kernel_size, stride, padding, op)
    extra = [ceil_overhang(n, k, s, p) if ceil_mode else 0 for n, k, s, p in zip(x.shape[2:], kernel_size, stride, padding)]
    widths = tuple((p, p + e) for p, e in zip(padding, extra))
    # each window's divisor: the window over a map of ones where a value counts
    h, w = x.shape[2:]
    mask = np.zeros((1, 1, h + sum(widths[0]), w + sum(widths[1])))
    inner = [(0, n + 2 * p) if count_include_pad else (p, p + n) for n, p in zip((h, w), padding)]
    mask[:, :, inner[0][0]:inner[0][1], inner[1][0]:inner[1][1]] = 1
    oh, ow = conv_output_size(mask.shape[2], kernel_size[0], stride[0], 0), conv_output_size(mask.shape[3], kernel_size[1], stride[1], 0)
    counts = im2col(mask, kernel_size, stride).sum(axis=0).reshape(oh, ow)
    with x.device.context():
        counts = x.xp.asarray(counts, dtype=x.dtype)
    return AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, widths=widths, counts=counts)


class AdaptiveAvgPool2d(Function):
    """Output cell (i, j) of (OH, OW) is the mean of rows floor(i H / OH) .. ceil((i + 1) H / OH) - 1
    and the columns likewise (PyTorch's windows: they may overlap and differ in size)."""

    def forward(self, x, output_size):
        xp = get_array_module(x)
        (oh, ow), (h, w) = output_size, x.shape[2:]
        self.cells = [((i * h // oh, -(-(i + 1) * h // oh)), (j * w // ow, -(-(j + 1) * w // ow)))
                      for i in range(oh) for j in range(ow)]
        y = xp.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
        for k, ((r0, r1), (c0, c1)) in enumerate(self.cells):
            y[:, :, k // ow, k % ow] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        self.x_shape, self.ow = x.shape, ow
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        for k, ((r0, r1), (c0, c1)) in enumerate(self.cells):
            gx[:, :, r0:r1, c0:c1] += (gy[:, :, k // self.ow, k % self.ow] / ((r1 - r0) * (c1 - c0)))[:, :, None, None]
        return (gx,)


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to ``output_size`` (an int or (OH, OW); None keeps that side) whatever the input's
    size, as PyTorch's ``F.adaptive_avg_pool2d`` (torchvision's AlexNet pools to 6 x 6 so)."""
    op = "adaptive_avg_pool2d"
    check_rank(x, 4, "(N, C, H, W)", op)
    check_float(x, op)
    sizes = (output_size, output_size) if isinstance(output_size, int) or output_size is None else tuple(output_size)
    if len(sizes) != 2:
        raise TypeError(f"{op}: expected output_size an int or a pair, got {output_size!r}")
    sizes = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(sizes))
    if not all(isinstance(s, int) and s >= 1 for s in sizes):
        raise ValueError(f"{op}: expected output sizes >= 1, got {output_size!r}")
    (oh, ow), (n, c, h, w) = sizes, x.shape
    if (h, w) == (oh, ow):  # torchvision's AlexNet at 224 x 224: pool5 is already 6 x 6, no copy
        return x
    if h % oh == 0 and w % ow == 0:  # equal bins: one reshape and a mean (differentiable as they are)
        return x.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5))
    return AdaptiveAvgPool2d.apply(x, output_size=sizes)
