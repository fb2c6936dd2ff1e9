"""ReLU on the GPU (``elementwise.cu``): max(x, 0) with NaN kept; the backward pass needs only y."""
from __future__ import annotations

from ..common import needs
from . import _launch as L


def relu_forward(x):
    cp = L.cupy()
    with L.on(x):
        x = cp.ascontiguousarray(x)
        y = cp.empty_like(x)
        L.launch(L.function("elementwise", "relu_forward", x.dtype), x.size, [x, y, *L.i64(x.size)])
    return y


def relu_backward(y, gy):
    """gy where y > 0, else 0 (y is the forward output)."""
    cp = L.cupy()
    with L.on(y):
        gy = cp.ascontiguousarray(gy)
        gx = cp.empty_like(y)
        L.launch(L.function("elementwise", "relu_backward", y.dtype), y.size, [y, gy, gx, *L.i64(y.size)])
    return gx


class ReLU:
    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)

    def forward(self, x):
        y = relu_forward(x)
        if any(needs(self, 1)):
            self.y = y
        return y

    def backward(self, gy):
        return (relu_backward(self.y, gy),)
