"""im2col and col2im: the reference (readable NumPy, also runs on CuPy).

Convolution becomes one matrix product once every receptive field is unrolled into a column:

    x    (N, C, H, W)      the input
    col  (C*kh*kw, N*OH*OW)  column (n, oh, ow) holds the kh x kw window of every channel that
                           output pixel (oh, ow) of image n sees; row (c, i, j) is channel c at
                           window offset (i, j)
    OH = (H + 2*ph - kh) // sh + 1,  OW likewise

With dilation (dh, dw) a window's taps are dh rows and dw columns apart (atrous convolution): tap
(i, j) reads the input at offset (i*dh, j*dw), and the window spans dh*(kh-1)+1 rows.

For AlexNet's conv1 (3 channels, 11x11 filters, 55x55 outputs) the block of one image is a
363 x 3025 matrix. Rows are ordered channel first, so the rows of a channel group are a
contiguous block: that is what makes grouped convolution one GEMM per group.
"""
from __future__ import annotations

from ..device import get_array_module
from .common import conv_output_size

__all__ = ["col2im", "conv_output_size", "im2col"]


def im2col(x, kernel_size, stride=(1, 1), padding=(0, 0), pad_value=0.0, dilation=(1, 1)):
    """Unroll windows of ``x`` (N, C, H, W) into ``col`` (C*kh*kw, N*OH*OW).

    Instead of looping over the N*OH*OW windows, loop over the kh*kw offsets inside a window:
    for offset (i, j), the entries of all windows form one strided slice of the padded input.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    col = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # tap (i, j) of every window: rows i*dh, i*dh+sh, ..., columns j*dw, j*dw+sw, ...
            r, s = i * dh, j * dw
            col[:, i, j] = xpad[:, :, r : r + sh * oh : sh, s : s + sw * ow : sw].transpose(1, 0, 2, 3)
    return col.reshape(c * kh * kw, n * oh * ow)


def col2im(col, x_shape, kernel_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """The adjoint of ``im2col``: add every column entry back to the input pixel it came from.

    Windows overlap when the stride is smaller than the kernel, so one pixel receives several
    contributions: they must be *added* (``+=``), not assigned. Returns (N, C, H, W).
    """
    xp = get_array_module(col)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    col = col.reshape(c, kh, kw, n, oh, ow)
    xpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            r, s = i * dh, j * dw
            xpad[:, :, r : r + sh * oh : sh, s : s + sw * ow : sw] += col[:, i, j].transpose(1, 0, 2, 3)
    return xpad[:, :, ph : ph + h, pw : pw + w]
