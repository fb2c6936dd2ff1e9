"""Local response normalisation on the GPU (``lrn.cu``), the paper's convention (alpha times the
sum of squares). The forward pass keeps s = k + alpha * sum, which the backward pass reads."""
from __future__ import annotations

import numpy as np

from ..common import needs
from . import _launch as L


def lrn_forward(x, size, alpha, beta, k, groups):
    """(y, scale), both (N, C, H, W)."""
    cp = L.cupy()
    n, c, h, w = x.shape
    with L.on(x):
        x = cp.ascontiguousarray(x)
        y, scale = cp.empty_like(x), cp.empty_like(x)
        L.i32(c * h * w)  # one image's offsets are 32-bit, image offsets 64-bit
        L.launch(L.function("lrn", "lrn_forward", x.dtype), x.size,
                 [x, y, scale, *L.i32(n, c, h * w, groups, size // 2, (size - 1) // 2),
                  np.float64(alpha), np.float64(beta), np.float64(k)])
    return y, scale


def lrn_backward(x, scale, gy, size, alpha, beta, groups):
    """gx (N, C, H, W), the LRN gradient at x for the output gradient gy."""
    cp = L.cupy()
    n, c, h, w = x.shape
    with L.on(x):
        x, gy = cp.ascontiguousarray(x), cp.ascontiguousarray(gy)
        gx = cp.empty_like(x)
        L.launch(L.function("lrn", "lrn_backward", x.dtype), x.size,
                 [x, scale, gy, gx, *L.i32(n, c, h * w, groups, size // 2, (size - 1) // 2),
                  np.float64(alpha), np.float64(beta)])
    return gx


class LocalResponseNorm:
    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)

    def forward(self, x, size, alpha, beta, k, groups):
        y, scale = lrn_forward(x, size, alpha, beta, k, groups)
        if any(needs(self, 1)):
            self.x, self.scale, self.params = x, scale, (size, alpha, beta, groups)
        return y

    def backward(self, gy):
        return (lrn_backward(self.x, self.scale, gy, *self.params),)
