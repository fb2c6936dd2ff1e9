"""Fully connected layer on the CPU: y = x Wᵀ + b with x (N, in), W (out, in), b (out,).

The GEMMs run in the threads of ``kernels.cpu.parallel`` on a single-threaded BLAS, each thread
taking a slice of the output features (or, for dx, of the input features), so the BLAS never
spins threads of its own between our kernels. The orientation is the one measured fastest for
AlexNet's shapes (a small batch against a large weight matrix):

    forward   yᵀ[rows] = W[rows] @ xᵀ, then y[:, rows] = yᵀ[rows]ᵀ + b[rows]   (one small transpose)
    backward  dx[:, cols] = dy @ W[:, cols]
              dW[rows] = dy[:, rows]ᵀ @ x
              db = the sum of dy over the batch (float64)
"""
from __future__ import annotations

import numpy as np

from ..common import needs
from ._jit import kernel
from .activation import relu_backward
from .parallel import get_num_threads, run_parallel, split_range
from .workspace import workspace


@kernel
def _transpose_add_bias(src, bias, dst, relu):
    """dst[n, f] = src[f, n] + bias[f] (then max(., 0) if ``relu``); src (F, N), dst (N, F) views."""
    zero = bias.dtype.type(0)
    for f in range(src.shape[0]):
        b = bias[f]
        row = src[f]
        for n in range(row.size):
            v = row[n] + b
            dst[n, f] = zero if relu and v < zero else v


def _feature_ranges(count):
    return split_range(count, get_num_threads())


def linear_forward(x, weight, bias=None, relu=False):
    """y (N, out) = x (N, in) @ weight (out, in)ᵀ + bias (out,), then ReLU if ``relu``."""
    n, out = x.shape[0], weight.shape[0]
    y = np.empty((n, out), dtype=x.dtype)
    b = bias if bias is not None else np.zeros(out, dtype=x.dtype)

    def part(r):
        a, z = r
        yt = workspace("linear.yt", (z - a, n), x.dtype)
        np.matmul(weight[a:z], x.T, out=yt)
        _transpose_add_bias(yt, b[a:z], y[:, a:z], relu)

    run_parallel(part, _feature_ranges(out), uses_blas=True)
    return y


def linear_backward(x, weight, gy, need_x=True, need_weight=True, need_bias=True):
    """(gx, gweight, gbias) for y = x @ weightᵀ + bias; entries not needed are None."""
    gx = np.empty(x.shape, dtype=x.dtype) if need_x else None
    gw = np.empty(weight.shape, dtype=weight.dtype) if need_weight else None
    tasks = []
    if need_x:
        tasks += [("x", r) for r in _feature_ranges(weight.shape[1])]
    if need_weight:
        tasks += [("w", r) for r in _feature_ranges(weight.shape[0])]

    def part(task):
        what, (a, z) = task
        if what == "x":
            np.matmul(gy, weight[:, a:z], out=gx[:, a:z])
        else:
            np.matmul(gy[:, a:z].T, x, out=gw[a:z])

    run_parallel(part, tasks, uses_blas=True)
    gb = gy.sum(axis=0, dtype=np.float64).astype(gy.dtype) if need_bias else None
    return gx, gw, gb


class Linear:
    """y = x Wᵀ + b, with the interface of ``minitorch_alex.dispatch``. ``needs_input_grad`` (set by the
    engine before forward) says which gradients backward computes; nothing is kept when none is."""

    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)
    relu = False

    def forward(self, x, weight, bias=None):
        self.count = 2 if bias is None else 3
        y = linear_forward(x, weight, bias, relu=self.relu)
        if any(needs(self, self.count)):
            self.x, self.weight, self.y = x, weight, (y if self.relu else None)  # y: the backward's ReLU mask
        return y

    def backward(self, gy):
        need = needs(self, self.count)
        if self.relu:
            gy = relu_backward(self.y, gy)
        gx, gw, gb = linear_backward(self.x, self.weight, gy, need[0], need[1], self.count == 3 and need[2])
        return (gx, gw, gb) if self.count == 3 else (gx, gw)


class LinearReLU(Linear):
    """relu(x Wᵀ + b) as one op: the ReLU is applied while the output is written, and backward
    masks gy with the kept output before the layer's GEMMs."""

    relu = True
