"""Reductions over axes: sum and max (mean is a sum times 1/count, see ``Tensor.mean``)."""
from __future__ import annotations

from ..autograd import Function
from ..device import get_array_module


def _expand(g, axes, keepdims):
    """Put the reduced axes back (as size 1) so ``g`` broadcasts against the input."""
    if not keepdims:
        for a in axes:
            g = g.reshape(g.shape[:a] + (1,) + g.shape[a:])
    return g


class Sum(Function):
    def forward(self, x, axis, keepdims):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):
        g = _expand(g, self.axis, self.keepdims)
        return (get_array_module(g).broadcast_to(g, self.shape).copy(),)


class Max(Function):
    """Maximum over axes. Where several entries tie for the maximum the gradient is shared
    equally among them (the same convention as PyTorch's ``amax``)."""

    def forward(self, x, axis, keepdims):
        y = x.max(axis=axis, keepdims=True)
        self.mask = x == y
        self.count = self.mask.sum(axis=axis, keepdims=True)
        self.axis, self.keepdims = axis, keepdims
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axis])

    def backward(self, g):
        g = _expand(g, self.axis, self.keepdims)
        return (self.mask * (g / self.count),)
