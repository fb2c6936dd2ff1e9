"""Fully connected layer: y = x · Wᵀ + b with weight (out_features, in_features), as PyTorch.

Backward: dx = dy · W, dW = dyᵀ · x, db = sum of dy over the batch.

With the 'fast' backend NumPy inputs go to ``kernels.cpu.linear``: the same products, split
among the kernel threads, with the bias added while the output is written. CuPy inputs: the
GEMM in cuBLAS and the bias added in place by one CUDA pass (the backward GEMMs are the
reference's, which run on cuBLAS as they are).
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import cpu_kernels, cuda_kernels, use_cuda, use_fast
from .common import check_float


class Linear(Function):
    fresh_grads = True  # each input's gradient is a new array

    def forward(self, x, weight, bias=None):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        self.fast = use_fast(x, weight, bias)
        if self.fast:
            return cpu_kernels().linear_forward(x, weight, bias)
        if use_cuda(x, weight, bias):
            return cuda_kernels().linear_forward(x, weight, bias)
        y = x @ weight.T
        return y + bias if bias is not None else y

    def backward(self, gy):
        if self.fast:
            need = self.needs_input_grad
            gx, gw, gb = cpu_kernels().linear_backward(self.x, self.weight, gy, need[0], need[1],
                                                       self.has_bias and need[2])
            return (gx, gw, gb) if self.has_bias else (gx, gw)
        gx = gy @ self.weight if self.needs_input_grad[0] else None
        gw = gy.T @ self.x if self.needs_input_grad[1] else None
        if self.has_bias:
            return gx, gw, gy.sum(axis=0) if self.needs_input_grad[2] else None
        return gx, gw


class LinearReLU(Function):
    """relu(x · Wᵀ + b) as one op, for NumPy inputs on the 'fast' backend only (``linear_relu``
    picks it): the ReLU is applied while the output is written, and backward masks gy with the
    kept output before the layer's GEMMs."""

    fresh_grads = True

    def forward(self, x, weight, bias):
        self.x, self.weight = x, weight
        self.y = cpu_kernels().linear_forward(x, weight, bias, relu=True)
        return self.y

    def backward(self, gy):
        k, need = cpu_kernels(), self.needs_input_grad
        gy = k.relu_backward(self.y, gy)
        return k.linear_backward(self.x, self.weight, gy, need[0], need[1], need[2])


def _check_linear(x, weight, bias, op):
    check_float(x, op)
    if x.ndim != 2:
        raise ValueError(f"{op}: expected input of rank 2 (N, in_features), got shape {x.shape}; flatten it first")
    if weight.ndim != 2 or weight.shape[1] != x.shape[1]:
        raise ValueError(f"{op}: input has {x.shape[1]} features but weight of shape {weight.shape} expects (out, {x.shape[1]})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: expected bias of shape ({weight.shape[0]},), got {bias.shape}")


def linear(x, weight, bias=None):
    """``x`` (N, in) -> (N, out) with ``weight`` (out, in) and optional ``bias`` (out,)."""
    _check_linear(x, weight, bias, "linear")
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


def linear_relu(x, weight, bias=None):
    """``relu(linear(x, weight, bias))``: one fused op (``LinearReLU``) for NumPy float32/float64
    tensors with the 'fast' backend, else exactly the two ops."""
    from .activation import relu

    _check_linear(x, weight, bias, "linear")
    if bias is not None and use_fast(x.data, weight.data, bias.data) and x.dtype == weight.dtype == bias.dtype:
        return LinearReLU.apply(x, weight, bias)
    return relu(linear(x, weight, bias))
