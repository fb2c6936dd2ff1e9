"""Winograd F(5x5, 3x3) for 3x3 stride-1 convolutions ('winograd5'), written from its matrices.

Why 5x5 output tiles: the sizes of AlexNet's maps. 13x13 (conv3-5) takes 4 x 4 tiles of F(4x4, 3x3),
each 6x6 transformed values: 16 * 36 = 576 multiply-adds per channel pair and image (the tiles
cover 16x16). F(6x6, 3x3) needs 3 x 3 tiles of 8x8: 576 again. F(5x5, 3x3) needs 3 x 3 tiles of
7x7: 441, 0.77x the GEMM work and the transformed data of F(4x4, 3x3). Conv1's 55x55 maps (after
the polyphase split) are 11 x 11 tiles exactly: 121 * 49 against 196 * 36, 0.84x.

The algorithm is Toom-Cook's with the interpolation points 0, 1, -1, 2, -2, 1/2 and infinity
(Lavin & Gray's construction; the matrices below were derived with exact fractions, and
tests/kernels/cpu/test_cpu_kernels.py checks that they compute the correlation):

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        d: 7x7 input tile, g: 3x3 kernel, Y: 5x5 outputs

Every entry of Aᵀ and Bᵀ is exact in binary floating point (halves, quarters, ..., integers);
G's thirds and ninths are applied in float64 to the weights. In float32 the error is ~1.5x that
of F(4x4, 3x3) (benchmarks/winograd_error.py measures both against float64: RESULTS.md).

The kernels follow ``winograd``'s F(4x4, 3x3) ones (same layouts: V (C, 49, T), M (O, 49, T),
U (49, O, C); T ordered (image, tile row, tile column); a channel's tiles gathered, then each
transform applied along rows of all of them). Bᵀ, Aᵀ and A are written out row by row
(``bt5_rows``, ``at5_rows``, ``a5_rows``, the matrices' entries with their zeros left out): done
as a generic product by the matrix (``apply_rows``), the transforms ran 1.7x slower than
F(4x4, 3x3)'s. The weights' transforms, once per step and in float64, keep ``apply_rows``.
"""
from __future__ import annotations

import numpy as np

from ._jit import inline, kernel
from .winograd import gather_tiles, kernel_taps, load_row, store_row

ALPHA5 = 7  # transformed tile side: m + r - 1 with m = 5 outputs, r = 3 taps

BT5 = np.array([  # (7, 7): input tile -> transformed tile, along each axis
    [-2, 4, 5 / 2, -5, -1 / 2, 1, 0],
    [0, 2, -2, -9 / 2, 1 / 2, 1, 0],
    [0, -2, 6, -7 / 2, -3 / 2, 1, 0],
    [0, 1, -3 / 2, -2, 3 / 2, 1, 0],
    [0, -1, 5 / 2, 0, -5 / 2, 1, 0],
    [0, 4, 0, -5, 0, 1, 0],
    [0, -2, 4, 5 / 2, -5, -1 / 2, 1],
])
G5 = np.array([  # (7, 3): kernel taps -> transformed kernel, along each axis
    [-1 / 2, 0, 0],
    [-1 / 3, -1 / 3, -1 / 3],
    [1 / 9, -1 / 9, 1 / 9],
    [1 / 36, 1 / 18, 1 / 9],
    [-1 / 60, 1 / 30, -1 / 15],
    [32 / 45, 16 / 45, 8 / 45],
    [0, 0, 1],
])
AT5 = np.array([  # (5, 7): transformed products -> output tile, along each axis
    [1, 1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 1 / 2, 0],
    [0, 1, 1, 4, 4, 1 / 4, 0],
    [0, 1, -1, 8, -8, 1 / 8, 0],
    [0, 1, 1, 16, 16, 1 / 16, 1],
])
A5 = np.ascontiguousarray(AT5.T)  # (7, 5): the output gradient's transform (weight gradient)
GT5 = np.ascontiguousarray(G5.T)  # (3, 7): the weight gradient back to taps


def tiles5(size):
    """Number of 5-wide tiles covering ``size`` outputs."""
    return (size + 4) // 5


@inline
def apply_rows(mat, src, s0, s_step, dst, d0, d_step, t):
    """dst[d0 + r*d_step, :t] = Σ_k mat[r, k] src[s0 + k*s_step, :t] for every row r of ``mat``
    (a constant matrix: its zero entries are skipped), in the arrays' dtype."""
    for r in range(mat.shape[0]):
        out = dst[d0 + r * d_step, :t]
        for q in range(t):
            out[q] = 0
        for k in range(mat.shape[1]):
            c = dst.dtype.type(mat[r, k])
            if c != 0:
                row = src[s0 + k * s_step, :t]
                for q in range(t):
                    out[q] += c * row[q]


@inline
def bt5_rows(x0, x1, x2, x3, x4, x5, x6, y0, y1, y2, y3, y4, y5, y6):
    """(y0 ... y6) = Bᵀ (x0 ... x6), elementwise over 1-D arrays of equal length (``BT5``'s rows)."""
    half, one_half, two, two_half = x0.dtype.type(0.5), x0.dtype.type(1.5), x0.dtype.type(2), x0.dtype.type(2.5)
    three_half, four, four_half = x0.dtype.type(3.5), x0.dtype.type(4), x0.dtype.type(4.5)
    five, six = x0.dtype.type(5), x0.dtype.type(6)
    for q in range(x0.shape[0]):
        a, b, c, d, e, f, g = x0[q], x1[q], x2[q], x3[q], x4[q], x5[q], x6[q]
        y0[q] = four * b - two * a + two_half * c - five * d - half * e + f
        y1[q] = two * (b - c) - four_half * d + half * e + f
        y2[q] = six * c - two * b - three_half * d - one_half * e + f
        y3[q] = b - one_half * (c - e) - two * d + f
        y4[q] = two_half * (c - e) - b + f
        y5[q] = four * b - five * d + f
        y6[q] = four * c - two * b + two_half * d - five * e - half * f + g


@inline
def at5_rows(x0, x1, x2, x3, x4, x5, x6, y0, y1, y2, y3, y4, bias, relu):
    """(y0 ... y4) = Aᵀ (x0 ... x6) + bias, then max(., 0) if ``relu``, elementwise over 1-D arrays of
    equal length (``AT5``'s rows)."""
    zero, two, four, eight, sixteen = x0.dtype.type(0), x0.dtype.type(2), x0.dtype.type(4), x0.dtype.type(8), x0.dtype.type(16)
    half, quarter, eighth, sixteenth = x0.dtype.type(0.5), x0.dtype.type(0.25), x0.dtype.type(0.125), x0.dtype.type(0.0625)
    for q in range(x0.shape[0]):
        s12, d12 = x1[q] + x2[q], x1[q] - x2[q]
        s34, d34 = x3[q] + x4[q], x3[q] - x4[q]
        f = x5[q]
        v0 = x0[q] + s12 + s34 + f + bias
        v1 = d12 + two * d34 + half * f + bias
        v2 = s12 + four * s34 + quarter * f + bias
        v3 = d12 + eight * d34 + eighth * f + bias
        v4 = s12 + sixteen * s34 + sixteenth * f + x6[q] + bias
        y0[q] = zero if relu and v0 < zero else v0
        y1[q] = zero if relu and v1 < zero else v1
        y2[q] = zero if relu and v2 < zero else v2
        y3[q] = zero if relu and v3 < zero else v3
        y4[q] = zero if relu and v4 < zero else v4


@inline
def a5_rows(x0, x1, x2, x3, x4, y0, y1, y2, y3, y4, y5, y6):
    """(y0 ... y6) = A (x0 ... x4), elementwise over 1-D arrays of equal length (``A5``'s rows)."""
    two, four, eight, sixteen = x0.dtype.type(2), x0.dtype.type(4), x0.dtype.type(8), x0.dtype.type(16)
    half, quarter, eighth, sixteenth = x0.dtype.type(0.5), x0.dtype.type(0.25), x0.dtype.type(0.125), x0.dtype.type(0.0625)
    for q in range(x0.shape[0]):
        a, b, c, d, e = x0[q], x1[q], x2[q], x3[q], x4[q]
        even, odd = a + c + e, b + d
        even4, odd4 = a + four * c + sixteen * e, two * b + eight * d
        y0[q] = a
        y1[q] = even + odd
        y2[q] = even - odd
        y3[q] = even4 + odd4
        y4[q] = even4 - odd4
        y5[q] = a + half * b + quarter * c + eighth * d + sixteenth * e
        y6[q] = e


@kernel
def input_transform5(x, v, n_start, n_count, ph, pw, th, tw):
    """v[c, ξ, t] = (Bᵀ d B)[ξ] for the 7x7 input tile d of output tile t = (n, ty, tx), which starts
    at input row 5*ty - ph and column 5*tx - pw (zeros outside the image). x (N, C, H, W);
    v (C, 49, >= n_count*th*tw). As ``winograd.input_transform4``: a channel's tiles are gathered
    (one row of d per tile position), then Bᵀ runs down their columns and B along their rows."""
    t_all = n_count * th * tw
    d = np.empty((49, t_all), dtype=x.dtype)
    e = np.empty((49, t_all), dtype=x.dtype)  # Bᵀ d, row 7 a + j
    for c in range(x.shape[1]):
        for n in range(n_count):
            gather_tiles(x[n_start + n, c], d, n * th * tw, th, tw, 7, 5, ph, pw)
        for j in range(7):  # Bᵀ down the columns of every tile
            bt5_rows(d[j, :t_all], d[7 + j, :t_all], d[14 + j, :t_all], d[21 + j, :t_all], d[28 + j, :t_all],
                     d[35 + j, :t_all], d[42 + j, :t_all], e[j, :t_all], e[7 + j, :t_all], e[14 + j, :t_all],
                     e[21 + j, :t_all], e[28 + j, :t_all], e[35 + j, :t_all], e[42 + j, :t_all])
        vc = v[c]
        for a in range(7):  # then B along the rows
            k = 7 * a
            bt5_rows(e[k, :t_all], e[k + 1, :t_all], e[k + 2, :t_all], e[k + 3, :t_all], e[k + 4, :t_all],
                     e[k + 5, :t_all], e[k + 6, :t_all], vc[k, :t_all], vc[k + 1, :t_all], vc[k + 2, :t_all],
                     vc[k + 3, :t_all], vc[k + 4, :t_all], vc[k + 5, :t_all], vc[k + 6, :t_all])


@kernel
def output_transform5(m, bias, y, n_start, n_count, th, tw, relu):
    """y[n_start + n, o, 5ty:5ty+5, 5tx:5tx+5] = (Aᵀ M[o, :, t] A) + bias[o], clipped to y, then
    max(., 0) if ``relu``. m (O, 49, >= n_count*th*tw); y (N, O, OH, OW). As
    ``winograd.output_transform4``, with its scatter (full tiles by plain stores)."""
    oh, ow = y.shape[2], y.shape[3]
    t_all = n_count * th * tw
    zero = y.dtype.type(0)
    r = np.empty((35, t_all), dtype=y.dtype)  # Aᵀ M, row 7 i + b
    s = np.empty((25, t_all), dtype=y.dtype)  # the 5x5 outputs, row 5 i + j
    full = ow // 5  # tiles whose 5 columns all lie in y
    for o in range(y.shape[1]):
        mo = m[o]
        for b in range(7):  # Aᵀ down the columns
            at5_rows(mo[b, :t_all], mo[7 + b, :t_all], mo[14 + b, :t_all], mo[21 + b, :t_all], mo[28 + b, :t_all],
                     mo[35 + b, :t_all], mo[42 + b, :t_all], r[b, :t_all], r[7 + b, :t_all], r[14 + b, :t_all],
                     r[21 + b, :t_all], r[28 + b, :t_all], zero, False)
        for i in range(5):  # then A along the rows, the bias and the ReLU with it
            k = 7 * i
            at5_rows(r[k, :t_all], r[k + 1, :t_all], r[k + 2, :t_all], r[k + 3, :t_all], r[k + 4, :t_all],
                     r[k + 5, :t_all], r[k + 6, :t_all], s[5 * i, :t_all], s[5 * i + 1, :t_all], s[5 * i + 2, :t_all],
                     s[5 * i + 3, :t_all], s[5 * i + 4, :t_all], bias[o], relu)
        for n in range(n_count):
            plane = y[n_start + n, o]
            for ty in range(th):
                t0 = (n * th + ty) * tw
                for i in range(min(5, oh - 5 * ty)):
                    dst = plane[5 * ty + i]
                    q0, q1, q2 = s[5 * i, t0:t0 + tw], s[5 * i + 1, t0:t0 + tw], s[5 * i + 2, t0:t0 + tw]
                    q3, q4 = s[5 * i + 3, t0:t0 + tw], s[5 * i + 4, t0:t0 + tw]
                    for tx in range(full):
                        k = 5 * tx
                        dst[k], dst[k + 1], dst[k + 2], dst[k + 3], dst[k + 4] = q0[tx], q1[tx], q2[tx], q3[tx], q4[tx]
                    for j in range(ow - 5 * full):
                        dst[5 * full + j] = s[5 * i + j, t0 + full]


@kernel
def weight_transform5(w, u, flip):
    """u[ξ, o, c] = (G g Gᵀ)[ξ] (7x7) with g = w[o, c], or for ``flip`` g = w[c, o] rotated by 180
    degrees and u of shape (49, Cin, Cout). w (O, Cg, 3, 3). In float64, one row of u at a time
    (o, or c for ``flip``), vectorised along it (as ``winograd.weight_transform4``)."""
    o_all, c_all = w.shape[0], w.shape[1]
    rows, width = (c_all, o_all) if flip else (o_all, c_all)
    g = np.empty((9, width), dtype=np.float64)  # tap 3 i + j of every kernel of the row
    e = np.empty((21, width), dtype=np.float64)  # G g, row 3 a + j
    r = np.empty((49, width), dtype=np.float64)  # (G g) Gᵀ, row 7 a + b
    for a in range(rows):
        kernel_taps(w, g, a, flip)
        for j in range(3):
            apply_rows(G5, g, j, 3, e, j, 3, width)
        for k in range(7):
            apply_rows(G5, e, 3 * k, 1, r, 7 * k, 1, width)
        store_row(r, u, a)


@kernel
def grad_output_transform5(gy, z, n_start, n_count, th, tw):
    """z[o, ξ, t] = (A e Aᵀ)[ξ] for the 5x5 block e of gy covered by tile t (zeros beyond the map):
    the output gradient's transform for the weight gradient. gy (N, O, OH, OW);
    z (O, 49, >= n_count*th*tw)."""
    t_all = n_count * th * tw
    d = np.empty((25, t_all), dtype=gy.dtype)  # the 5x5 blocks, row 5 i + j
    e = np.empty((35, t_all), dtype=gy.dtype)  # A down the columns, row 5 a + j
    for o in range(gy.shape[1]):
        for n in range(n_count):
            gather_tiles(gy[n_start + n, o], d, n * th * tw, th, tw, 5, 5, 0, 0)
        for j in range(5):  # A down the columns
            a5_rows(d[j, :t_all], d[5 + j, :t_all], d[10 + j, :t_all], d[15 + j, :t_all], d[20 + j, :t_all],
                    e[j, :t_all], e[5 + j, :t_all], e[10 + j, :t_all], e[15 + j, :t_all], e[20 + j, :t_all],
                    e[25 + j, :t_all], e[30 + j, :t_all])
        zo = z[o]
        for a in range(7):  # then along the rows
            k = 5 * a
            a5_rows(e[k, :t_all], e[k + 1, :t_all], e[k + 2, :t_all], e[k + 3, :t_all], e[k + 4, :t_all],
                    zo[7 * a, :t_all], zo[7 * a + 1, :t_all], zo[7 * a + 2, :t_all], zo[7 * a + 3, :t_all],
                    zo[7 * a + 4, :t_all], zo[7 * a + 5, :t_all], zo[7 * a + 6, :t_all])


@kernel
def weight_grad_transform5(s, gw):
    """gw[o, c] = Gᵀ S[:, o, c] G (3x3) for s (49, O, Cg); gw (O, Cg, 3, 3). One o at a time,
    vectorised over c, in float64."""
    o_all, c_all = s.shape[1], s.shape[2]
    x = np.empty((49, c_all), dtype=np.float64)
    e = np.empty((21, c_all), dtype=np.float64)  # Gᵀ S down the columns, row 7 k + b
    r = np.empty((9, c_all), dtype=np.float64)  # then along the rows, row 3 k + l
    for o in range(o_all):
        load_row(s, o, x)
        for b in range(7):
            apply_rows(GT5, x, b, 7, e, b, 7, c_all)
        for k in range(3):
            apply_rows(GT5, e, 7 * k, 1, r, 3 * k, 1, c_all)
        for c in range(c_all):
            for kl in range(9):
                gw[o, c, kl // 3, kl % 3] = r[kl, c]
