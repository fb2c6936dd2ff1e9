"""im2col / col2im for convolution, and the moves between the GEMM's layout and NCHW.

The convolution runs over the batch in chunks of ``b`` images. For a chunk the column matrix is

    col (K, b*P)    K = C*kh*kw rows ordered (c, i, j), b*P columns ordered (n, oh, ow), P = OH*OW

exactly the reference layout (``minitorch_alex.ops.im2col``) restricted to the chunk, so the rows
of a channel group are one contiguous block and a grouped convolution is one GEMM per group:
``Y_g (O/G, b*P) = W_g (O/G, K/G) @ col_g``. The GEMM's output rows are output channels, so
image n's map o is the contiguous run ``Y[o, n*P:(n+1)*P]``: moving it into NCHW is a copy of
whole runs (``rows_to_nchw``), in which the bias add (and optionally the ReLU) rides along.

Both directions are written as gathers: every output element is written by one loop of one
call, so no atomics or ``np.add.at`` are needed, and calls on different chunks of images can run
in different threads (``kernels.cpu.parallel``; the kernels themselves are serial).

* ``im2col_into``: row (c, i, j) of the column matrix at a time, each a run of contiguous writes.
* ``col2im_into``: input plane (n, c) at a time; for each pixel of the plane it adds up every
  column entry that came from that pixel, while the plane stays in L1/L2.
"""
from __future__ import annotations

from ._jit import inline, kernel


@inline
def _inside_range(offset, stride, size, count):
    """Output positions o in [lo, hi) whose input position o*stride + offset lies in [0, size)."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = (size - 1 - offset) // stride + 1 if size - 1 - offset >= 0 else 0
    hi = min(hi, count)
    return lo, max(hi, lo)


@inline
def _gather(src, stride, dst, count):
    """dst[z] = src[z*stride] for z < count."""
    for z in range(count):
        dst[z] = src[z * stride]


@inline
def _scatter_add(src, dst, stride, count):
    """dst[z*stride] += src[z] for z < count."""
    for z in range(count):
        dst[z * stride] += src[z]


@kernel
def im2col_into(x, col, n_start, n_count, kh, kw, sh, sw, ph, pw, oh, ow, pad_value):
    """Fill ``col[:, :n_count*oh*ow]`` with the windows of images n_start ... n_start+n_count-1.

    x (N, C, H, W) C-contiguous; col (C*kh*kw, >= n_count*oh*ow) C-contiguous;
    col[(c, i, j), (n, y, z)] = x[n_start + n, c, y*sh + i - ph, z*sw + j - pw], or ``pad_value``
    where that position lies in the padding. ``pad_value`` has x's dtype.
    """
    c_in, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
    p = oh * ow
    for r in range(c_in * kh * kw):
        c = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        lo, hi = _inside_range(j - pw, sw, w_in, ow)
        inside = hi - lo
        for n in range(n_count):
            for y in range(oh):
                h = y * sh + i - ph
                out = col[r, n * p + y * ow:n * p + (y + 1) * ow]
                if h < 0 or h >= h_in:
                    for z in range(ow):
                        out[z] = pad_value
                    continue
                for z in range(lo):
                    out[z] = pad_value
                src = x[n_start + n, c, h, lo * sw + j - pw:]
                if sw == 1:  # literal strides: the copy vectorises
                    _gather(src, 1, out[lo:hi], inside)
                elif sw == 2:
                    _gather(src, 2, out[lo:hi], inside)
                elif sw == 4:  # AlexNet's conv1
                    _gather(src, 4, out[lo:hi], inside)
                else:
                    _gather(src, sw, out[lo:hi], inside)
                for z in range(hi, ow):
                    out[z] = pad_value


@kernel
def col2im_into(col, x, n_start, n_count, kh, kw, sh, sw, ph, pw, oh, ow):
    """The adjoint of ``im2col_into``: overwrite ``x[n_start : n_start+n_count]`` with the sum of
    every entry of ``col`` (C*kh*kw, >= n_count*oh*ow) that was taken from each pixel.

    x (N, C, H, W) C-contiguous. Entries that came from the padding are dropped.
    """
    c_in, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
    p = oh * ow
    for t in range(n_count * c_in):
        n = t // c_in
        c = t % c_in
        plane = x[n_start + n, c]
        plane[:, :] = 0
        for i in range(kh):
            for y in range(oh):
                h = y * sh + i - ph
                if h < 0 or h >= h_in:
                    continue
                base = n * p + y * ow
                for j in range(kw):
                    lo, hi = _inside_range(j - pw, sw, w_in, ow)
                    src = col[(c * kh + i) * kw + j, base + lo:base + hi]
                    dst = plane[h, lo * sw + j - pw:]
                    if sw == 1:  # literal strides: the adds vectorise
                        _scatter_add(src, dst, 1, hi - lo)
                    elif sw == 2:
                        _scatter_add(src, dst, 2, hi - lo)
                    elif sw == 4:
                        _scatter_add(src, dst, 4, hi - lo)
                    else:
                        _scatter_add(src, dst, sw, hi - lo)


@kernel
def rows_to_nchw(rows, bias, y, n_start, n_count, relu):
    """y[n_start + n, o, :] = rows[o, n*P:(n+1)*P] + bias[o], then max(., 0) if ``relu``.

    rows (O, >= n_count*P); bias (O,) of y's dtype (zeros for a convolution without bias);
    y (N, O, P) C-contiguous (an NCHW output viewed with the spatial axes merged).
    """
    o_count, p = y.shape[1], y.shape[2]
    zero = bias.dtype.type(0)
    for n in range(n_count):
        for o in range(o_count):
            b = bias[o]
            src = rows[o, n * p:(n + 1) * p]
            dst = y[n_start + n, o]
            if relu:
                for q in range(p):
                    v = src[q] + b
                    dst[q] = zero if v < zero else v
            else:
                for q in range(p):
                    dst[q] = src[q] + b


@kernel
def nchw_to_rows(g, rows, bias_grad, n_start, n_count):
    """The reverse move for the backward pass: rows[o, n*P + q] = g[n_start + n, o, q], and
    bias_grad[o] += the sum of those entries (bias_grad is float64, so long sums keep precision).

    g (N, O, P) C-contiguous; rows (O, >= n_count*P) C-contiguous; bias_grad (O,) float64.
    """
    o_count, p = g.shape[1], g.shape[2]
    for o in range(o_count):
        total = 0.0
        for n in range(n_count):
            src = g[n_start + n, o]
            dst = rows[o, n * p:(n + 1) * p]
            for q in range(p):
                v = src[q]
                dst[q] = v
                total += v
        bias_grad[o] += total


@kernel
def nchw_to_rows_relu(g, y, rows, bias_grad, n_start, n_count):
    """``nchw_to_rows`` for a convolution fused with a ReLU: the gradient passes only where the
    fused output ``y`` (N, O, P) is positive, i.e. rows[o, n*P + q] = g[n_start + n, o, q] where
    y[n_start + n, o, q] > 0, else 0 (the ReLU's backward pass and the move in one)."""
    o_count, p = g.shape[1], g.shape[2]
    zero = g.dtype.type(0)
    for o in range(o_count):
        total = 0.0
        for n in range(n_count):
            src = g[n_start + n, o]
            out = y[n_start + n, o]
            dst = rows[o, n * p:(n + 1) * p]
            for q in range(p):
                v = src[q] if out[q] > zero else zero
                dst[q] = v
                total += v
        bias_grad[o] += total
