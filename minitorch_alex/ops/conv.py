"""2-D convolution (cross-correlation, as in every framework) by im2col + one GEMM per group.

Shapes: x (N, C, H, W), weight (O, C/G, kh, kw), bias (O,), y (N, O, OH, OW), G = groups.
With col = im2col(x) of shape (C*kh*kw, N*OH*OW) and W_g the weight of group g flattened to
(O/G, C/G*kh*kw), the three products of backprop are

    forward    Y_g   = W_g · col_g
    backward   dW_g  = dY_g · col_gᵀ
               dcol_g = W_gᵀ · dY_g,   dx = col2im(dcol)

i.e. the same Y = X·W, dX = dY·Wᵀ, dW = Xᵀ·dY as a fully connected layer.

This is the reference: what ``minitorch_alex.dispatch`` runs for the 'reference' backend and for
arrays no kernel takes. It keeps the column matrix for the backward pass.
"""
from __future__ import annotations

from ..autograd import Function
from ..device import get_array_module
from .common import check_float, check_rank, check_window_fits, conv_output_size, pair
from .im2col import col2im, im2col


class Conv2d(Function):
    fresh_grads = True  # each input's gradient is a new array

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), groups=1, dilation=(1, 1)):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        oh, ow = (conv_output_size(s, k, st, p, d) for s, k, st, p, d in zip((h, w), (kh, kw), stride, padding, dilation))
        col = im2col(x, (kh, kw), stride, padding, dilation=dilation)  # (C*kh*kw, N*OH*OW)
        col = col.reshape(groups, cg * kh * kw, n * oh * ow)  # rows of group g are contiguous
        wmat = weight.reshape(groups, o // groups, cg * kh * kw)
        y = xp.concatenate([wmat[g] @ col[g] for g in range(groups)])  # (O, N*OH*OW)
        y = y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)
        if bias is not None:
            y = y + bias.reshape(1, o, 1, 1)
        self.col, self.weight, self.x_shape = col, weight, x.shape
        self.stride, self.padding, self.groups, self.has_bias = stride, padding, groups, bias is not None
        self.dilation = dilation
        return xp.ascontiguousarray(y)

    def backward(self, gy):
        xp = get_array_module(gy)
        col, weight, groups = self.col, self.weight, self.groups
        o, cg, kh, kw = weight.shape
        gy_mat = gy.transpose(1, 0, 2, 3).reshape(groups, o // groups, -1)  # (G, O/G, N*OH*OW)
        wmat = weight.reshape(groups, o // groups, cg * kh * kw)
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gcol = xp.concatenate([wmat[g].T @ gy_mat[g] for g in range(groups)])  # (C*kh*kw, N*OH*OW)
            gx = col2im(gcol, self.x_shape, (kh, kw), self.stride, self.padding, self.dilation)
        if self.needs_input_grad[1]:
            gw = xp.stack([gy_mat[g] @ col[g].T for g in range(groups)]).reshape(weight.shape)
        if self.has_bias and self.needs_input_grad[2]:
            gb = gy.sum(axis=(0, 2, 3))
        return (gx, gw, gb) if self.has_bias else (gx, gw)


class Conv2dReLU(Conv2d):
    """relu(conv2d(x, weight) + bias) as one op (``conv2d_relu``). The reference is the two
    steps in a row; the numba version fuses the ReLU into the pass that writes the output and
    its mask into the one that reads gy, so neither the pre-activation map nor a separate ReLU
    pass exists."""

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), groups=1, dilation=(1, 1)):
        y = get_array_module(x).maximum(super().forward(x, weight, bias, stride, padding, groups, dilation), 0)
        self.positive = y > 0
        return y

    def backward(self, gy):
        return super().backward(gy * self.positive)


def _check_conv2d(x, weight, bias, stride, padding, dilation, groups, op):
    """Validate conv2d's arguments; returns the keyword arguments of ``Conv2d.apply``: stride and
    padding as pairs, groups, and dilation only where it is not (1, 1) (only this reference code
    has dilated windows: ``dispatch.REFERENCE_ONLY`` sends a call that passes one here)."""
    stride, padding, dilation = pair(stride, "stride", op), pair(padding, "padding", op), pair(dilation, "dilation", op)
    check_rank(x, 4, "(N, C, H, W)", op)
    check_float(x, op)
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected weight of rank 4 (out_channels, in_channels/groups, kh, kw), got shape {weight.shape}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if min(stride) < 1 or min(padding) < 0 or min(dilation) < 1:
        raise ValueError(f"{op}: expected stride >= 1, padding >= 0 and dilation >= 1, got stride={stride}, "
                         f"padding={padding}, dilation={dilation}")
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if c % groups or o % groups:
        raise ValueError(f"{op}: groups={groups} must divide both in_channels ({c}) and out_channels ({o})")
    if cg * groups != c:
        raise ValueError(
            f"{op}: input has {c} channels but weight expects {cg * groups} (in_channels/groups={cg} x groups={groups})"
        )
    check_window_fits((h, w), (kh, kw), padding, op, dilation)
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"{op}: expected bias of shape ({o},), got {bias.shape}")
    params = dict(stride=stride, padding=padding, groups=groups)
    return params if dilation == (1, 1) else dict(params, dilation=dilation)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolve ``x`` (N, C, H, W) with ``weight`` (O, C/groups, kh, kw); returns (N, O, OH, OW).

    ``stride``, ``padding`` and ``dilation`` are an int or a (height, width) pair; padding is with
    zeros; ``dilation`` d spaces the kernel's taps d apart (OH = (H + 2p - d(kh - 1) - 1) // s + 1).
    Arguments in PyTorch's order.
    """
    params = _check_conv2d(x, weight, bias, stride, padding, dilation, groups, "conv2d")
    return Conv2d.apply(x, weight, *([bias] if bias is not None else []), **params)


def conv2d_relu(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``relu(conv2d(x, weight, bias, ...))``: one op (``Conv2dReLU``) when there is a bias,
    else exactly the two ops."""
    from .activation import relu

    params = _check_conv2d(x, weight, bias, stride, padding, dilation, groups, "conv2d")
    if bias is not None:
        return Conv2dReLU.apply(x, weight, bias, **params)
    return relu(Conv2d.apply(x, weight, **params))
