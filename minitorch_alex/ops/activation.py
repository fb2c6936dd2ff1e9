"""ReLU, softmax and log-softmax."""
from __future__ import annotations

from ..autograd import Function
from ..device import get_array_module
from .common import check_float


class ReLU(Function):
    """max(x, 0); the gradient passes where the output is positive (0 at the kink, like PyTorch)."""

    fresh_grads = True  # each input's gradient is a new array

    def forward(self, x):
        y = get_array_module(x).maximum(x, 0)
        self.positive = y > 0
        return y

    def backward(self, gy):
        return (gy * self.positive,)


class LogSoftmax(Function):
    """log softmax(x) = x - logsumexp(x), stable because the max is subtracted first."""

    def forward(self, x, axis):
        xp = get_array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        self.axis = axis
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return (gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True),)


class Softmax(Function):
    def forward(self, x, axis):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        self.y = e / e.sum(axis=axis, keepdims=True)
        self.axis = axis
        return self.y

    def backward(self, gy):
        y = self.y
        return (y * (gy - (gy * y).sum(axis=self.axis, keepdims=True)),)


def relu(x):
    return ReLU.apply(x)


def log_softmax(x, axis=-1):
    check_float(x, "log_softmax")
    return LogSoftmax.apply(x, axis=axis)


def softmax(x, axis=-1):
    check_float(x, "softmax")
    return Softmax.apply(x, axis=axis)
