"""Batch normalisation on the GPU: the per-channel sums are CuPy reductions (in float32 for the
16-bit dtypes), the per-element passes the kernels of ``batchnorm.cu``. Only x, the channel
means and 1/std are kept for the backward pass (the reference keeps xhat)."""
from __future__ import annotations

import numpy as np

from ..common import needs
from . import _launch as L


def _acc(dtype):
    """The accumulation dtype: float32 for the 16-bit storage types, else the dtype itself."""
    return np.dtype(np.float32) if np.dtype(dtype).itemsize < 4 else np.dtype(dtype)


def _axes(ndim):
    return (0,) + tuple(range(2, ndim))


def _column(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _dims(x):
    n, c = x.shape[0], x.shape[1]
    return L.i32(n, c, x.size // max(1, n * c))


class BatchNorm:
    """Batch normalisation with the interface of ``minitorch_alex.dispatch`` (the reference's arguments)."""

    needs_input_grad = ()

    def forward(self, x, weight, bias, running_mean=None, running_var=None, training=True, momentum=0.1,
                eps=1e-5):
        cp = L.cupy()
        acc = _acc(x.dtype)
        with L.on(x):
            x = cp.ascontiguousarray(x)
            xa = x.astype(acc, copy=False)
            if training:
                axes, m = _axes(x.ndim), x.size // x.shape[1]
                mean = xa.mean(axis=axes)
                var = ((xa - _column(mean, x.ndim)) ** 2).mean(axis=axes)
                if running_mean is not None:
                    running_mean *= 1 - momentum  # in place, as the reference
                    running_mean += (momentum * mean).astype(running_mean.dtype)
                    running_var *= 1 - momentum
                    running_var += (momentum * var * (m / (m - 1))).astype(running_var.dtype)
            else:
                mean, var = running_mean.astype(acc), running_var.astype(acc)
            invstd = 1 / cp.sqrt(var + acc.type(eps))
            scale = cp.ascontiguousarray(weight.astype(acc) * invstd)
            shift = cp.ascontiguousarray(bias.astype(acc) - mean * scale)
            y = cp.empty_like(x)
            L.launch(L.function("batchnorm", "bn_forward", x.dtype), x.size, [x, y, scale, shift, *_dims(x)])
        if any(needs(self, 3)):
            self.x, self.mean, self.invstd, self.weight, self.training = x, mean, invstd, weight.astype(acc), training
        return y

    def backward(self, gy):
        cp = L.cupy()
        x, mean, invstd, weight = self.x, self.mean, self.invstd, self.weight
        acc, axes, c = mean.dtype, _axes(x.ndim), x.shape[1]
        need = needs(self, 3)
        with L.on(x):
            gy = cp.ascontiguousarray(gy)
            ga = gy.astype(acc, copy=False)
            sum_gy = ga.sum(axis=axes)
            gweight = (ga * (x.astype(acc, copy=False) - _column(mean, x.ndim))).sum(axis=axes) * invstd
            gx = None
            if need[0]:
                a = weight * invstd
                if self.training:  # gx = a gy - a/m (sum_gy + xhat sum(gy xhat)) = a gy + b x + d
                    m = x.size // c
                    b = -a / m * invstd * gweight
                    d = -a / m * sum_gy - b * mean
                else:
                    b = d = cp.zeros(c, acc)
                gx = cp.empty_like(x)
                L.launch(L.function("batchnorm", "bn_backward", x.dtype), x.size,
                         [x, gy, gx, *(cp.ascontiguousarray(v) for v in (a, b, d)), *_dims(x)])
        return (gx, gweight.astype(x.dtype) if need[1] else None, sum_gy.astype(x.dtype) if need[2] else None)
