"""Winograd convolution F(2x2, 3x3) for 3x3 stride-1 layers (AlexNet's conv3, conv4, conv5).

Lavin & Gray (2016): a 2x2 block of outputs of a 3x3 correlation needs 16 multiplications
instead of 36, once the 4x4 input tile d and the 3x3 kernel g are transformed:

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

    Bᵀ = [1  0 -1  0]     G = [ 1    0    0 ]     Aᵀ = [1  1  1  0]
         [0  1  1  0]         [1/2  1/2  1/2]          [0  1 -1 -1]
         [0 -1  1  0]         [1/2 -1/2  1/2]
         [0  1  0 -1]         [ 0    0    1 ]

Summed over input channels, the 16 elementwise products become 16 GEMMs, one per position ξ of
the 4x4 transformed tile: M[:, ξ] (O, T) = U[ξ] (O, C) @ V[:, ξ] (C, T), T = number of tiles. For a
13x13 map (7x7 tiles of 2x2, covering 14x14) that is 16*49 multiply-adds per channel pair
instead of 9*169: 0.52 of the im2col GEMM's work. The transforms are additions (and halvings).

All three products of a convolution layer use it:

    forward    y  = F(x, g) with tiles over y                    (padding p)
    input grad dx = F(gy, g flipped and transposed) over dx      (padding 2 - p; a full correlation)
    weight grad dg = G ᵀ [ Σ over tiles (A dy_t Aᵀ) ⊙ (Bᵀ d_t B) ] G  (the transposed algorithm)

Layouts: V (C, 16, T) and M (O, 16, T) with T ordered (image, tile row, tile column), so the
16 values a transform reads or writes for one channel lie close together (the GEMMs take the
strided (C, T) slices V[:, ξ] directly); U (16, O, C).
Every kernel here is serial; ``kernels.cpu.conv`` runs them on chunks of images in threads.
Exact in exact arithmetic; in float32 the error is of the order of the im2col GEMM's.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel

ALPHA = 4  # transformed tile side: m + r - 1 with m = 2 outputs, r = 3 taps


def eligible(kernel_size, stride, padding):
    """Can this convolution use F(2x2, 3x3)? 3x3 kernels, stride 1, padding 0..2 (the input
    gradient is then a correlation with padding 2 - p >= 0).

    (F(2x2, 5x5) for conv2 was tried and measured slower than im2col here: its 6x6 tiles blow
    the data up 9x on the way into the GEMMs, more traffic than im2col's 25x25/... columns.)"""
    return tuple(kernel_size) == (3, 3) and tuple(stride) == (1, 1) and all(0 <= p <= 2 for p in padding)


def tiles(size):
    """Number of 2-wide tiles covering ``size`` outputs."""
    return (size + 1) // 2


@kernel
def input_transform(x, v, n_start, n_count, ph, pw, th, tw):
    """v[c, ξ, t] = (Bᵀ d B)[ξ] for the 4x4 input tile d of output tile t = (n, ty, tx), which
    starts at input row 2*ty - ph and column 2*tx - pw (zeros outside the image).

    x (N, C, H, W); v (C, 16, >= n_count*th*tw); images n_start ... n_start+n_count-1.
    One tile row at a time: the four input rows are copied into a zero-padded strip, Bᵀ is
    applied down the columns of the strip (vectorised over its width), then B along each tile
    (vectorised over the tiles of the row).
    """
    c_all, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
    width = 2 * tw + 2
    strip = np.zeros((4, width), dtype=x.dtype)  # the 4 input rows of a tile row, padded
    e = np.empty((4, width), dtype=x.dtype)  # Bᵀ applied down the columns
    lo = min(pw, width)  # strip columns [lo, hi) come from the image, the rest stay 0
    hi = max(lo, min(width, w_in + pw))
    for c in range(c_all):
        vc = v[c]
        for n in range(n_count):
            plane = x[n_start + n, c]
            for ty in range(th):
                h0 = 2 * ty - ph
                for i in range(4):
                    row = strip[i]
                    if 0 <= h0 + i < h_in:
                        src = plane[h0 + i, lo - pw:]
                        dst = row[lo:hi]
                        for q in range(hi - lo):
                            dst[q] = src[q]
                    else:
                        row[lo:hi] = 0
                d0, d1, d2, d3 = strip[0], strip[1], strip[2], strip[3]
                e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
                for q in range(width):
                    e0[q] = d0[q] - d2[q]
                    e1[q] = d1[q] + d2[q]
                    e2[q] = d2[q] - d1[q]
                    e3[q] = d1[q] - d3[q]
                t0 = (n * th + ty) * tw
                for k in range(4):
                    ek = e[k]
                    o0, o1 = vc[4 * k + 0, t0:t0 + tw], vc[4 * k + 1, t0:t0 + tw]
                    o2, o3 = vc[4 * k + 2, t0:t0 + tw], vc[4 * k + 3, t0:t0 + tw]
                    for q in range(tw):
                        a, b, c_, d = ek[2 * q], ek[2 * q + 1], ek[2 * q + 2], ek[2 * q + 3]
                        o0[q] = a - c_
                        o1[q] = b + c_
                        o2[q] = c_ - b
                        o3[q] = b - d


@kernel
def output_transform(m, bias, y, n_start, n_count, th, tw, relu):
    """y[n_start + n, o, 2ty:2ty+2, 2tx:2tx+2] = (Aᵀ M[o, :, t] A) + bias[o], clipped to y, then
    max(., 0) if ``relu``.

    m (O, 16, >= n_count*th*tw); bias (O,); y (N, O, OH, OW). One tile row at a time, vectorised
    over its tiles: Aᵀ down the columns of each tile, then A along its rows.
    """
    o_all, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    zero = y.dtype.type(0)
    r = np.empty((2, 4, tw), dtype=y.dtype)  # Aᵀ M for every tile of the row
    out = np.empty((2, 2 * tw), dtype=y.dtype)  # the two output rows of the tile row
    for o in range(o_all):
        mo = m[o]
        b = bias[o]
        for n in range(n_count):
            plane = y[n_start + n, o]
            for ty in range(th):
                t0 = (n * th + ty) * tw
                for j in range(4):
                    m0, m1 = mo[j, t0:t0 + tw], mo[4 + j, t0:t0 + tw]
                    m2, m3 = mo[8 + j, t0:t0 + tw], mo[12 + j, t0:t0 + tw]
                    r0, r1 = r[0, j], r[1, j]
                    for q in range(tw):
                        r0[q] = m0[q] + m1[q] + m2[q]
                        r1[q] = m1[q] - m2[q] - m3[q]
                for i in range(2):
                    a, b_, c_, d = r[i, 0], r[i, 1], r[i, 2], r[i, 3]
                    line = out[i]
                    for q in range(tw):
                        v0 = a[q] + b_[q] + c_[q] + b
                        v1 = b_[q] - c_[q] - d[q] + b
                        line[2 * q] = zero if relu and v0 < zero else v0
                        line[2 * q + 1] = zero if relu and v1 < zero else v1
                for i in range(min(2, oh - 2 * ty)):
                    dst, src = plane[2 * ty + i], out[i]
                    for q in range(ow):
                        dst[q] = src[q]


@kernel
def weight_transform(w, u, flip):
    """u[ξ, o, c] = (G g Gᵀ)[ξ] with g = w[o, c] (3x3), or for ``flip`` g = w[c, o] rotated by
    180 degrees and u of shape (16, Cin, Cout): the kernel of the input-gradient correlation.

    w (O, Cg, 3, 3); u (16, O, Cg), or (16, Cg, O) with ``flip``.
    """
    o_all, c_all = w.shape[0], w.shape[1]
    half = w.dtype.type(0.5)
    g = np.empty((3, 3), dtype=w.dtype)
    e = np.empty((4, 3), dtype=w.dtype)
    for o in range(o_all):
        for c in range(c_all):
            for i in range(3):
                for j in range(3):
                    g[i, j] = w[o, c, 2 - i, 2 - j] if flip else w[o, c, i, j]
            for j in range(3):  # e = G g
                e[0, j] = g[0, j]
                e[1, j] = half * (g[0, j] + g[1, j] + g[2, j])
                e[2, j] = half * (g[0, j] - g[1, j] + g[2, j])
                e[3, j] = g[2, j]
            for i in range(4):  # (G g) Gᵀ
                a, b_, c_ = e[i, 0], e[i, 1], e[i, 2]
                vals = (a, half * (a + b_ + c_), half * (a - b_ + c_), c_)
                for j in range(4):
                    if flip:
                        u[4 * i + j, c, o] = vals[j]
                    else:
                        u[4 * i + j, o, c] = vals[j]


@kernel
def grad_output_transform(gy, z, n_start, n_count, th, tw):
    """z[o, ξ, t] = (A e Aᵀ)[ξ] for the 2x2 block e of gy covered by tile t (zeros beyond the map):
    the transform of the output gradient for the weight gradient.

    gy (N, O, OH, OW); z (O, 16, >= n_count*th*tw). A e = [e0, e0 + e1, e0 - e1, -e1] along
    each direction; one tile row at a time, vectorised over its width and then its tiles.
    """
    o_all, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    width = 2 * tw
    strip = np.zeros((2, width), dtype=gy.dtype)  # the two gy rows of a tile row, padded
    col = np.empty((4, width), dtype=gy.dtype)  # A applied down the columns
    for o in range(o_all):
        zo = z[o]
        for n in range(n_count):
            plane = gy[n_start + n, o]
            for ty in range(th):
                for i in range(2):
                    row = strip[i]
                    if 2 * ty + i < oh:
                        src = plane[2 * ty + i]
                        for q in range(ow):
                            row[q] = src[q]
                    else:
                        row[:ow] = 0
                e0, e1 = strip[0], strip[1]
                c0, c1, c2, c3 = col[0], col[1], col[2], col[3]
                for q in range(width):
                    c0[q] = e0[q]
                    c1[q] = e0[q] + e1[q]
                    c2[q] = e0[q] - e1[q]
                    c3[q] = -e1[q]
                t0 = (n * th + ty) * tw
                for k in range(4):
                    ck = col[k]
                    o0, o1 = zo[4 * k + 0, t0:t0 + tw], zo[4 * k + 1, t0:t0 + tw]
                    o2, o3 = zo[4 * k + 2, t0:t0 + tw], zo[4 * k + 3, t0:t0 + tw]
                    for q in range(tw):
                        a, b = ck[2 * q], ck[2 * q + 1]
                        o0[q] = a
                        o1[q] = a + b
                        o2[q] = a - b
                        o3[q] = -b


@kernel
def weight_grad_transform(s, gw):
    """gw[o, c] = Gᵀ S[:, o, c] G (3x3) for s (16, O, Cg); gw (O, Cg, 3, 3)."""
    o_all, c_all = s.shape[1], s.shape[2]
    half = s.dtype.type(0.5)
    e = np.empty((3, 4), dtype=s.dtype)
    for o in range(o_all):
        for c in range(c_all):
            for j in range(4):  # e = Gᵀ S (along the columns): [s0 + (s1+s2)/2, (s1-s2)/2, (s1+s2)/2 + s3]
                s0, s1, s2, s3 = s[j, o, c], s[4 + j, o, c], s[8 + j, o, c], s[12 + j, o, c]
                e[0, j] = s0 + half * (s1 + s2)
                e[1, j] = half * (s1 - s2)
                e[2, j] = half * (s1 + s2) + s3
            for i in range(3):
                s0, s1, s2, s3 = e[i, 0], e[i, 1], e[i, 2], e[i, 3]
                gw[o, c, i, 0] = s0 + half * (s1 + s2)
                gw[o, c, i, 1] = half * (s1 - s2)
                gw[o, c, i, 2] = half * (s1 + s2) + s3
