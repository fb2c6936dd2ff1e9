"""Fully connected layers on the GPU: 2-D cuBLAS GEMMs into preallocated outputs (``_launch.gemm``)
and the bias (+ ReLU) added in place by one pass (``elementwise.cu``).

Shapes: x (N, in), weight (out, in), bias (out,), y (N, out). weightᵀ and gyᵀ are transposed
views, which the GEMM takes as they are.
"""
from __future__ import annotations

from . import _launch as L
from .gemm_layer import GemmLayer


def bias_act_rows_(y, bias, relu=False):
    """In place: y (N, O) += bias (O,), then max(., 0) if ``relu``. y must be C-contiguous."""
    cp = L.cupy()
    if not y.flags.c_contiguous:
        raise ValueError("bias_act_rows_: y must be C-contiguous")
    with L.on(y):
        L.launch(L.function("elementwise", "bias_act_rows", y.dtype), y.size,
                 [y, cp.ascontiguousarray(bias), *L.i64(y.size), *L.i32(y.shape[1], bool(relu))])
    return y


def linear_forward(x, weight, bias, relu=False, tf32=None):
    """y (N, out) = x · weightᵀ (+ bias, then the ReLU if ``relu``)."""
    cp = L.cupy()
    with L.on(x):
        y = cp.empty((x.shape[0], weight.shape[0]), dtype=x.dtype)
        L.gemm(x, weight.T, y, tf32)
        if bias is not None or relu:
            bias_act_rows_(y, bias if bias is not None else cp.zeros(y.shape[1], y.dtype), relu)
    return y


def linear_backward(x, weight, gy, need_x=True, need_weight=True, need_bias=True, tf32=None):
    """(gx (N, in), gw (out, in), gb (out,)), None where not needed."""
    cp = L.cupy()
    gx = gw = gb = None
    with L.on(gy):
        gy = cp.ascontiguousarray(gy)
        if need_x:
            gx = cp.empty(x.shape, dtype=gy.dtype)
            L.gemm(gy, weight, gx, tf32)
        if need_weight:
            gw = cp.empty(weight.shape, dtype=gy.dtype)
            L.gemm(gy.T, x, gw, tf32)
        if need_bias:
            gb = L.sum_rows(gy, (0,))
    return gx, gw, gb


class Linear(GemmLayer):
    """linear(x, weight[, bias]) -> x · weightᵀ + bias."""

    def forward(self, x, weight, bias=None):
        if self.relu and bias is None:
            raise TypeError("LinearReLU: expected a bias, got None")
        y = linear_forward(x, weight, bias, relu=self.relu, tf32=self.tf32)
        self._save(y, bias, x=x, weight=weight)
        return y

    def backward(self, gy):
        gy, need_x, need_w, need_b = self._grad_in(gy)
        return self._out(*linear_backward(self.x, self.weight, gy, need_x, need_w, need_b, tf32=self.tf32))


class LinearReLU(Linear):
    """relu(x · weightᵀ + bias), the ReLU fused into the bias pass."""

    relu = True
