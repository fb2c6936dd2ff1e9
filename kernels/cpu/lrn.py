"""Local response normalisation across channels, forward and backward, each one fused pass.

Shapes: x, y, gy, gx are (N, C, H, W) C-contiguous; C is split into ``groups`` groups of
Cg = C/groups channels and no window crosses a group. With the paper's convention (alpha times
the *sum*):

    S[c] = sum of x[c']**2 for c' in c-before ... c+after (inside the group)
    s[c] = k + alpha * S[c];   y[c] = x[c] * s[c]**-beta
    gx[j] = gy[j] * s[j]**-beta - 2*alpha*beta * x[j] * (sum of t[i] for i in j-after ... j+before),
    t[i] = gy[i] * x[i] * s[i]**(-beta-1)

with before = size // 2 and after = (size - 1) // 2. Only x is kept for the backward pass: s is
recomputed (a few multiply-adds per element) instead of storing an activation-sized array.

Work is split into blocks of (image, group, tile of TILE pixels), shared out among the threads
(``kernels.cpu.parallel``). Inside a block the loops run over channels with the pixels
innermost, so they vectorise and the window's rows stay in L1. The backward pass walks the
channels once, keeping the last ``size`` values of t and s**-beta in two small ring buffers.
For the paper's beta = 0.75, s**-0.75 = sqrt(sqrt(s)) / s and s**-1.75 = s**-0.75 / s: two
square roots and one division instead of two pows (each an exp and a log).

All scalar constants are passed in the arrays' dtype, so float32 work never widens to float64.
"""
from __future__ import annotations

import numpy as np

from ..common import needs
from ._jit import kernel
from .parallel import get_num_threads, run_parallel, split_range

TILE = 512  # pixels per block: the 5 rows of a window, 512 floats each, stay in L1


@kernel
def _lrn_forward(x, y, groups, before, after, alpha, k, neg_beta, beta_is_075, blk_start, blk_stop):
    """Blocks blk_start ... blk_stop-1 of y = LRN(x); x, y (N, C, P)."""
    n_img, c_all, p_all = x.shape
    cg = c_all // groups
    tiles = (p_all + TILE - 1) // TILE
    acc = np.empty(TILE, dtype=x.dtype)  # the window's sum of squares, one tile
    for blk in range(blk_start, blk_stop):
        n = blk // (groups * tiles)
        g = (blk // tiles) % groups
        p0 = (blk % tiles) * TILE
        m = min(TILE, p_all - p0)
        c0 = g * cg
        for c in range(cg):
            for q in range(m):
                acc[q] = 0
            for d in range(max(0, c - before), min(cg - 1, c + after) + 1):
                row = x[n, c0 + d, p0:p0 + m]
                for q in range(m):
                    acc[q] += row[q] * row[q]
            xr, yr = x[n, c0 + c, p0:p0 + m], y[n, c0 + c, p0:p0 + m]
            if beta_is_075:
                for q in range(m):
                    s = k + alpha * acc[q]
                    yr[q] = xr[q] * (np.sqrt(np.sqrt(s)) / s)
            else:
                for q in range(m):
                    yr[q] = xr[q] * (k + alpha * acc[q]) ** neg_beta


@kernel
def _lrn_backward(x, gy, gx, groups, before, after, alpha, k, neg_beta, two_alpha_beta, one, beta_is_075,
                  blk_start, blk_stop):
    """Blocks blk_start ... blk_stop-1 of gx, the LRN gradient; x, gy, gx (N, C, P)."""
    n_img, c_all, p_all = x.shape
    cg = c_all // groups
    size = before + after + 1
    tiles = (p_all + TILE - 1) // TILE
    acc = np.empty(TILE, dtype=x.dtype)
    ring_t = np.empty((size, TILE), dtype=x.dtype)  # t[i] for the channels i in j's window
    ring_pow = np.empty((size, TILE), dtype=x.dtype)  # s[i]**-beta for the same channels
    for blk in range(blk_start, blk_stop):
        n = blk // (groups * tiles)
        g = (blk // tiles) % groups
        p0 = (blk % tiles) * TILE
        m = min(TILE, p_all - p0)
        c0 = g * cg
        produced = 0  # t and s**-beta are known for the channels below this one
        for j in range(cg):
            last = min(cg - 1, j + before)
            while produced <= last:
                i = produced
                for q in range(m):
                    acc[q] = 0
                for d in range(max(0, i - before), min(cg - 1, i + after) + 1):
                    row = x[n, c0 + d, p0:p0 + m]
                    for q in range(m):
                        acc[q] += row[q] * row[q]
                rp, rt = ring_pow[i % size], ring_t[i % size]
                xr, gr = x[n, c0 + i, p0:p0 + m], gy[n, c0 + i, p0:p0 + m]
                if beta_is_075:
                    for q in range(m):
                        s = k + alpha * acc[q]
                        inv_s = one / s
                        sp = np.sqrt(np.sqrt(s)) * inv_s
                        rp[q] = sp
                        rt[q] = gr[q] * xr[q] * (sp * inv_s)
                else:
                    for q in range(m):
                        s = k + alpha * acc[q]
                        sp = s**neg_beta
                        rp[q] = sp
                        rt[q] = gr[q] * xr[q] * (sp / s)
                produced += 1
            for q in range(m):
                acc[q] = 0
            for i in range(max(0, j - after), last + 1):
                rt = ring_t[i % size]
                for q in range(m):
                    acc[q] += rt[q]
            rp = ring_pow[j % size]
            xr, gr, gxr = x[n, c0 + j, p0:p0 + m], gy[n, c0 + j, p0:p0 + m], gx[n, c0 + j, p0:p0 + m]
            for q in range(m):
                gxr[q] = gr[q] * rp[q] - two_alpha_beta * xr[q] * acc[q]


def _constants(dtype, size, alpha, beta, k):
    t = np.dtype(dtype).type
    return size // 2, (size - 1) // 2, t(alpha), t(k), t(-beta), t(2.0 * alpha * beta), t(1.0), beta == 0.75


def _block_ranges(n, groups, p):
    blocks = n * groups * ((p + TILE - 1) // TILE)
    return split_range(blocks, 4 * get_num_threads())  # a few ranges per thread: they balance


def lrn_forward(x, size, alpha, beta, k, groups):
    """y (N, C, H, W) = LRN of x (N, C, H, W), C-contiguous float32/float64; see the module docstring."""
    n, c, h, w = x.shape
    before, after, a, kk, nb, _, _, fast = _constants(x.dtype, size, alpha, beta, k)
    y = np.empty_like(x)
    x3, y3 = x.reshape(n, c, h * w), y.reshape(n, c, h * w)
    run_parallel(lambda r: _lrn_forward(x3, y3, groups, before, after, a, kk, nb, fast, *r),
                 _block_ranges(n, groups, h * w))
    return y


def lrn_backward(x, gy, size, alpha, beta, k, groups):
    """gx (N, C, H, W): the gradient of LRN at x for the output gradient gy (both (N, C, H, W))."""
    n, c, h, w = x.shape
    before, after, a, kk, nb, tab, one, fast = _constants(x.dtype, size, alpha, beta, k)
    gx = np.empty_like(x)
    shape3 = (n, c, h * w)
    x3, gy3, gx3 = x.reshape(shape3), np.ascontiguousarray(gy).reshape(shape3), gx.reshape(shape3)
    run_parallel(lambda r: _lrn_backward(x3, gy3, gx3, groups, before, after, a, kk, nb, tab, one, fast, *r),
                 _block_ranges(n, groups, h * w))
    return gx


class LocalResponseNorm:
    """LRN across channels, with the interface of ``minitorch_alex.dispatch``: keeps only x (s is recomputed in backward)."""

    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)

    def forward(self, x, size, alpha, beta, k, groups):
        x = np.ascontiguousarray(x)
        if any(needs(self, 1)):
            self.x, self.params = x, (size, alpha, beta, k, groups)
        return lrn_forward(x, size, alpha, beta, k, groups)

    def backward(self, gy):
        return (lrn_backward(self.x, gy, *self.params),)
