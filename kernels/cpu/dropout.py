"""Dropout: apply a keep-mask and scale in one pass, forward and backward.

``keep`` is a boolean array of x's shape (True: the unit is kept). The training output is
x * scale where kept and 0 elsewhere; the gradient is the same map applied to gy.
"""
from __future__ import annotations

import numpy as np

from ..common import needs
from ._jit import kernel
from .parallel import elementwise_ranges, run_parallel


@kernel
def _masked_scale(x, keep, scale, y):
    zero = x.dtype.type(0)
    for i in range(x.size):
        y[i] = x[i] * scale if keep[i] else zero


def dropout_apply(x, keep, scale):
    """x * scale where ``keep`` else 0, as a new array (x, keep of one shape; scale a number)."""
    y = np.empty(x.shape, dtype=x.dtype)
    x1, k1, y1, s = np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(keep).reshape(-1), y.reshape(-1), x.dtype.type(scale)
    run_parallel(lambda r: _masked_scale(x1[r[0]:r[1]], k1[r[0]:r[1]], s, y1[r[0]:r[1]]), elementwise_ranges(x.size))
    return y


class Dropout:
    """Dropout given its boolean keep-mask, with the interface of ``minitorch_alex.dispatch``."""

    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)

    def forward(self, x, mask, scale):
        # one pass: x * scale where kept; the boolean mask is all backward keeps
        if any(needs(self, 1)):
            self.keep, self.scale = mask, scale
        return dropout_apply(x, mask, scale)

    def backward(self, gy):
        return (dropout_apply(gy, self.keep, self.scale),)
