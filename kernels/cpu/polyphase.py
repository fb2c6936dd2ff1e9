"""Strided convolutions as stride-1 ones: the polyphase decomposition (space-to-depth), which lets
AlexNet's conv1 (11x11, stride 4) use Winograd's F(5x5, 3x3) (F(4x4, 3x3) in float64).

A stride-s correlation reads input row s*y + i for output row y and tap i. Write the tap as
i = s*a + r (0 <= r < s): row s*(y + a) + r is row y + a of the r-th polyphase component
x_r[y'] = x[s*y' + r]. In both directions:

    y[o, y, z] = Σ_{c, r, q, a, b} w[o, c, s_h a + r, s_w b + q] · x_{r,q}[c, y + a, z + b]

a stride-1 correlation of the s_h*s_w components of every channel, stacked as channels (c, r, q),
with kernels w_{r,q}[o, c, a, b] = w[o, c, s_h a + r, s_w b + q] (zero where s_h a + r >= kh):
ceil(kh/s_h) x ceil(kw/s_w) taps. Conv1 becomes a 3x3 convolution of 3*16 = 48 channels on 57x57
maps, which F(5x5, 3x3) computes with 49/25 * 48 = 94 multiply-adds per output instead of
im2col's 363 (0.26x; its 11 x 11 tiles cover the 55x55 output exactly; F(4x4, 3x3): 0.31x).
The zero taps cost multiply-adds but no accuracy.

Shapes: x (N, C, H, W) -> phases (N, C*s_h*s_w, HS, WS) with HS = OH + A - 1, WS = OW + B - 1
(A x B the reduced kernel, OH x OW the output); weight (O, C/G, kh, kw) -> (O, C/G*s_h*s_w, A, B).
The channel order (c, r, q) keeps every group's channels together, so groups carry over.
"""
from __future__ import annotations

import numpy as np

from ..common import conv_output_size
from ._jit import kernel
from .im2col import _gather, _inside_range, _scatter_add


def reduced_kernel(kernel_size, stride):
    """(A, B): the taps of each polyphase component's kernel."""
    return tuple(-(-k // s) for k, s in zip(kernel_size, stride))


def eligible(kernel_size, stride):
    """Strided, with a 3x3 reduced kernel (Winograd's F(m x m, 3x3) then applies, at padding 0)."""
    return tuple(stride) != (1, 1) and reduced_kernel(kernel_size, stride) == (3, 3)


def phase_shape(x_shape, kernel_size, stride, padding):
    """(N, C*s_h*s_w, HS, WS) of the stacked polyphase components of an input of ``x_shape``."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    a, b = reduced_kernel(kernel_size, stride)
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    return n, c * sh * sw, oh + a - 1, ow + b - 1


@kernel
def split_phases(x, xs, n_start, n_count, sh, sw, ph, pw):
    """xs[n, (c*sh + r)*sw + q, i, j] = x[n, c, sh*i + r - ph, sw*j + q - pw], 0 outside x, for images
    n_start ... n_start+n_count-1. x (N, C, H, W); xs (N, C*sh*sw, HS, WS)."""
    c_in, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
    hs, ws = xs.shape[2], xs.shape[3]
    zero = x.dtype.type(0)
    for n in range(n_start, n_start + n_count):
        for c in range(c_in):
            for r in range(sh):
                for q in range(sw):
                    lo, hi = _inside_range(q - pw, sw, w_in, ws)
                    plane = xs[n, (c * sh + r) * sw + q]
                    for i in range(hs):
                        out = plane[i]
                        h = sh * i + r - ph
                        if h < 0 or h >= h_in:
                            out[:] = zero
                            continue
                        out[:lo] = zero
                        out[hi:] = zero
                        src = x[n, c, h, lo * sw + q - pw:]
                        if sw == 4:  # AlexNet's conv1: a literal stride vectorises
                            _gather(src, 4, out[lo:hi], hi - lo)
                        else:
                            _gather(src, sw, out[lo:hi], hi - lo)


@kernel
def merge_phase_grads(gxs, gx, n_start, n_count, sh, sw, ph, pw):
    """The adjoint of ``split_phases``: gx[n, c, h, w] = gxs[n, (c, r, q), i, j] for the one entry
    (i, j, r, q) with sh*i + r = h + ph and sw*j + q = w + pw, or 0 if it lies beyond gxs (pixels
    the convolution never reads). gxs (N, C*sh*sw, HS, WS); gx (N, C, H, W), written in full."""
    c_in, h_in, w_in = gx.shape[1], gx.shape[2], gx.shape[3]
    hs, ws = gxs.shape[2], gxs.shape[3]
    for n in range(n_start, n_start + n_count):
        for c in range(c_in):
            for h in range(h_in):
                row = gx[n, c, h]
                row[:] = 0
                i, r = (h + ph) // sh, (h + ph) % sh
                if i >= hs:
                    continue
                for q in range(sw):
                    lo, hi = _inside_range(q - pw, sw, w_in, ws)
                    src = gxs[n, (c * sh + r) * sw + q, i, lo:hi]
                    _scatter_add(src, row[lo * sw + q - pw:], sw, hi - lo)


def split_weight(weight, stride):
    """(O, Cg*sh*sw, A, B): the kernels of the polyphase components, zero-padded taps included."""
    o, cg, kh, kw = weight.shape
    (sh, sw), (a, b) = stride, reduced_kernel((kh, kw), stride)
    padded = np.zeros((o, cg, a * sh, b * sw), dtype=weight.dtype)
    padded[:, :, :kh, :kw] = weight
    phases = padded.reshape(o, cg, a, sh, b, sw).transpose(0, 1, 3, 5, 2, 4)  # (o, c, r, q, a, b)
    return np.ascontiguousarray(phases.reshape(o, cg * sh * sw, a, b))


def merge_weight_grad(grad, kernel_size, stride):
    """The gradient of the original (O, Cg, kh, kw) weight from that of ``split_weight``'s output
    (the padded taps are not parameters: their gradient is dropped)."""
    o, cgs, a, b = grad.shape
    (kh, kw), (sh, sw) = kernel_size, stride
    full = grad.reshape(o, cgs // (sh * sw), sh, sw, a, b).transpose(0, 1, 4, 2, 5, 3).reshape(o, -1, a * sh, b * sw)
    return np.ascontiguousarray(full[:, :, :kh, :kw])
