"""Local response normalisation across channels (the paper's section 3.3).

    b[c] = a[c] / (k + alpha * S[c]) ** beta,    S[c] = sum of a[c']**2 over the window of c

The window of channel c covers channels c - size//2 ... c + (size-1)//2 (clipped at the ends);
for the paper's size = 5 that is c-2 ... c+2.

Convention: here ``alpha`` multiplies the *sum*, exactly as the paper writes it (k=2, n=5,
alpha=1e-4, beta=0.75). Caffe, PyTorch (``torch.nn.LocalResponseNorm``) and Krizhevsky's
cuda-convnet multiply the *average*, i.e. they use alpha/size. So PyTorch's
``LocalResponseNorm(size, alpha=a)`` equals ``local_response_norm(x, size, alpha=a / size)`` here,
and the paper's layer is PyTorch's with ``alpha = 5e-4``.

Backward, with s[c] = k + alpha * S[c]:

    da[j] = g[j] * s[j]**-beta - 2*alpha*beta * a[j] * sum over i whose window holds j of g[i] * a[i] * s[i]**(-beta-1)

The second sum runs over the *transposed* window j - (size-1)//2 ... j + size//2.

This is the reference: it keeps s for the backward pass (the numba kernel recomputes it).
"""
from __future__ import annotations

from ..autograd import Function
from ..device import get_array_module
from .common import check_float, check_rank


def window_sum(a, before, after):
    """Sum of ``a`` over channels c-before ... c+after (axis -3, zero outside), same shape as ``a``."""
    xp = get_array_module(a)
    c = a.shape[-3]
    pad = [(0, 0)] * a.ndim
    pad[-3] = (before, after)
    padded = xp.pad(a, pad)
    total = xp.zeros_like(a)
    for d in range(before + after + 1):  # one shifted copy per window position
        total += padded[..., d : d + c, :, :]
    return total


class LocalResponseNorm(Function):
    fresh_grads = True  # each input's gradient is a new array

    def forward(self, x, size, alpha, beta, k, groups):
        n, c, h, w = x.shape
        a = x.reshape(n, groups, c // groups, h, w)  # windows stay inside a group
        scale = k + alpha * window_sum(a * a, size // 2, (size - 1) // 2)
        y = a * scale**-beta
        self.a, self.scale, self.params = a, scale, (size, alpha, beta)
        return y.reshape(x.shape)

    def backward(self, gy):
        a, scale = self.a, self.scale
        size, alpha, beta = self.params
        g = gy.reshape(a.shape)
        inner = window_sum(g * a * scale ** (-beta - 1), (size - 1) // 2, size // 2)
        gx = g * scale**-beta - (2 * alpha * beta) * a * inner
        return (gx.reshape(gy.shape),)


def local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=2.0, groups=1):
    """Normalise ``x`` (N, C, H, W) across channels; returns the same shape.

    The paper's convention: ``alpha`` times the *sum* of squares over ``size`` channels (PyTorch's
    ``alpha`` equals ``alpha * size`` here). ``groups`` > 1 splits the channels into that many
    equal groups and never lets a window cross a group boundary: the two-tower AlexNet
    normalised each GPU's 48 conv1 maps separately.
    """
    op = "local_response_norm"
    check_rank(x, 4, "(N, C, H, W)", op)
    check_float(x, op)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"{op}: size must be a positive int, got {size!r}")
    if not isinstance(groups, int) or groups < 1 or x.shape[1] % groups:
        raise ValueError(f"{op}: groups must be a positive int dividing the {x.shape[1]} channels, got {groups!r}")
    if k <= 0 or alpha < 0:
        raise ValueError(f"{op}: expected k > 0 and alpha >= 0 (so the denominator stays positive), got k={k}, alpha={alpha}")
    return LocalResponseNorm.apply(x, size=size, alpha=float(alpha), beta=float(beta), k=float(k), groups=groups)
