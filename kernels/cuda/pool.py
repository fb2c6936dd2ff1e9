"""Max pooling on the GPU (``pool.cu``): one thread per output for the forward pass (with the
winner's position), a gather per input pixel for the backward pass (no atomics)."""
from __future__ import annotations

from ..common import conv_output_size, needs
from . import _launch as L


def maxpool_forward(x, kernel_size, stride, padding):
    """(y, argmax) for x (N, C, H, W); argmax (N, C, OH, OW) int32 holds h*W + w of each winner."""
    cp = L.cupy()
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = L.pair(kernel_size), L.pair(stride), L.pair(padding)
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    with L.on(x):
        x = cp.ascontiguousarray(x)
        y = cp.empty((n, c, oh, ow), dtype=x.dtype)
        argmax = cp.empty((n, c, oh, ow), dtype=cp.int32)
        L.i32(n * c, h * w)  # planes are indexed in 32 bits, plane offsets in 64
        L.launch(L.function("pool", "maxpool_forward", x.dtype), y.size,
                 [x, y, argmax, *L.i32(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)])
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kernel_size, stride, padding):
    """gx of ``x_shape``: each input pixel gathers the gradients of the windows it won."""
    cp = L.cupy()
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = L.pair(kernel_size), L.pair(stride), L.pair(padding)
    oh, ow = argmax.shape[2], argmax.shape[3]
    with L.on(gy):
        gy = cp.ascontiguousarray(gy)
        gx = cp.empty(tuple(x_shape), dtype=gy.dtype)
        L.launch(L.function("pool", "maxpool_backward", gy.dtype), gx.size,
                 [gy, argmax, gx, *L.i32(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)])
    return gx


class MaxPool2d:
    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)

    def forward(self, x, kernel_size, stride, padding):
        y, argmax = maxpool_forward(x, kernel_size, stride, padding)
        if any(needs(self, 1)):
            self.argmax, self.x_shape, self.params = argmax, x.shape, (kernel_size, stride, padding)
        return y

    def backward(self, gy):
        return (maxpool_backward(gy, self.argmax, self.x_shape, *self.params),)
