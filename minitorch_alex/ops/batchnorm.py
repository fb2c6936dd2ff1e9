"""Batch normalisation (Ioffe and Szegedy, 2015) over the channel axis 1 of (N, C, *) inputs.

For each channel c, over the m = N * (product of the trailing sizes) values of that channel:

    training:   mu = mean(x),  var = mean((x - mu)**2)        (the batch's, biased)
    evaluation: mu = running_mean[c],  var = running_var[c]
    xhat = (x - mu) / sqrt(var + eps);   y = weight[c] * xhat + bias[c]

In training the running statistics are updated in place (PyTorch's convention, momentum 0.1):

    running_mean = (1 - momentum) * running_mean + momentum * mu
    running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)   (unbiased)

Backward, with invstd = 1 / sqrt(var + eps) and sums over the channel's m values:

    dweight = sum(gy * xhat);   dbias = sum(gy)
    training:   dx = weight * invstd / m * (m * gy - dbias - xhat * dweight)
    evaluation: dx = weight * invstd * gy        (mu and var are constants)

16-bit inputs are normalised in float32 (their statistics and coefficients; the output and the
gradients come back 16-bit) with float32 running statistics, as PyTorch's mixed precision keeps
batch norm in float32. This is the reference: readable NumPy that also runs on CuPy. The numba and CUDA forms have the
same class name and methods (``minitorch_alex/dispatch.py``).
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..device import get_array_module
from ..tensor import Tensor
from .common import check_float


def accumulation_dtype(dtype):
    """float32 for the 16-bit float dtypes (their sums would round away), else ``dtype`` itself."""
    return np.dtype(np.float32) if np.dtype(dtype).itemsize < 4 else np.dtype(dtype)


def channel_axes(ndim):
    """The axes a channel's statistics run over: all but axis 1."""
    return (0,) + tuple(range(2, ndim))


def per_channel(v, ndim):
    """A (C,) vector shaped to broadcast against (N, C, *)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


class BatchNorm(Function):
    """Inputs x (N, C, *), weight (C,), bias (C,); params ``running_mean``, ``running_var``
    ((C,) arrays of x's dtype, or float32 for a 16-bit x, on x's device, or None), ``training``,
    ``momentum``, ``eps``."""

    fresh_grads = True  # each input's gradient is a new array

    def forward(self, x, weight, bias, running_mean=None, running_var=None, training=True, momentum=0.1,
                eps=1e-5):
        xp = get_array_module(x)
        axes = channel_axes(x.ndim)
        acc = accumulation_dtype(x.dtype)
        out_dtype = x.dtype
        x, weight, bias = (a.astype(acc, copy=False) for a in (x, weight, bias))
        if training:
            mean = x.mean(axis=axes)
            var = ((x - per_channel(mean, x.ndim)) ** 2).mean(axis=axes)
            if running_mean is not None:
                m = x.size // x.shape[1]
                running_mean *= 1 - momentum  # in place: the buffers are the layer's own arrays
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * var * (m / (m - 1))
        else:
            mean, var = running_mean, running_var
        invstd = 1 / xp.sqrt(var + eps)
        xhat = (x - per_channel(mean, x.ndim)) * per_channel(invstd, x.ndim)
        self.xhat, self.invstd, self.weight, self.training = xhat, invstd, weight, training
        return (xhat * per_channel(weight, x.ndim) + per_channel(bias, x.ndim)).astype(out_dtype, copy=False)

    def backward(self, gy):
        xhat, invstd, weight = self.xhat, self.invstd, self.weight
        axes = channel_axes(gy.ndim)
        out_dtype, gy = gy.dtype, gy.astype(xhat.dtype, copy=False)
        gbias = gy.sum(axis=axes)
        gweight = (gy * xhat).sum(axis=axes)
        scale = per_channel(weight * invstd, gy.ndim)
        if self.training:
            m = gy.size // gy.shape[1]
            gx = scale / m * (m * gy - per_channel(gbias, gy.ndim) - xhat * per_channel(gweight, gy.ndim))
        else:
            gx = scale * gy
        return tuple(g.astype(out_dtype, copy=False) for g in (gx, gweight, gbias))


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Batch-normalise ``x`` (N, C, *) per channel; returns the same shape (PyTorch's signature).

    ``running_mean``/``running_var``: Tensors (C,) of x's dtype (or float32 for a 16-bit x) and
    device, or None; read in
    evaluation, updated in place in training. ``weight``/``bias``: Tensors (C,) or None (1 and 0).
    ``momentum``: the running average's weight of the new batch (a number in [0, 1]).
    """
    op = "batch_norm"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{op}: expected input of rank >= 2 (N, C, *), got shape {x.shape}")
    check_float(x, op)
    c = x.shape[1]
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: expected both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError(f"{op}: evaluation mode needs running_mean and running_var (expected Tensors, got None)")
    stats = {}
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is None:
            continue
        dtypes = {x.dtype, accumulation_dtype(x.dtype)}  # a 16-bit input may keep float32 statistics
        if not isinstance(t, Tensor) or t.shape != (c,) or t.dtype not in dtypes or t.device != x.device:
            got = f"{t.dtype} {t.shape} on {t.device}" if isinstance(t, Tensor) else type(t).__name__
            want = " or ".join(sorted(str(d) for d in dtypes))
            raise ValueError(f"{op}: expected {name} a Tensor ({c},) {want} on {x.device}, got {got}")
        stats[name] = t.data
    if training and x.size // c <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got input shape {x.shape}")
    if not 0 <= momentum <= 1 or not eps > 0:
        raise ValueError(f"{op}: expected 0 <= momentum <= 1 and eps > 0, got momentum={momentum}, eps={eps}")
    with x.device.context():
        weight = weight if weight is not None else Tensor._wrap(x.xp.ones(c, x.dtype), x.device)
        bias = bias if bias is not None else Tensor._wrap(x.xp.zeros(c, x.dtype), x.device)
    for name, t in (("weight", weight), ("bias", bias)):
        if t.shape != (c,):
            raise ValueError(f"{op}: expected {name} of shape ({c},), got {t.shape}")
    return BatchNorm.apply(x, weight, bias, **stats, training=bool(training), momentum=float(momentum),
                           eps=float(eps))
