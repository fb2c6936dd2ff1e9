"""Convolution through the discrete Fourier transform, for stride-1 layers ('auto' in
``kernels.cpu.conv`` takes it for AlexNet's conv2).

A correlation becomes a product in the frequency domain: with X, H the 2-D DFTs (size L1 x L2)
of an input map and of the kernel placed as h[(p - t) mod L] = w[t], the output map is the
inverse DFT of X ⊙ H, cropped. Summed over input channels, that is one small complex GEMM per
frequency f:

    forward     Y[f]  (N, O)  = X[f] (N, C) @ H[f] (C, O)                 y  = IDFT(Y)
    input grad  GX[f] (N, C)  = GY[f] (N, O) @ conj(H[f])ᵀ (O, C)         gx = IDFT(GX)
    weight grad GH[f] (C, O)  = conj(X[f])ᵀ (C, N) @ GY[f] (N, O)         gw = taps of IDFT(GH)

A 5x5 layer on 27x27 maps (conv2) needs L = 29, i.e. 29 x 15 frequencies of a real signal: 435
complex multiply-adds (4 real) per channel pair and image where the direct convolution needs
25 x 729: 0.10x the multiply-adds. (For 3x3 on 13x13, conv3-5: L = 14, 0.29x; there Winograd
wins all the same, because their weight spectra are large: 88 MB for conv3.)

Why DFT matrices and not an FFT: the maps are ~30 wide, where an FFT saves little arithmetic
but NumPy's pocketfft runs ~4 GFLOP/s (10 µs per 32x32 map, measured); the DFT as matrix
products runs at the BLAS's speed. The 2-D transform is done one axis at a time:

    T = x (N*C*H, W) @ R (W, Fw)                 real -> complex, along the rows (Fw = L2//2 + 1)
    T (N*C, H*Fw) -> (H*Fw, N*C)                  a transpose, so the next GEMM contracts H
    X = D (L1, H) @ T (H, Fw*N*C)                 complex, along the columns: X (F, N, C)

the first two a block of maps at a time, the block's T staying in cache between its GEMM and
its transpose (``rows_to_spectra``). The inverse runs the same steps backwards, keeping only the
output rows and columns (the crop costs nothing: the inverse matrices have OH rows, OW columns),
its transpose, real GEMM and ReLU done a block of maps at a time in cache, the GEMM writing the
output (``spectra_to_rows``).
Only half the frequencies along W are kept (a real signal's spectrum is conjugate-symmetric);
the inverse weighs them by 2 (``c_weights``). The transforms of gy and of gx work on conjugates
(conj(GY) comes from the conjugated DFT matrices at no cost), which keeps every product a plain
GEMM.

Aliasing: the DFT computes circular correlations; L >= max(OH - p + k - 1, p + H) per axis
keeps every wrapped-around term zero (``dft_length``). The padding is implicit in the same way.

The weights' spectrum H (F, C/G, O) is computed once per forward call and, when the caller
passes the same ``saved`` dict to both, reused by the backward call (``weight_spectrum``).
The batch runs in chunks of at most ``CHUNK_IMAGES`` images (bounded scratch); inside a chunk
every GEMM and transpose is split among the threads (``kernels.cpu.parallel``), in a fixed
way, so results do not depend on scheduling. Exact in exact arithmetic; in float32 the error
is of the order of the im2col GEMM's (tests/kernels/cpu/test_cpu_kernels.py).
"""
from __future__ import annotations

import functools
import itertools
import threading

import numpy as np

from ._jit import kernel
from .parallel import get_num_threads, run_parallel, split_range
from .workspace import workspace

# Images per chunk. The per-frequency products are small complex GEMMs (conv2: 64 x 48 by 48 x 128)
# bound by memory more than by arithmetic with both threads on them, and the weights' spectrum
# (42 MB for conv2) is read once a chunk: conv2's forward + backward at batch 128, 2 threads, took
# 203 + 245 ms with chunks of 32 images, 180 + 203 with 64, 191 + 184 with 128; the training step's
# peak RSS grew ~100 MB with 64 and ~390 MB with 128.
CHUNK_IMAGES = 64


def dft_length(size, out_size, k, p):
    """The smallest DFT length with no wrap-around for one axis of a stride-1 correlation of a
    ``size`` map with a ``k`` tap kernel, padding ``p``, giving ``out_size`` outputs."""
    return max(out_size - p + k - 1, p + size)


def c_weights(length):
    """Weights of the kept half-spectrum in a real inverse DFT: 1 for frequency 0 (and L/2 when
    L is even), 2 for the others (they stand for their conjugate twins too)."""
    c = np.full(length // 2 + 1, 2.0)
    c[0] = 1.0
    if length % 2 == 0:
        c[-1] = 1.0
    return c


def complex_dtype(dtype):
    return np.complex64 if np.dtype(dtype) == np.float32 else np.complex128


class Plan:
    """The DFT matrices of one layer geometry (cached by ``plan``).

    Signs: ``conj=True`` builds the matrices of the conjugated transform.
    """

    def __init__(self, h, w, kh, kw, ph, pw, dtype):
        self.h, self.w, self.kh, self.kw = h, w, kh, kw
        self.oh, self.ow = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        self.l1, self.l2 = dft_length(h, self.oh, kh, ph), dft_length(w, self.ow, kw, pw)
        self.fw = self.l2 // 2 + 1
        self.freqs = self.l1 * self.fw
        self.dtype, self.cdtype = np.dtype(dtype), np.dtype(complex_dtype(dtype))
        self.rows_x, self.cols_x = self._rows(w, False), self._cols(h, False)  # x -> X
        self.rows_gy, self.cols_gy = self._rows(self.ow, True), self._cols(self.oh, True)  # gy -> conj(GY)
        self.icols_y, self.irows_y = self._inverse_cols(self.oh, False), self._inverse_rows(self.ow, False)
        self.icols_gx, self.irows_gx = self._inverse_cols(h, True), self._inverse_rows(w, True)
        # kernel taps -> spectrum, one axis at a time: exp(-2πi (p - t) k / L) (``weight_spectrum``)
        e2 = np.exp(-2j * np.pi * (pw - np.arange(kw))[None] * np.arange(self.fw)[:, None] / self.l2)  # (Fw, kw)
        self.row_taps = np.concatenate([e2.real, e2.imag], axis=1).astype(dtype)  # (Fw, 2 kw)
        self.col_taps = np.exp(-2j * np.pi * (ph - np.arange(kh))[None] * np.arange(self.l1)[:, None]
                               / self.l1).astype(self.cdtype)  # (L1, kh)
        # spectrum -> kernel taps (the weight gradient): gw[t] = Re sum_f conj(GH)[f] back[f, t], with
        # back[f, t] = c(k2) / (L1 L2) exp(-2πi ((p1 - t1) k1 / L1 + (p2 - t2) k2 / L2))
        k1 = np.arange(self.l1)[:, None, None, None]
        k2 = np.arange(self.fw)[None, :, None, None]
        t1 = np.arange(kh)[None, None, :, None]
        t2 = np.arange(kw)[None, None, None, :]
        e = np.exp(-2j * np.pi * ((ph - t1) * k1 / self.l1 + (pw - t2) * k2 / self.l2))
        back = (c_weights(self.l2)[None, :, None, None] / (self.l1 * self.l2)) * e
        back = back.reshape(self.freqs, kh * kw)
        self.freq_to_taps = np.ascontiguousarray(np.concatenate([back.real, back.imag], axis=1).T).astype(dtype)  # (2T, F)

    def _rows(self, n, conj):
        """(n, 2 Fw) real: x (.., n) @ R = DFT along the last axis, as interleaved (re, im)."""
        phi = 2 * np.pi * np.arange(n)[:, None] * np.arange(self.fw)[None] / self.l2
        r = np.empty((n, 2 * self.fw))
        r[:, 0::2], r[:, 1::2] = np.cos(phi), (1 if conj else -1) * np.sin(phi)
        return r.astype(self.dtype)

    def _cols(self, n, conj):
        """(L1, n) complex: the DFT along the other axis."""
        k, j = np.arange(self.l1)[:, None], np.arange(n)[None]
        return np.exp((1j if conj else -1j) * 2 * np.pi * j * k / self.l1).astype(self.cdtype)

    def _inverse_cols(self, n, conj):
        """(n, L1) complex: the inverse DFT along the column axis, first n outputs only."""
        j, k = np.arange(n)[:, None], np.arange(self.l1)[None]
        return (np.exp((-1j if conj else 1j) * 2 * np.pi * j * k / self.l1) / self.l1).astype(self.cdtype)

    def _inverse_rows(self, n, conj):
        """(2 Fw, n) real: the real part of the inverse DFT along the rows, from interleaved (re, im)."""
        theta = 2 * np.pi * np.arange(self.fw)[:, None] * np.arange(n)[None] / self.l2
        c = c_weights(self.l2)[:, None] / self.l2
        r = np.empty((2 * self.fw, n))
        r[0::2], r[1::2] = c * np.cos(theta), (1 if conj else -1) * c * np.sin(theta)
        return r.astype(self.dtype)


@functools.lru_cache(maxsize=64)
def plan(h, w, kh, kw, ph, pw, dtype):
    return Plan(h, w, kh, kw, ph, pw, np.dtype(dtype))


def eligible(kernel_size, stride, padding):
    """Any stride-1 convolution (every padding: it only moves the kernel within the DFT)."""
    return tuple(stride) == (1, 1)


# ----- parallel building blocks -----------------------------------------------------------------------
# Maps per block of ``spectra_to_rows`` and ``rows_to_spectra``: a block's maps and their spectrum
# rows (conv2: 373 + 415 KB in float32) stay in L2 (512 KB) or next to it, from the GEMM to the
# scatter (or from the gather to the ReLU). Measured one thread, conv2's 16384 output maps: the
# forward transform 20.6 ms with 128, 24.6 with 64, 31 with 32; the inverse 34-36 ms with 64 or 128.
BLOCK = 128


@kernel
def copy_map_rows(spectra, rows, m0, count, h, to_rows):
    """A block of maps' spectrum rows between their two layouts:
    rows[m H + i, j] <-> spectra[i Fw + j // 2, 2 (m0 + m) + j % 2] for m < count, i < H.
    spectra (H Fw, 2 M) real, the real view of (H Fw, M) complex; rows (>= count H, 2 Fw) real,
    one row per (map, map row), as a GEMM reads or writes them. ``to_rows``: spectra -> rows
    (the inverse's gather), else rows -> spectra (the forward's scatter). Each spectrum row's
    stretch of the block's maps is read or written contiguously, (re, im) pairs on the other side."""
    fw = rows.shape[1] // 2
    for i in range(h):
        for f in range(fw):
            stretch = spectra[i * fw + f, 2 * m0:2 * (m0 + count)]
            for m in range(count):
                row = rows[m * h + i]
                if to_rows:
                    row[2 * f], row[2 * f + 1] = stretch[2 * m], stretch[2 * m + 1]
                else:
                    stretch[2 * m], stretch[2 * m + 1] = row[2 * f], row[2 * f + 1]


def spectra_to_rows(spectra, irows, out, m_start, m_stop, relu):
    """The last step of the inverse DFT, along the rows (real part, first OW values), reading
    the spectra transposed: out[m, i, q] = sum_j spectra[i Fw + j // 2, 2 m + j % 2] irows[j, q]
    for maps m_start ... m_stop-1; spectra (OH Fw, 2 M), the real view of (OH Fw, M) complex;
    irows (2 Fw, OW) from ``Plan._inverse_rows``; out (M, OH, OW), C-contiguous. ``relu``:
    max(out, 0) (the ReLU a convolution fuses).

    BLOCK maps at a time, in cache: their spectrum rows gathered map by map
    (``copy_map_rows``), one GEMM (BLOCK OH, 2 Fw) @ (2 Fw, OW) straight into their output
    maps, the ReLU over them while they are still in cache. On conv2's forward (4096 maps, one
    thread, blocks of 64) 8.2 ms against 13.5 for the numba pass that did the products itself with its
    accumulators in L1 (14 GFLOP/s; the BLAS runs these GEMMs at ~53): gather 2.0, GEMM 3.4,
    ReLU and the writes the rest."""
    if not out.flags.c_contiguous:
        raise ValueError(f"spectra_to_rows: expected a C-contiguous output, got strides {out.strides}")
    oh, ow = out.shape[1], out.shape[2]
    coef = workspace("fourier.coef", (BLOCK * oh, irows.shape[0]), out.dtype)
    for m0 in range(m_start, m_stop, BLOCK):
        count = min(BLOCK, m_stop - m0)
        copy_map_rows(spectra, coef, m0, count, oh, True)
        maps = out[m0:m0 + count].reshape(count * oh, ow)
        np.matmul(coef[:count * oh], irows, out=maps)
        if relu:
            np.maximum(maps, 0, out=maps)


def rows_to_spectra(maps, rows, spectra, m_start, m_stop):
    """The first step of the DFT, along the rows, written transposed for the column DFT:
    spectra[i Fw + j // 2, 2 m + j % 2] = sum_q maps[m, i, q] rows[q, j] for maps
    m_start ... m_stop-1; maps (M, H, W) C-contiguous; rows (W, 2 Fw) from ``Plan._rows``;
    spectra (H Fw, 2 M), the real view of (H Fw, M) complex.

    BLOCK maps at a time: one GEMM (BLOCK H, W) @ (W, 2 Fw) into a scratch block that stays in
    cache, scattered into the spectra (``copy_map_rows``). One thread, conv2's 6144 input maps
    7.7 ms and its 16384 output-gradient maps 20.6, against 10.0 and 29.3 for one GEMM over all
    the maps and a transpose of its whole output through memory."""
    h, w = maps.shape[1], maps.shape[2]
    t = workspace("fourier.rows", (BLOCK * h, rows.shape[1]), maps.dtype)
    for m0 in range(m_start, m_stop, BLOCK):
        count = min(BLOCK, m_stop - m0)
        np.matmul(maps[m0:m0 + count].reshape(count * h, w), rows, out=t[:count * h])
        copy_map_rows(spectra, t, m0, count, h, False)


def _map_ranges(maps):
    """(start, stop) of the maps each thread transforms, cut at multiples of BLOCK."""
    blocks = split_range(-(-maps // BLOCK), get_num_threads())
    return [(b0 * BLOCK, min(maps, b1 * BLOCK)) for b0, b1 in blocks]


def _matmul_cols(a, b, out):
    """out = a @ b, the columns of b split among the threads."""
    parts = split_range(b.shape[1], get_num_threads())
    run_parallel(lambda r: np.matmul(a, b[:, r[0]:r[1]], out=out[:, r[0]:r[1]]), parts, uses_blas=True)


def _per_frequency(fn, freqs):
    """fn(f0, f1) on ranges of frequencies, one per thread."""
    run_parallel(lambda r: fn(r[0], r[1]), split_range(freqs, get_num_threads()), uses_blas=True)


# ----- transforms ---------------------------------------------------------------------------------------
def transform(pl, a, rows, cols, name):
    """a (n, C, h, w) real -> spectrum (F, n, C) complex (a workspace named ``name``)."""
    n, c, h, w = a.shape
    tt = workspace("fourier.tt", (h * pl.fw, n * c), pl.cdtype)
    maps = np.ascontiguousarray(a).reshape(n * c, h, w)
    run_parallel(lambda r: rows_to_spectra(maps, rows, tt.view(pl.dtype), r[0], r[1]), _map_ranges(n * c),
                 uses_blas=True)
    s = workspace(name, (pl.freqs, n, c), pl.cdtype)
    _matmul_cols(cols, tt.reshape(h, pl.fw * n * c), s.reshape(pl.l1, pl.fw * n * c))
    return s


def inverse(pl, s, icols, irows, out, relu=False):
    """spectrum s (F, n, C) complex -> out (n, C, oh, ow) real, the first oh x ow of the IDFT
    (then max(out, 0) if ``relu``)."""
    _, n, c = s.shape
    oh, ow = out.shape[2], out.shape[3]
    z = workspace("fourier.z", (oh * pl.fw, n * c), pl.cdtype)
    _matmul_cols(icols, s.reshape(pl.l1, pl.fw * n * c), z.reshape(oh, pl.fw * n * c))
    maps = out.reshape(n * c, oh, ow)
    run_parallel(lambda r: spectra_to_rows(z.view(pl.dtype), irows, maps, r[0], r[1], relu), _map_ranges(n * c),
                 uses_blas=True)


_tokens = threading.local()  # which forward call last wrote this thread's "fourier.h" workspace
_next_token = itertools.count(1)


def weight_spectrum(pl, w, saved=None):
    """H (F, Cg, O) complex of w (O, Cg, kh, kw), in this thread's "fourier.h" workspace.

    Separable, like the transforms: along kw by a real GEMM that writes interleaved (re, im)
    pairs (``spread``: the taps at the even columns of its upper half, at the odd ones of its
    lower half), then along kh by a complex GEMM with only kh terms. ``saved``: a dict shared by
    a forward call and its backward; the backward reuses the forward's H when no other call has
    overwritten the workspace since (a token says), and computes it again otherwise.
    """
    o, cg, kh, kw = w.shape
    m = cg * o
    spec = workspace("fourier.h", (pl.freqs, cg, o), pl.cdtype)
    if saved is not None and saved.get("h") is not None and saved["h"] == getattr(_tokens, "h", None):
        return spec
    spread = workspace("fourier.spread", (kh, 2 * kw, m, 2), pl.dtype)
    taps = w.transpose(2, 3, 1, 0).reshape(kh, kw, m)
    spread[:, :kw, :, 1] = spread[:, kw:, :, 0] = 0
    spread[:, :kw, :, 0] = spread[:, kw:, :, 1] = taps
    half = workspace("fourier.half", (kh, pl.fw, m), pl.cdtype)  # along kw: (kh, Fw, Cg O)
    # in our threads, never the BLAS's own: after a GEMM on OpenBLAS's threads they spin for up to
    # ~0.1 s (its THREAD_TIMEOUT), and the frequency products that follow, on our two threads,
    # were preempted: conv2's first chunk's products took 38-84 ms against 28-36 for the second
    run_parallel(lambda i: np.matmul(pl.row_taps, spread[i].reshape(2 * kw, 2 * m), out=half[i].view(pl.dtype)),
                 range(kh), uses_blas=True)
    _matmul_cols(pl.col_taps, half.reshape(kh, pl.fw * m), spec.reshape(pl.l1, pl.fw * m))
    token = next(_next_token)
    _tokens.h = token
    if saved is not None:
        saved["h"] = token
    return spec


def chunks(n):
    """(first, stop) of the chunks of images."""
    return split_range(n, -(-n // CHUNK_IMAGES))


# ----- the convolution ----------------------------------------------------------------------------------
def conv2d_forward(x, weight, bias, padding, groups, relu, saved=None):
    """y (N, O, OH, OW) = conv(x, weight) + bias (stride 1), then ReLU if ``relu``.
    ``saved``: a dict to pass to the backward call (it lets it reuse the weights' spectrum)."""
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    og = o // groups
    pl = plan(h, w, kh, kw, padding[0], padding[1], x.dtype.str)
    spec_w = weight_spectrum(pl, weight, saved)
    y = np.empty((n, o, pl.oh, pl.ow), dtype=x.dtype)
    for n0, n1 in chunks(n):
        nb = n1 - n0
        spec_x = transform(pl, x[n0:n1], pl.rows_x, pl.cols_x, "fourier.x")
        spec_y = workspace("fourier.y", (pl.freqs, nb, o), pl.cdtype)

        def products(f0, f1):
            for g in range(groups):
                np.matmul(spec_x[f0:f1, :, g * cg:(g + 1) * cg], spec_w[f0:f1, :, g * og:(g + 1) * og],
                          out=spec_y[f0:f1, :, g * og:(g + 1) * og])

        _per_frequency(products, pl.freqs)
        if bias is not None:  # a constant map is a DC component: L1 L2 * b at frequency 0
            spec_y[0] += (bias * (pl.l1 * pl.l2)).astype(pl.dtype)
        inverse(pl, spec_y, pl.icols_y, pl.irows_y, y[n0:n1], relu)
    return y


def conv2d_backward(x, weight, gy, padding, groups, need_x, need_weight, need_bias, saved=None):
    """(gx, gweight, gbias) of y = conv2d(x, weight) + bias (stride 1); None where not needed."""
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    og = o // groups
    pl = plan(h, w, kh, kw, padding[0], padding[1], x.dtype.str)
    gy = np.ascontiguousarray(gy)
    spec_w = weight_spectrum(pl, weight, saved) if need_x else None
    gx = np.empty_like(x) if need_x else None
    spec_gh = workspace("fourier.gh", (pl.freqs, cg, o), pl.cdtype) if need_weight else None  # conj(GH)
    gb = np.zeros(o) if need_bias else None
    for i, (n0, n1) in enumerate(chunks(n)):
        nb = n1 - n0
        spec_gy = transform(pl, gy[n0:n1], pl.rows_gy, pl.cols_gy, "fourier.gy")  # conj(GY)
        if need_bias:  # frequency 0 of a map is its sum
            gb += spec_gy[0].real.sum(axis=0, dtype=np.float64)
        if need_x:
            spec_gx = workspace("fourier.y", (pl.freqs, nb, c), pl.cdtype)  # conj(GX)

            def input_products(f0, f1):
                for g in range(groups):
                    np.matmul(spec_gy[f0:f1, :, g * og:(g + 1) * og], spec_w[f0:f1, :, g * og:(g + 1) * og].transpose(0, 2, 1),
                              out=spec_gx[f0:f1, :, g * cg:(g + 1) * cg])

            _per_frequency(input_products, pl.freqs)
            inverse(pl, spec_gx, pl.icols_gx, pl.irows_gx, gx[n0:n1])
        if need_weight:
            spec_x = transform(pl, x[n0:n1], pl.rows_x, pl.cols_x, "fourier.x")

            def weight_products(f0, f1):  # conj(GH)[f] (+)= X[f]ᵀ @ conj(GY)[f]
                part = workspace("fourier.part", (f1 - f0, cg, og), pl.cdtype) if i else None
                for g in range(groups):
                    out = spec_gh[f0:f1, :, g * og:(g + 1) * og]
                    np.matmul(spec_x[f0:f1, :, g * cg:(g + 1) * cg].transpose(0, 2, 1),
                              spec_gy[f0:f1, :, g * og:(g + 1) * og], out=part if i else out)
                    if i:
                        out += part

            _per_frequency(weight_products, pl.freqs)
    gw = None
    if need_weight:  # gw = Re(conj(GH) . back) = (Re back) Re conj(GH) - (Im back) Im conj(GH), over f
        t = kh * kw
        both = workspace("fourier.taps", (2 * t, 2 * cg * o), pl.dtype)
        _matmul_cols(pl.freq_to_taps, spec_gh.view(pl.dtype).reshape(pl.freqs, 2 * cg * o), both)
        taps = both[:t, 0::2] - both[t:, 1::2]
        gw = np.ascontiguousarray(taps.reshape(kh, kw, cg, o).transpose(3, 2, 0, 1))
    return gx, gw, (gb.astype(x.dtype) if need_bias else None)
