"""Batch normalisation over channel axis 1 (see ``minitorch_alex/ops/batchnorm.py`` for the maths).

Shapes: x, y, gy, gx are (N, C, P) views of (N, C, *) C-contiguous arrays; weight, bias, the
running statistics and the per-channel vectors are (C,). Work is split by channel ranges
(``kernels.cpu.parallel``): a channel's statistics and its normalisation stay in one task.

Each pass over the data is one kernel: the channel sums (two passes: the mean, then the squared
deviations from it, which keeps the variance exact where ``E[x^2] - E[x]^2`` cancels), then one
multiply-add per element. The backward pass folds everything per channel into
``gx = a[c] * gy + b[c] * x + d[c]``, so only x is kept from the forward pass (the reference keeps
xhat, an activation-sized array). Channel sums accumulate in float64: a float32 channel of
128 x 55 x 55 = 387200 values summed in float32 loses about 4 digits in a naive loop.
"""
from __future__ import annotations

import numpy as np

from ..common import needs
from ._jit import kernel
from .parallel import get_num_threads, run_parallel, split_range


@kernel
def _channel_stats(x, mean, var, c_start, c_stop):
    """mean[c], var[c] (biased) over x[:, c, :] for c in c_start ... c_stop-1, in float64."""
    n_img, _, p_all = x.shape
    m = n_img * p_all
    for c in range(c_start, c_stop):
        s = 0.0
        for n in range(n_img):
            row = x[n, c, :]
            for q in range(p_all):
                s += row[q]
        mu = s / m
        s2 = 0.0
        for n in range(n_img):
            row = x[n, c, :]
            for q in range(p_all):
                d = row[q] - mu
                s2 += d * d
        mean[c], var[c] = mu, s2 / m


@kernel
def _grad_sums(x, gy, mean, sum_gy, sum_gy_xc, c_start, c_stop):
    """sum(gy) and sum(gy * (x - mean)) over each channel c in c_start ... c_stop-1, in float64."""
    n_img, _, p_all = x.shape
    for c in range(c_start, c_stop):
        mu = mean[c]
        s, t = 0.0, 0.0
        for n in range(n_img):
            xr, gr = x[n, c, :], gy[n, c, :]
            for q in range(p_all):
                s += gr[q]
                t += gr[q] * (xr[q] - mu)
        sum_gy[c], sum_gy_xc[c] = s, t


@kernel
def _affine(u, v, out, a, b, d, c_start, c_stop):
    """out = a[c] * u + b[c] * v + d[c] for the channels c_start ... c_stop-1 (u, v, out (N, C, P))."""
    n_img, _, p_all = u.shape
    for n in range(n_img):
        for c in range(c_start, c_stop):
            ur, vr, orow = u[n, c, :], v[n, c, :], out[n, c, :]
            ac, bc, dc = a[c], b[c], d[c]
            for q in range(p_all):
                orow[q] = ac * ur[q] + bc * vr[q] + dc


def _ranges(c, elements):
    tasks = min(c, 4 * get_num_threads()) if elements >= (1 << 16) else 1  # small ones: no hand-off
    return split_range(c, tasks)


def _as3(a):
    return a.reshape(a.shape[0], a.shape[1], -1)


class BatchNorm:
    """Batch normalisation with the interface of ``minitorch_alex.dispatch`` (the reference's
    arguments); keeps x, the channel means and 1/std for the backward pass."""

    needs_input_grad = ()

    def forward(self, x, weight, bias, running_mean=None, running_var=None, training=True, momentum=0.1,
                eps=1e-5):
        x = np.ascontiguousarray(x)
        x3, c = _as3(x), x.shape[1]
        ranges = _ranges(c, x.size)
        if training:
            mean64, var64 = np.empty(c), np.empty(c)
            run_parallel(lambda r: _channel_stats(x3, mean64, var64, *r), ranges)
            if running_mean is not None:
                m = x.size // c
                running_mean *= 1 - momentum  # in place, as the reference (float64 stats cast on the way)
                running_mean += (momentum * mean64).astype(running_mean.dtype)
                running_var *= 1 - momentum
                running_var += (momentum * var64 * (m / (m - 1))).astype(running_var.dtype)
            mean, var = mean64.astype(x.dtype), var64.astype(x.dtype)
        else:
            mean, var = running_mean, running_var
        invstd = (1 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype)
        scale = (weight * invstd).astype(x.dtype)
        shift = (bias - mean * scale).astype(x.dtype)
        y = np.empty_like(x)
        zero = np.zeros(c, x.dtype)
        run_parallel(lambda r: _affine(x3, x3, _as3(y), scale, zero, shift, *r), ranges)
        if any(needs(self, 3)):  # the engine sets all False under no_grad: nothing kept
            self.x, self.mean, self.invstd, self.weight, self.training = x, mean, invstd, weight, training
        return y

    def backward(self, gy):
        x, mean, invstd, weight = self.x, self.mean, self.invstd, self.weight
        gy = np.ascontiguousarray(gy)
        x3, gy3, c = _as3(x), _as3(gy), x.shape[1]
        ranges = _ranges(c, x.size)
        sum_gy, sum_gy_xc = np.empty(c), np.empty(c)
        run_parallel(lambda r: _grad_sums(x3, gy3, mean, sum_gy, sum_gy_xc, *r), ranges)
        gweight = (sum_gy_xc * invstd).astype(x.dtype)  # sum(gy * xhat)
        a = (weight * invstd).astype(np.float64)
        if self.training:  # gx = a gy - a/m (sum_gy + xhat sum(gy xhat)), written as a gy + b x + d
            m = x.size // c
            b = -a / m * invstd * gweight
            d = -a / m * sum_gy - b * mean
        else:
            b = d = np.zeros(c)
        gx = np.empty_like(x)
        a, b, d = (v.astype(x.dtype) for v in (a, b, d))
        run_parallel(lambda r: _affine(gy3, x3, _as3(gx), a, b, d, *r), ranges)
        return gx, gweight, sum_gy.astype(x.dtype)
