"""ReLU as elementwise passes over ranges shared out among threads. (The bias + ReLU fused into
a layer's output is in the kernels that write conv and linear outputs: ``rows_to_nchw``,
``winograd.output_transform``, ``fourier.spectra_to_rows`` and ``linear._transpose_add_bias``
take a ``relu`` flag.)

The ReLU keeps NaN (like ``np.maximum``): ``v < 0`` is false for NaN, so NaN passes through.
Its backward pass needs only the forward *output*: the gradient flows where y > 0.
"""
from __future__ import annotations

import numpy as np

from ..common import needs
from ._jit import kernel
from .parallel import elementwise_ranges, get_num_threads, run_parallel, run_parallel_accumulate, split_range


@kernel
def _relu(x, y):
    zero = x.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        y[i] = zero if v < zero else v


@kernel
def _relu_backward(y, gy, gx):
    zero = y.dtype.type(0)
    for i in range(y.size):
        gx[i] = gy[i] if y[i] > zero else zero


def relu_forward(x):
    """max(x, 0) as a new array of x's shape (x C-contiguous)."""
    y = np.empty_like(x)
    x1, y1 = x.reshape(-1), y.reshape(-1)
    run_parallel(lambda r: _relu(x1[r[0]:r[1]], y1[r[0]:r[1]]), elementwise_ranges(x.size))
    return y


def relu_backward(y, gy):
    """gy where y > 0, else 0; y is the forward output, gy of the same shape."""
    gx = np.empty_like(y)
    y1, gy1, gx1 = y.reshape(-1), np.ascontiguousarray(gy).reshape(-1), gx.reshape(-1)
    run_parallel(lambda r: _relu_backward(y1[r[0]:r[1]], gy1[r[0]:r[1]], gx1[r[0]:r[1]]), elementwise_ranges(y.size))
    return gx


@kernel
def _relu_backward_planes(y, gy, gx, sums, plane_start, plane_count):
    """``_relu_backward`` on planes plane_start ... of (N, C, P) arrays, adding each plane's sum of
    gx to sums[c] (float64)."""
    zero = y.dtype.type(0)
    c_all = y.shape[1]
    for t in range(plane_count):
        n = (plane_start + t) // c_all
        c = (plane_start + t) % c_all
        yp, gyp, gxp = y[n, c], gy[n, c], gx[n, c]
        total = 0.0
        for i in range(yp.size):
            v = gyp[i] if yp[i] > zero else zero
            gxp[i] = v
            total += v
        sums[c] += total


def relu_backward_channel_sums(y, gy):
    """(gx, sums): ``relu_backward``'s gx (N, C, H, W) and its sum over N, H, W per channel in
    float64 (a convolution's bias gradient) in the same pass: summing conv1's gradient apart took
    19 ms at batch 128 (np.sum in float64), a second read of 148 MB. The planes are split among
    the threads in a fixed way, so the sums do not depend on scheduling."""
    n, c = y.shape[:2]
    gx = np.empty_like(y)
    y3, gy3, gx3 = y.reshape(n, c, -1), np.ascontiguousarray(gy).reshape(n, c, -1), gx.reshape(n, c, -1)

    def planes(r, sums):
        _relu_backward_planes(y3, gy3, gx3, sums, r[0], r[1] - r[0])

    parts = run_parallel_accumulate(planes, split_range(n * c, get_num_threads()), lambda: np.zeros(c))
    sums = parts[0]
    for more in parts[1:]:
        sums += more
    return gx, sums


class ReLU:
    """ReLU for NumPy float32/float64 arrays, with the interface of ``minitorch_alex.dispatch`` (``forward``, ``backward``)."""

    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)

    def forward(self, x):
        # one parallel pass; keep the output (the next layer usually holds it anyway), not a mask
        y = relu_forward(x if x.flags.c_contiguous else x.copy())
        if any(needs(self, 1)):
            self.y = y
        return y

    def backward(self, gy):
        return (relu_backward(self.y, gy),)
