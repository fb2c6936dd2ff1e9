"""Elementwise arithmetic and the matrix product, with NumPy broadcasting.

Gradients of broadcast operands are summed back to each operand's own shape (``sum_to``).
"""
from __future__ import annotations

from ..autograd import Function
from ..device import get_array_module
from .common import sum_to


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        return sum_to(g, sa), sum_to(g, sb)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        return sum_to(g, sa), sum_to(-g, sb)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        a, b = self.a, self.b
        ga = sum_to(g * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        a, b = self.a, self.b
        ga = sum_to(g / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-g * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Pow(Function):
    """a ** p for a Python number p: d/da = p a^(p-1)."""

    def forward(self, a, exponent):
        self.a, self.p = a, exponent
        return a**exponent

    def backward(self, g):
        a, p = self.a, self.p
        return (g * p * a ** (p - 1),)


class Exp(Function):
    def forward(self, a):
        self.y = get_array_module(a).exp(a)
        return self.y

    def backward(self, g):
        return (g * self.y,)


class Sqrt(Function):
    """sqrt(x); dy = 1 / (2 sqrt(x)) (inf at 0, as PyTorch's)."""

    def forward(self, a):
        self.y = get_array_module(a).sqrt(a)
        return self.y

    def backward(self, g):
        return (g * 0.5 / self.y,)


class Abs(Function):
    """|x|; the gradient is sign(x) (0 at 0, as PyTorch's)."""

    def forward(self, a):
        xp = get_array_module(a)
        self.sign = xp.sign(a)
        return xp.abs(a)

    def backward(self, g):
        return (g * self.sign,)


class Clamp(Function):
    """x limited to [low, high] (either may be None); the gradient passes where low <= x <= high
    (the bounds included, as PyTorch's)."""

    def forward(self, a, low, high):
        inside = True
        if low is not None:
            inside = a >= low
        if high is not None:
            inside = inside & (a <= high)
        self.inside = inside
        return get_array_module(a).clip(a, low, high)

    def backward(self, g):
        return (g * self.inside,)


class Log(Function):
    def forward(self, a):
        self.a = a
        return get_array_module(a).log(a)

    def backward(self, g):
        return (g / self.a,)


class MatMul(Function):
    """Y = A·B (batched over leading axes): dA = dY·Bᵀ, dB = Aᵀ·dY."""

    def forward(self, a, b):
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape} (expected a.shape[-1] == b.shape[-2])")
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        a, b = self.a, self.b
        ga = sum_to(g @ b.swapaxes(-1, -2), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(a.swapaxes(-1, -2) @ g, b.shape) if self.needs_input_grad[1] else None
        return ga, gb
