"""Max pooling with the winner's position, forward and backward.

Shapes: x (N, C, H, W), y and argmax (N, C, OH, OW), all C-contiguous. ``argmax`` holds the
winner's flat index h*W + w inside its input plane (int32). Windows may overlap (AlexNet: 3x3,
stride 2) and may reach into the padding, which never wins. Ties go to the first entry of the
window in row-major order and a NaN wins over numbers, as ``np.argmax`` in the reference does.
(One corner differs: a window whose real entries are all -inf sends its gradient to its first
real entry here and to the padding, i.e. nowhere, in the reference.)

The (image, channel) planes are shared out among the threads. The general forward keeps a
whole output row's running maximum and runs over the output columns innermost, so the
comparisons vectorise. Without padding (AlexNet) the bounds logic goes and the window unrolls
for the common sizes: wide outputs (pool1) scan each window in registers, a vector loop per
output row; narrow ones (pool2, pool5: 13 and 6 columns, too short for that loop) are pooled
separably over whole planes. The backward pass adds each output gradient to its winner; a plane
belongs to one call, so the adds need no atomics.
"""
from __future__ import annotations

import numpy as np

from ..common import conv_output_size, needs
from ._jit import inline, kernel
from .im2col import _inside_range
from .parallel import get_num_threads, run_parallel, split_range


@inline
def _update_row(src, stride, best, where, count, first_index):
    """Running max over one window offset for ``count`` output columns: output column z sees
    src[z*stride], whose flat input index is first_index + z*stride."""
    for z in range(count):
        v = src[z * stride]
        b = best[z]
        # the first valid entry, a strictly larger one, or the first NaN (bitwise | and &, not
        # `or`/`and`: no branches, so the loop vectorises)
        take = (where[z] < 0) | (v > b) | ((v != v) & (b == b))
        best[z] = v if take else b
        where[z] = first_index + z * stride if take else where[z]


@inline
def _take(v, b):
    """Does v replace the running maximum b? Strictly larger, or the first NaN (bitwise | and &:
    no branches, so loops over it vectorise)."""
    return (v > b) | ((v != v) & (b == b))


@inline
def _pool_planes_by_window(x, y, argmax, kh, kw, sh, sw, plane_start, plane_count):
    """Unpadded windows of wide outputs (pool1's 27 columns). For each output the window is scanned
    in row-major order with the running maximum in registers; called with literal sizes, the
    window loops unroll and the loop over output columns vectorises (strided loads)."""
    c_all, w_in = x.shape[1], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    for t in range(plane_count):
        n = (plane_start + t) // c_all
        c = (plane_start + t) % c_all
        plane = x[n, c]
        for oy in range(oh):
            best, where = y[n, c, oy], argmax[n, c, oy]
            top = oy * sh
            for z in range(ow):
                left = z * sw
                b = plane[top, left]
                a = top * w_in + left
                for i in range(kh):
                    for j in range(kw):
                        v = plane[top + i, left + j]
                        take = _take(v, b)
                        b = v if take else b
                        a = (top + i) * w_in + left + j if take else a
                best[z] = b
                where[z] = a


@inline
def _max_planes_by_window(x, y, kh, kw, sh, sw, plane_start, plane_count):
    """``_pool_planes_by_window`` without the winners' positions (evaluation: no backward follows),
    so the loop carries and stores one value per output instead of two."""
    c_all = x.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    for t in range(plane_count):
        n = (plane_start + t) // c_all
        c = (plane_start + t) % c_all
        plane = x[n, c]
        for oy in range(oh):
            best = y[n, c, oy]
            top = oy * sh
            for z in range(ow):
                left = z * sw
                b = plane[top, left]
                for i in range(kh):
                    for j in range(kw):
                        v = plane[top + i, left + j]
                        b = v if _take(v, b) else b
                best[z] = b


@inline
def _pool_planes_separable(x, y, argmax, kh, kw, sh, sw, plane_start, plane_count):
    """Unpadded windows of narrow outputs, separably and over whole planes: first the running
    maximum along each row, rowmax[k] = max x_flat[k ... k + kw - 1] at every flat position k of
    the plane, then down the columns, winmax[k] = max rowmax[k + i W] for i < kh, again at every
    k; window (oy, z) is then read at k = oy sh W + z sw. Each pass is one contiguous loop, which
    vectorises however narrow the map: pool2's outputs are 13 wide, too short for the vector loop
    per output row of ``_pool_planes_by_window``, which took 50 ms for its forward at batch 128
    (2 threads) against 12 ms this way (pool5: 11 -> 4 ms; pool1, 27 wide: 19 ms by window, 24
    this way). Positions whose window would wrap into the next row are computed and never read.
    Ties: the first column of a row wins, then the first row, which is the window's first entry
    in row-major order; a NaN wins the same way (``_take``)."""
    c_all, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    flat = h_in * w_in
    rows_len = flat - (kw - 1)  # positions with kw entries to their right in the flat plane
    cols_len = rows_len - (kh - 1) * w_in  # ... and kh rows below them
    rowmax, rowoff = np.empty(rows_len, dtype=x.dtype), np.empty(rows_len, dtype=np.int32)
    winmax, winoff = np.empty(cols_len, dtype=x.dtype), np.empty(cols_len, dtype=np.int32)
    for t in range(plane_count):
        n = (plane_start + t) // c_all
        c = (plane_start + t) % c_all
        plane = x[n, c].reshape(flat)
        for k in range(rows_len):  # along the rows: the winner's column offset j
            b = plane[k]
            a = np.int32(0)
            for j in range(1, kw):
                v = plane[k + j]
                take = _take(v, b)
                b = v if take else b
                a = np.int32(j) if take else a
            rowmax[k] = b
            rowoff[k] = a
        for k in range(cols_len):
            winmax[k] = rowmax[k]
            winoff[k] = rowoff[k]
        for i in range(1, kh):  # down the columns: offset i W + j
            below_max, below_off = rowmax[i * w_in:], rowoff[i * w_in:]
            shift = np.int32(i * w_in)
            for k in range(cols_len):
                v = below_max[k]
                take = _take(v, winmax[k])
                winmax[k] = v if take else winmax[k]
                winoff[k] = below_off[k] + shift if take else winoff[k]
        for oy in range(oh):
            top = oy * sh * w_in
            best, where = y[n, c, oy], argmax[n, c, oy]
            src_max, src_off = winmax[top:], winoff[top:]
            for z in range(ow):
                best[z] = src_max[z * sw]
                where[z] = np.int32(top + z * sw) + src_off[z * sw]


@inline
def _max_planes_separable(x, y, kh, kw, sh, sw, plane_start, plane_count):
    """``_pool_planes_separable`` without the winners' positions (evaluation: no backward follows)."""
    c_all, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    flat = h_in * w_in
    rows_len = flat - (kw - 1)
    cols_len = rows_len - (kh - 1) * w_in
    rowmax, winmax = np.empty(rows_len, dtype=x.dtype), np.empty(cols_len, dtype=x.dtype)
    for t in range(plane_count):
        n = (plane_start + t) // c_all
        c = (plane_start + t) % c_all
        plane = x[n, c].reshape(flat)
        for k in range(rows_len):
            b = plane[k]
            for j in range(1, kw):
                v = plane[k + j]
                b = v if _take(v, b) else b
            rowmax[k] = b
        for k in range(cols_len):
            winmax[k] = rowmax[k]
        for i in range(1, kh):
            below = rowmax[i * w_in:]
            for k in range(cols_len):
                v = below[k]
                winmax[k] = v if _take(v, winmax[k]) else winmax[k]
        for oy in range(oh):
            best, src = y[n, c, oy], winmax[oy * sh * w_in:]
            for z in range(ow):
                best[z] = src[z * sw]


WIDE_OUTPUTS = 16  # output columns from which the vector loop per output row pays (pool1's 27)


@kernel
def _max_forward_unpadded(x, y, kh, kw, sh, sw, plane_start, plane_count):
    if y.shape[3] < WIDE_OUTPUTS:
        if kh == 3 and kw == 3 and sh == 2 and sw == 2:  # AlexNet's overlapping pool: literal sizes unroll
            _max_planes_separable(x, y, 3, 3, 2, 2, plane_start, plane_count)
        else:
            _max_planes_separable(x, y, kh, kw, sh, sw, plane_start, plane_count)
    elif kh == 3 and kw == 3 and sh == 2 and sw == 2:
        _max_planes_by_window(x, y, 3, 3, 2, 2, plane_start, plane_count)
    else:
        _max_planes_by_window(x, y, kh, kw, sh, sw, plane_start, plane_count)


@kernel
def _maxpool_forward_unpadded(x, y, argmax, kh, kw, sh, sw, plane_start, plane_count):
    if y.shape[3] < WIDE_OUTPUTS:
        if kh == 3 and kw == 3 and sh == 2 and sw == 2:
            _pool_planes_separable(x, y, argmax, 3, 3, 2, 2, plane_start, plane_count)
        else:
            _pool_planes_separable(x, y, argmax, kh, kw, sh, sw, plane_start, plane_count)
    elif kh == 3 and kw == 3 and sh == 2 and sw == 2:
        _pool_planes_by_window(x, y, argmax, 3, 3, 2, 2, plane_start, plane_count)
    elif kh == 2 and kw == 2 and sh == 2 and sw == 2:
        _pool_planes_by_window(x, y, argmax, 2, 2, 2, 2, plane_start, plane_count)
    else:
        _pool_planes_by_window(x, y, argmax, kh, kw, sh, sw, plane_start, plane_count)


@kernel
def _maxpool_forward(x, y, argmax, kh, kw, sh, sw, ph, pw, plane_start, plane_count):
    """Planes plane_start ... plane_start+plane_count-1 (numbered n*C + c) of y and argmax."""
    c_all, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    for t in range(plane_count):
        n = (plane_start + t) // c_all
        c = (plane_start + t) % c_all
        for oy in range(oh):
            best = y[n, c, oy]
            where = argmax[n, c, oy]
            for z in range(ow):
                where[z] = -1
            for i in range(kh):
                h = oy * sh + i - ph
                if h < 0 or h >= h_in:
                    continue
                for j in range(kw):
                    lo, hi = _inside_range(j - pw, sw, w_in, ow)
                    first = lo * sw + j - pw  # input column of output column lo
                    src, b_s, w_s = x[n, c, h, first:], best[lo:hi], where[lo:hi]
                    # literal strides for the common cases: the loads then vectorise
                    if sw == 2:
                        _update_row(src, 2, b_s, w_s, hi - lo, h * w_in + first)
                    elif sw == 1:
                        _update_row(src, 1, b_s, w_s, hi - lo, h * w_in + first)
                    else:
                        _update_row(src, sw, b_s, w_s, hi - lo, h * w_in + first)


@kernel
def _maxpool_backward(gy, argmax, gx, plane_start, plane_count):
    c_all, p_out = gy.shape[1], gy.shape[2]
    for t in range(plane_count):
        n = (plane_start + t) // c_all
        c = (plane_start + t) % c_all
        plane, g, winner = gx[n, c], gy[n, c], argmax[n, c]
        plane[:] = 0
        for q in range(p_out):
            plane[winner[q]] += g[q]


def _plane_ranges(n, c):
    """(first plane, plane count) pieces, a few per thread so they balance."""
    return [(a, b - a) for a, b in split_range(n * c, 4 * get_num_threads())]


def maxpool_forward(x, kernel_size, stride, padding, need_argmax=True):
    """(y, argmax) for x (N, C, H, W) C-contiguous; sizes are (height, width) pairs. Without
    ``need_argmax`` (no backward will follow) argmax is None, and unpadded windows (AlexNet's) skip
    finding it: the evaluation forward of pool1 ~35% faster (23 vs 36 ms at batch 128, 2 threads)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    if not need_argmax and ph == 0 and pw == 0:
        run_parallel(lambda r: _max_forward_unpadded(x, y, kh, kw, sh, sw, *r), _plane_ranges(n, c))
        return y, None
    argmax = np.empty((n, c, oh, ow), dtype=np.int32)
    if ph == 0 and pw == 0:
        run_parallel(lambda r: _maxpool_forward_unpadded(x, y, argmax, kh, kw, sh, sw, *r), _plane_ranges(n, c))
    else:
        run_parallel(lambda r: _maxpool_forward(x, y, argmax, kh, kw, sh, sw, ph, pw, *r), _plane_ranges(n, c))
    return y, (argmax if need_argmax else None)  # padded windows: found anyway, then dropped


def maxpool_backward(gy, argmax, x_shape):
    """gx of ``x_shape`` (N, C, H, W): each gy entry (N, C, OH, OW) added to its window's winner."""
    n, c, h, w = x_shape
    gx = np.empty(x_shape, dtype=gy.dtype)
    p = argmax.shape[2] * argmax.shape[3]
    gy3, am3, gx3 = np.ascontiguousarray(gy).reshape(n, c, p), argmax.reshape(n, c, p), gx.reshape(n, c, h * w)
    run_parallel(lambda r: _maxpool_backward(gy3, am3, gx3, *r), _plane_ranges(n, c))
    return gx


class MaxPool2d:
    """Max pooling, with the interface of ``minitorch_alex.dispatch``: keeps x's shape and, when a backward
    will follow (``needs_input_grad``, set by the engine), the winners' positions (int32)."""

    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)

    def forward(self, x, kernel_size, stride, padding):
        keep = any(needs(self, 1))
        y, argmax = maxpool_forward(np.ascontiguousarray(x), kernel_size, stride, padding, need_argmax=keep)
        if keep:
            self.argmax, self.x_shape = argmax, x.shape
        return y

    def backward(self, gy):
        return (maxpool_backward(gy, self.argmax, self.x_shape),)
