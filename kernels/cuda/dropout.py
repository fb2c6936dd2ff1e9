"""Dropout on the GPU (``elementwise.cu``): y = x * scale where the bool keep-mask is True, else 0;
the same pass with the same mask is the backward pass."""
from __future__ import annotations

import numpy as np

from ..common import needs
from . import _launch as L


def dropout_apply(x, keep, scale):
    """x * scale where ``keep`` (bool, x's shape) else 0, as a new array."""
    cp = L.cupy()
    if keep.dtype != bool or keep.shape != x.shape:
        raise TypeError(f"dropout: expected a bool mask of shape {x.shape}, got {keep.dtype} {keep.shape}")
    with L.on(x):
        x, keep = cp.ascontiguousarray(x), cp.ascontiguousarray(keep)
        y = cp.empty_like(x)
        L.launch(L.function("elementwise", "dropout_apply", x.dtype), x.size,
                 [x, keep, y, *L.i64(x.size), np.float64(scale)])
    return y


class Dropout:
    """Dropout(x, mask, scale=) with the interface of ``minitorch_alex.dispatch``: ``mask`` and
    ``scale`` are parameters, so the backward returns one gradient, x's (as the CPU kernel does)."""

    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)

    def forward(self, x, mask, scale):
        y = dropout_apply(x, mask, scale)
        if any(needs(self, 1)):
            self.keep, self.scale = mask, scale
        return y

    def backward(self, gy):
        return (dropout_apply(gy, self.keep, self.scale),)
