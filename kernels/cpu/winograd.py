"""Winograd convolution F(2x2, 3x3) and F(4x4, 3x3) for 3x3 stride-1 layers (AlexNet's conv3-5;
'auto' takes F(4x4, 3x3), whose kernels are at the end of this file, in float64, and F(5x5, 3x3)
of ``winograd5.py`` in float32: ``conv.winograd_for``).

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

from ._jit import inline, kernel

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


@inline
def load_strip(plane, strip, r0, c0, lo, hi):
    """strip[i, lo:hi] = plane[r0 + i, lo - c0:hi - c0] for the strip's rows that lie inside the
    plane, zeros for those outside (the strip's columns outside [lo, hi) are left as they are:
    the callers keep them zero)."""
    for i in range(strip.shape[0]):
        row = strip[i]
        if 0 <= r0 + i < plane.shape[0]:
            src = plane[r0 + i, lo - c0:]
            dst = row[lo:hi]
            for q in range(hi - lo):
                dst[q] = src[q]
        else:
            row[lo:hi] = 0


@kernel
def input_transform(x, v, n_start, n_count, ph, pw, th, tw):
    """v[c, ξ, t] = (Bᵀ d B)[ξ] for the 4x4 input tile d of output tile t = (n, ty, tx), which
    starts at input row 2*ty - ph and column 2*tx - pw (zeros outside the image).

    x (N, C, H, W); v (C, 16, >= n_count*th*tw); images n_start ... n_start+n_count-1.
    One tile row at a time: the four input rows are copied into a zero-padded strip, Bᵀ is
    applied down the columns of the strip (vectorised over its width), then B along each tile
    (vectorised over the tiles of the row).
    """
    c_all, w_in = x.shape[1], x.shape[3]
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
                load_strip(plane, strip, 2 * ty - ph, pw, lo, hi)
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
    o_all, ow = gy.shape[1], gy.shape[3]
    width = 2 * tw
    strip = np.zeros((2, width), dtype=gy.dtype)  # the two gy rows of a tile row, padded
    col = np.empty((4, width), dtype=gy.dtype)  # A applied down the columns
    for o in range(o_all):
        zo = z[o]
        for n in range(n_count):
            plane = gy[n_start + n, o]
            for ty in range(th):
                load_strip(plane, strip, 2 * ty, 0, 0, ow)
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


# ----- F(4x4, 3x3) ----------------------------------------------------------------------------------
# 6x6 transformed tiles for 4x4 blocks of outputs: 36 multiplications instead of 144 per block (0.25x;
# with the tiles covering a 13x13 map, 16*36 per channel pair instead of 9*169: 0.38x, against 0.52x
# for F(2x2, 3x3)), and 2.25 transformed values per output instead of 4, so less memory traffic too.
# The interpolation points are 0, ±1, ±2 and ∞ (Lavin & Gray):
#
#     Bᵀ = [4  0 -5  0  1  0]    G = [ 1/4     0     0 ]    Aᵀ = [1  1  1  1  1  0]
#          [0 -4 -4  1  1  0]        [-1/6  -1/6  -1/6 ]         [0  1 -1  2 -2  0]
#          [0  4 -4 -1  1  0]        [-1/6   1/6  -1/6 ]         [0  1  1  4  4  0]
#          [0 -2 -1  2  1  0]        [1/24  1/12   1/6 ]         [0  1 -1  8 -8  1]
#          [0  2 -1 -2  1  0]        [1/24 -1/12   1/6 ]
#          [0  4  0 -5  0  1]        [  0     0     1  ]
#
# The larger coefficients cost accuracy: in float32 its error is a few times F(2x2, 3x3)'s (still
# ~1e-6 relative; tests/kernels/cpu/test_cpu_kernels.py bounds it). Same layouts as above with 36 positions.

ALPHA4 = 6


def tiles4(size):
    """Number of 4-wide tiles covering ``size`` outputs."""
    return (size + 3) // 4


@inline
def bt_rows(x0, x1, x2, x3, x4, x5, y0, y1, y2, y3, y4, y5):
    """(y0 ... y5) = Bᵀ (x0 ... x5), elementwise over 1-D arrays of equal length."""
    four, five, two = x0.dtype.type(4), x0.dtype.type(5), x0.dtype.type(2)
    for q in range(x0.shape[0]):
        a, b, c, d, f, g = x0[q], x1[q], x2[q], x3[q], x4[q], x5[q]
        y0[q] = four * a - five * c + f
        y1[q] = f + d - four * (b + c)
        y2[q] = f - d + four * (b - c)
        y3[q] = f - c + two * (d - b)
        y4[q] = f - c - two * (d - b)
        y5[q] = four * b - five * d + g


@inline
def a_rows(x0, x1, x2, x3, y0, y1, y2, y3, y4, y5):
    """(y0 ... y5) = A (x0 ... x3), elementwise over 1-D arrays of equal length."""
    two, four = x0.dtype.type(2), x0.dtype.type(4)
    for q in range(x0.shape[0]):
        a, b, c, d = x0[q], x1[q], x2[q], x3[q]
        s02, s13 = a + c, b + d
        t02, t13 = a + four * c, two * (b + four * d)
        y0[q] = a
        y1[q] = s02 + s13
        y2[q] = s02 - s13
        y3[q] = t02 + t13
        y4[q] = t02 - t13
        y5[q] = d


@inline
def gather_tiles(plane, d, t0, th, tw, size, step, ph, pw):
    """d[size*i + j, t0 + ty*tw + tx] = plane[step ty - ph + i, step tx - pw + j] (0 outside the plane)
    for the th x tw tiles of side ``size``, ``step`` apart, of one plane: a tile's values one per row
    of d, so the transforms then run along rows of all the tiles."""
    h_in, w_in = plane.shape
    zero = plane.dtype.type(0)
    for ty in range(th):
        for i in range(size):
            h = step * ty - ph + i
            inside = 0 <= h < h_in
            for tx in range(tw):
                t = t0 + ty * tw + tx
                for j in range(size):
                    col = step * tx - pw + j
                    d[size * i + j, t] = plane[h, col] if inside and 0 <= col < w_in else zero


@kernel
def input_transform4(x, v, n_start, n_count, ph, pw, th, tw):
    """v[c, ξ, t] = (Bᵀ d B)[ξ] for the 6x6 input tile d of output tile t = (n, ty, tx), which starts
    at input row 4*ty - ph and column 4*tx - pw (zeros outside the image). x (N, C, H, W);
    v (C, 36, >= n_count*th*tw).

    AlexNet's 13x13 maps have only 4 tiles per row, too few to vectorise over, so unlike
    ``input_transform`` this one gathers the 36 values of every tile of a channel first (d, one
    row per tile position) and then applies Bᵀ and B along rows of all the chunk's tiles."""
    c_all = x.shape[1]
    t_all = n_count * th * tw
    d = np.empty((36, t_all), dtype=x.dtype)
    e = np.empty((36, t_all), dtype=x.dtype)  # Bᵀ d, row 6 k + j
    for c in range(c_all):
        for n in range(n_count):
            gather_tiles(x[n_start + n, c], d, n * th * tw, th, tw, 6, 4, ph, pw)
        for j in range(6):  # Bᵀ down the columns of every tile
            bt_rows(d[j, :t_all], d[6 + j, :t_all], d[12 + j, :t_all], d[18 + j, :t_all], d[24 + j, :t_all],
                    d[30 + j, :t_all], e[j, :t_all], e[6 + j, :t_all], e[12 + j, :t_all], e[18 + j, :t_all],
                    e[24 + j, :t_all], e[30 + j, :t_all])
        vc = v[c]
        for k in range(6):  # then B along the rows
            bt_rows(e[6 * k, :t_all], e[6 * k + 1, :t_all], e[6 * k + 2, :t_all], e[6 * k + 3, :t_all],
                    e[6 * k + 4, :t_all], e[6 * k + 5, :t_all], vc[6 * k, :t_all], vc[6 * k + 1, :t_all],
                    vc[6 * k + 2, :t_all], vc[6 * k + 3, :t_all], vc[6 * k + 4, :t_all], vc[6 * k + 5, :t_all])


@kernel
def output_transform4(m, bias, y, n_start, n_count, th, tw, relu):
    """y[n_start + n, o, 4ty:4ty+4, 4tx:4tx+4] = (Aᵀ M[o, :, t] A) + bias[o], clipped to y, then
    max(., 0) if ``relu``. m (O, 36, >= n_count*th*tw); y (N, O, OH, OW). Vectorised over all the
    chunk's tiles of a channel (see ``input_transform4``), then scattered into y."""
    o_all, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    t_all = n_count * th * tw
    zero, two, four, eight = y.dtype.type(0), y.dtype.type(2), y.dtype.type(4), y.dtype.type(8)
    r = np.empty((24, t_all), dtype=y.dtype)  # Aᵀ M, row 6 i + j
    s = np.empty((16, t_all), dtype=y.dtype)  # the 4x4 outputs, row 4 i + j
    for o in range(o_all):
        mo = m[o]
        bo = bias[o]
        for j in range(6):
            m0, m1, m2 = mo[j, :t_all], mo[6 + j, :t_all], mo[12 + j, :t_all]
            m3, m4, m5 = mo[18 + j, :t_all], mo[24 + j, :t_all], mo[30 + j, :t_all]
            r0, r1, r2, r3 = r[j, :t_all], r[6 + j, :t_all], r[12 + j, :t_all], r[18 + j, :t_all]
            for q in range(t_all):
                s12, d12 = m1[q] + m2[q], m1[q] - m2[q]
                s34, d34 = m3[q] + m4[q], m3[q] - m4[q]
                r0[q] = m0[q] + s12 + s34
                r1[q] = d12 + two * d34
                r2[q] = s12 + four * s34
                r3[q] = d12 + eight * d34 + m5[q]
        for i in range(4):
            a, b, c_ = r[6 * i, :t_all], r[6 * i + 1, :t_all], r[6 * i + 2, :t_all]
            d, f, g = r[6 * i + 3, :t_all], r[6 * i + 4, :t_all], r[6 * i + 5, :t_all]
            s0, s1, s2, s3 = s[4 * i, :t_all], s[4 * i + 1, :t_all], s[4 * i + 2, :t_all], s[4 * i + 3, :t_all]
            for q in range(t_all):
                s12, d12 = b[q] + c_[q], b[q] - c_[q]
                s34, d34 = d[q] + f[q], d[q] - f[q]
                v0 = a[q] + s12 + s34 + bo
                v1 = d12 + two * d34 + bo
                v2 = s12 + four * s34 + bo
                v3 = d12 + eight * d34 + g[q] + bo
                s0[q] = zero if relu and v0 < zero else v0
                s1[q] = zero if relu and v1 < zero else v1
                s2[q] = zero if relu and v2 < zero else v2
                s3[q] = zero if relu and v3 < zero else v3
        full = ow // 4  # tiles whose 4 columns all lie in y
        for n in range(n_count):
            plane = y[n_start + n, o]
            for ty in range(th):
                t0 = (n * th + ty) * tw
                for i in range(min(4, oh - 4 * ty)):
                    # one output row: its full tiles interleave 4 rows of s (4 plain stores per tile; with
                    # a bounds test per value this scatter took ~1/3 of the kernel), then the partial one
                    dst = plane[4 * ty + i]
                    q0, q1, q2, q3 = s[4 * i, t0:t0 + tw], s[4 * i + 1, t0:t0 + tw], s[4 * i + 2, t0:t0 + tw], s[4 * i + 3, t0:t0 + tw]
                    for tx in range(full):
                        dst[4 * tx], dst[4 * tx + 1], dst[4 * tx + 2], dst[4 * tx + 3] = q0[tx], q1[tx], q2[tx], q3[tx]
                    for j in range(ow - 4 * full):
                        dst[4 * full + j] = s[4 * i + j, t0 + full]


@inline
def g_rows(x0, x1, x2, y0, y1, y2, y3, y4, y5):
    """(y0 ... y5) = G (x0, x1, x2), elementwise over 1-D arrays (float64: the 1/6 and 1/24 are rounded once)."""
    for b in range(x0.shape[0]):
        a, m, c = x0[b], x1[b], x2[b]
        y0[b] = a / 4
        y1[b] = -(a + m + c) / 6
        y2[b] = -(a - m + c) / 6
        y3[b] = a / 24 + m / 12 + c / 6
        y4[b] = a / 24 - m / 12 + c / 6
        y5[b] = c


@inline
def kernel_taps(w, g, a, flip):
    """g[3 i + j, b] = w[a, b, i, j]: tap (i, j) of the kernels in row a of a weight transform, or for
    ``flip`` w[b, a, 2 - i, 2 - j] (the input gradient's kernels, rotated by 180 degrees)."""
    width = g.shape[1]
    for i in range(3):
        for j in range(3):
            gi = g[3 * i + j]
            if flip:
                for b in range(width):
                    gi[b] = w[b, a, 2 - i, 2 - j]
            else:
                for b in range(width):
                    gi[b] = w[a, b, i, j]


@inline
def store_row(r, u, a):
    """u[ξ, a, :] = r[ξ] for every position ξ: a transformed row of kernels into U."""
    for xi in range(r.shape[0]):
        src, dst = r[xi], u[xi, a]
        for b in range(src.shape[0]):
            dst[b] = src[b]


@inline
def load_row(s, o, x):
    """x[ξ] = s[ξ, o, :] for every position ξ: one output channel of a transformed weight gradient."""
    for xi in range(x.shape[0]):
        src, dst = s[xi, o], x[xi]
        for b in range(dst.shape[0]):
            dst[b] = src[b]


@kernel
def weight_transform4(w, u, flip):
    """u[ξ, o, c] = (G g Gᵀ)[ξ] (6x6) with g = w[o, c], or for ``flip`` g = w[c, o] rotated by 180
    degrees and u of shape (36, Cin, Cout). w (O, Cg, 3, 3).

    One output row of u at a time (o, or c for ``flip``), vectorised along it: u's writes are
    contiguous (one kernel at a time wrote 36 values 1 MB apart and ran 2-2.5x slower)."""
    o_all, c_all = w.shape[0], w.shape[1]
    rows, width = (c_all, o_all) if flip else (o_all, c_all)
    g = np.empty((9, width), dtype=np.float64)  # tap 3 i + j of every kernel of the row
    e = np.empty((18, width), dtype=np.float64)  # G g, row 3 k + j
    r = np.empty((36, width), dtype=np.float64)  # (G g) Gᵀ, row 6 k + l
    for a in range(rows):
        kernel_taps(w, g, a, flip)
        for j in range(3):
            g_rows(g[j], g[3 + j], g[6 + j], e[j], e[3 + j], e[6 + j], e[9 + j], e[12 + j], e[15 + j])
        for k in range(6):
            g_rows(e[3 * k], e[3 * k + 1], e[3 * k + 2], r[6 * k], r[6 * k + 1], r[6 * k + 2], r[6 * k + 3],
                   r[6 * k + 4], r[6 * k + 5])
        store_row(r, u, a)


@kernel
def grad_output_transform4(gy, z, n_start, n_count, th, tw):
    """z[o, ξ, t] = (A e Aᵀ)[ξ] for the 4x4 block e of gy covered by tile t (zeros beyond the map).
    A e = [e0, e0+e1+e2+e3, e0-e1+e2-e3, e0+2e1+4e2+8e3, e0-2e1+4e2-8e3, e3] along each direction.
    gy (N, O, OH, OW); z (O, 36, >= n_count*th*tw).

    Like ``input_transform4``: the blocks of all the chunk's tiles of a channel are gathered
    first, then A is applied along rows of all of them (on conv1's 55x55 maps 2x faster than
    transforming strips of four rows, whose 14 tiles make short loops)."""
    o_all = gy.shape[1]
    t_all = n_count * th * tw
    d = np.empty((16, t_all), dtype=gy.dtype)  # the 4x4 blocks, row 4 i + j
    e = np.empty((24, t_all), dtype=gy.dtype)  # A down the columns, row 4 k + j
    for o in range(o_all):
        for n in range(n_count):
            gather_tiles(gy[n_start + n, o], d, n * th * tw, th, tw, 4, 4, 0, 0)
        for j in range(4):  # A down the columns
            a_rows(d[j, :t_all], d[4 + j, :t_all], d[8 + j, :t_all], d[12 + j, :t_all], e[j, :t_all], e[4 + j, :t_all],
                   e[8 + j, :t_all], e[12 + j, :t_all], e[16 + j, :t_all], e[20 + j, :t_all])
        zo = z[o]
        for k in range(6):  # then along the rows
            a_rows(e[4 * k, :t_all], e[4 * k + 1, :t_all], e[4 * k + 2, :t_all], e[4 * k + 3, :t_all], zo[6 * k, :t_all],
                   zo[6 * k + 1, :t_all], zo[6 * k + 2, :t_all], zo[6 * k + 3, :t_all], zo[6 * k + 4, :t_all],
                   zo[6 * k + 5, :t_all])


@inline
def gt_rows(x0, x1, x2, x3, x4, x5, y0, y1, y2):
    """(y0, y1, y2) = Gᵀ (x0 ... x5), elementwise over 1-D arrays."""
    for b in range(x0.shape[0]):
        s0, s1, s2, s3, s4, s5 = x0[b], x1[b], x2[b], x3[b], x4[b], x5[b]
        y0[b] = s0 / 4 - (s1 + s2) / 6 + (s3 + s4) / 24
        y1[b] = (s2 - s1) / 6 + (s3 - s4) / 12
        y2[b] = (s3 + s4 - s1 - s2) / 6 + s5


@kernel
def weight_grad_transform4(s, gw):
    """gw[o, c] = Gᵀ S[:, o, c] G (3x3) for s (36, O, Cg); gw (O, Cg, 3, 3). One o at a time,
    vectorised over c."""
    o_all, c_all = s.shape[1], s.shape[2]
    x = np.empty((36, c_all), dtype=np.float64)
    e = np.empty((18, c_all), dtype=np.float64)  # Gᵀ S down the columns, row 6 i + l
    r = np.empty((9, c_all), dtype=np.float64)  # then along the rows, row 3 i + j
    for o in range(o_all):
        load_row(s, o, x)
        for c in range(6):
            gt_rows(x[c], x[6 + c], x[12 + c], x[18 + c], x[24 + c], x[30 + c], e[c], e[6 + c], e[12 + c])
        for i in range(3):
            gt_rows(e[6 * i], e[6 * i + 1], e[6 * i + 2], e[6 * i + 3], e[6 * i + 4], e[6 * i + 5],
                    r[3 * i], r[3 * i + 1], r[3 * i + 2])
        for c in range(c_all):
            for ij in range(9):
                gw[o, c, ij // 3, ij % 3] = r[ij, c]
