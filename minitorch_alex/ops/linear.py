"""Fully connected layer: y = x · Wᵀ + b with weight (out_features, in_features), as PyTorch.

Backward: dx = dy · W, dW = dyᵀ · x, db = sum of dy over the batch.

This is the reference (``minitorch_alex.dispatch`` says which backend runs a call).
"""
from __future__ import annotations

from ..autograd import Function
from ..device import get_array_module
from .common import check_float


class Linear(Function):
    fresh_grads = True  # each input's gradient is a new array

    def forward(self, x, weight, bias=None):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        y = x @ weight.T
        return y + bias if bias is not None else y

    def backward(self, gy):
        gx = gy @ self.weight if self.needs_input_grad[0] else None
        gw = gy.T @ self.x if self.needs_input_grad[1] else None
        if self.has_bias:
            return gx, gw, gy.sum(axis=0) if self.needs_input_grad[2] else None
        return gx, gw


class LinearReLU(Linear):
    """relu(x · Wᵀ + b) as one op (``linear_relu``): the reference is the two steps in a row;
    the numba version applies the ReLU while the output is written, and backward masks gy with the
    kept output before the layer's GEMMs."""

    def forward(self, x, weight, bias=None):
        y = get_array_module(x).maximum(super().forward(x, weight, bias), 0)
        self.positive = y > 0
        return y

    def backward(self, gy):
        return super().backward(gy * self.positive)


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
    """``relu(linear(x, weight, bias))``: one op (``LinearReLU``) when there is a bias, else
    exactly the two ops."""
    from .activation import relu

    _check_linear(x, weight, bias, "linear")
    if bias is not None:
        return LinearReLU.apply(x, weight, bias)
    return relu(linear(x, weight, bias))
