"""2-D convolution (cross-correlation, as in every framework) by im2col + one GEMM per group.

Shapes: x (N, C, H, W), weight (O, C/G, kh, kw), bias (O,), y (N, O, OH, OW), G = groups.
With col = im2col(x) of shape (C*kh*kw, N*OH*OW) and W_g the weight of group g flattened to
(O/G, C/G*kh*kw), the three products of backprop are

    forward    Y_g   = W_g · col_g
    backward   dW_g  = dY_g · col_gᵀ
               dcol_g = W_gᵀ · dY_g,   dx = col2im(dcol)

i.e. the same Y = X·W, dX = dY·Wᵀ, dW = Xᵀ·dY as a fully connected layer.

With the 'fast' backend (``minitorch_alex.backend``) NumPy inputs go to ``kernels.cpu.conv``
instead: the same products, computed a chunk of images at a time with numba im2col/col2im
gathers, keeping only x (not the column matrix) for the backward pass; 3x3 stride-1 layers use
Winograd's F(4x4, 3x3), which needs 0.38x the multiply-adds, and larger stride-1 kernels
(conv2) products in the frequency domain (0.10x). CuPy inputs go to
``kernels.cuda``: CUDA im2col/col2im gathers, the groups' GEMMs as one batched cuBLAS call, and
the move to NCHW with the bias added in the same pass.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..backend import cpu_kernels, cuda_kernels, use_cuda, use_fast
from ..device import get_array_module
from .common import check_float, check_rank, pair
from .im2col import col2im, conv_output_size, im2col


class Conv2d(Function):
    fresh_grads = True  # each input's gradient is a new array

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), groups=1):
        self.fast = use_fast(x, weight, bias)
        if self.fast:
            x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
            self.x, self.weight, self.stride, self.padding, self.groups = x, weight, stride, padding, groups
            self.has_bias, self.saved = bias is not None, ({} if is_grad_enabled() else None)
            return cpu_kernels().conv2d_forward(x, weight, bias, stride, padding, groups, saved=self.saved)
        self.cuda = use_cuda(x, weight, bias)
        if self.cuda:  # keeps the column matrix, as the reference does
            y, self.col = cuda_kernels().conv2d_forward(x, weight, bias, stride, padding, groups)
            self.weight, self.x_shape, self.stride, self.padding, self.groups = weight, x.shape, stride, padding, groups
            self.has_bias = bias is not None
            return y
        xp = get_array_module(x)
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        oh, ow = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
        col = im2col(x, (kh, kw), stride, padding)  # (C*kh*kw, N*OH*OW)
        col = col.reshape(groups, cg * kh * kw, n * oh * ow)  # rows of group g are contiguous
        wmat = weight.reshape(groups, o // groups, cg * kh * kw)
        y = xp.concatenate([wmat[g] @ col[g] for g in range(groups)])  # (O, N*OH*OW)
        y = y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)
        if bias is not None:
            y = y + bias.reshape(1, o, 1, 1)
        self.col, self.weight, self.x_shape = col, weight, x.shape
        self.stride, self.padding, self.groups, self.has_bias = stride, padding, groups, bias is not None
        return xp.ascontiguousarray(y)

    def backward(self, gy):
        if self.fast:
            need = self.needs_input_grad
            gx, gw, gb = cpu_kernels().conv2d_backward(
                self.x, self.weight, gy, self.stride, self.padding, self.groups,
                need_x=need[0], need_weight=need[1], need_bias=self.has_bias and need[2], saved=self.saved)
            return (gx, gw, gb) if self.has_bias else (gx, gw)
        if self.cuda:
            need = self.needs_input_grad
            gx, gw, gb = cuda_kernels().conv2d_backward(
                self.col, self.weight, gy, self.x_shape, self.stride, self.padding, self.groups,
                need_x=need[0], need_weight=need[1], need_bias=self.has_bias and need[2])
            return (gx, gw, gb) if self.has_bias else (gx, gw)
        xp = get_array_module(gy)
        col, weight, groups = self.col, self.weight, self.groups
        o, cg, kh, kw = weight.shape
        gy_mat = gy.transpose(1, 0, 2, 3).reshape(groups, o // groups, -1)  # (G, O/G, N*OH*OW)
        wmat = weight.reshape(groups, o // groups, cg * kh * kw)
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gcol = xp.concatenate([wmat[g].T @ gy_mat[g] for g in range(groups)])  # (C*kh*kw, N*OH*OW)
            gx = col2im(gcol, self.x_shape, (kh, kw), self.stride, self.padding)
        if self.needs_input_grad[1]:
            gw = xp.stack([gy_mat[g] @ col[g].T for g in range(groups)]).reshape(weight.shape)
        if self.has_bias and self.needs_input_grad[2]:
            gb = gy.sum(axis=(0, 2, 3))
        return (gx, gw, gb) if self.has_bias else (gx, gw)


class Conv2dReLU(Function):
    """relu(conv2d(x, weight) + bias) as one op, for NumPy inputs on the 'fast' backend only
    (``conv2d_relu`` picks it): the ReLU rides along in the kernel that writes the output, and
    its backward mask in the one that reads gy, so neither the pre-activation map nor a separate
    ReLU pass (forward or backward) exists. Keeps x and the output, as conv + ReLU did."""

    fresh_grads = True

    def forward(self, x, weight, bias, stride=(1, 1), padding=(0, 0), groups=1):
        x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
        self.x, self.weight, self.stride, self.padding, self.groups = x, weight, stride, padding, groups
        self.saved = {} if is_grad_enabled() else None  # what the backward can reuse; nothing without one
        self.y = cpu_kernels().conv2d_forward(x, weight, bias, stride, padding, groups, relu=True, saved=self.saved)
        return self.y

    def backward(self, gy):
        need = self.needs_input_grad
        return cpu_kernels().conv2d_backward(self.x, self.weight, gy, self.stride, self.padding, self.groups,
                                             need_x=need[0], need_weight=need[1], need_bias=need[2],
                                             relu_output=self.y, saved=self.saved)


def _check_conv2d(x, weight, bias, stride, padding, groups, op):
    """Validate conv2d's arguments; returns (stride, padding) as pairs."""
    stride, padding = pair(stride, "stride", op), pair(padding, "padding", op)
    check_rank(x, 4, "(N, C, H, W)", op)
    check_float(x, op)
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected weight of rank 4 (out_channels, in_channels/groups, kh, kw), got shape {weight.shape}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: expected stride >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if c % groups or o % groups:
        raise ValueError(f"{op}: groups={groups} must divide both in_channels ({c}) and out_channels ({o})")
    if cg * groups != c:
        raise ValueError(
            f"{op}: input has {c} channels but weight expects {cg * groups} (in_channels/groups={cg} x groups={groups})"
        )
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    if kh > hp or kw > wp:
        raise ValueError(f"{op}: kernel {kh}x{kw} is larger than the padded input {hp}x{wp} (input {h}x{w}, padding {padding})")
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"{op}: expected bias of shape ({o},), got {bias.shape}")
    return stride, padding


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """Convolve ``x`` (N, C, H, W) with ``weight`` (O, C/groups, kh, kw); returns (N, O, OH, OW).

    ``stride`` and ``padding`` are an int or a (height, width) pair; padding is with zeros.
    """
    stride, padding = _check_conv2d(x, weight, bias, stride, padding, groups, "conv2d")
    if bias is not None:
        return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, groups=groups)
    return Conv2d.apply(x, weight, stride=stride, padding=padding, groups=groups)


def conv2d_relu(x, weight, bias=None, stride=1, padding=0, groups=1):
    """``relu(conv2d(x, weight, bias, ...))``: one fused op (``Conv2dReLU``) for NumPy
    float32/float64 tensors with the 'fast' backend, else exactly the two ops."""
    from .activation import relu

    stride, padding = _check_conv2d(x, weight, bias, stride, padding, groups, "conv2d")
    if bias is not None and use_fast(x.data, weight.data, bias.data) and x.dtype == weight.dtype == bias.dtype:
        return Conv2dReLU.apply(x, weight, bias, stride=stride, padding=padding, groups=groups)
    return relu(conv2d(x, weight, bias, stride, padding, groups))
