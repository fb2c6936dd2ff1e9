"""ReLU, leaky ReLU, sigmoid, tanh, softmax and log-softmax."""
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


class LeakyReLU(Function):
    """x where x > 0, else slope * x; the gradient 1 or slope (slope at the kink, like PyTorch)."""

    def forward(self, x, negative_slope):
        self.positive, self.slope = x > 0, negative_slope
        return get_array_module(x).where(self.positive, x, x * negative_slope)

    def backward(self, gy):
        return (get_array_module(gy).where(self.positive, gy, gy * self.slope),)


class Sigmoid(Function):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: no overflow for large |x|; dy = y (1 - y)."""

    def forward(self, x):
        self.y = 0.5 * (1 + get_array_module(x).tanh(0.5 * x))
        return self.y

    def backward(self, gy):
        return (gy * self.y * (1 - self.y),)


class Tanh(Function):
    def forward(self, x):
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return (gy * (1 - self.y * self.y),)


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


def leaky_relu(x, negative_slope=0.01):
    check_float(x, "leaky_relu")
    return LeakyReLU.apply(x, negative_slope=float(negative_slope))


def sigmoid(x):
    check_float(x, "sigmoid")
    return Sigmoid.apply(x)


def tanh(x):
    check_float(x, "tanh")
    return Tanh.apply(x)


def log_softmax(x, axis=-1):
    check_float(x, "log_softmax")
    return LogSoftmax.apply(x, axis=axis)


def softmax(x, axis=-1):
    check_float(x, "softmax")
    return Softmax.apply(x, axis=axis)
