"""Layers: Modules wrapping the functional ops with their parameters and settings."""
from __future__ import annotations

import numpy as np

from ..ops.activation import relu
from ..ops.common import pair
from ..ops.conv import conv2d
from ..ops.dropout import dropout
from ..ops.linear import linear
from ..ops.lrn import local_response_norm
from ..ops.pool import max_pool2d
from ..ops.shape import flatten
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True,
                 dtype=np.float32, device=None):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        kh, kw = pair(kernel_size, "kernel_size", "Conv2d")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding = (kh, kw), pair(stride, "stride", "Conv2d"), pair(padding, "padding", "Conv2d")
        fan_in = in_channels // groups * kh * kw
        shape = (out_channels, in_channels // groups, kh, kw)
        self.weight = init.default_uniform_(Parameter(np.empty(shape, dtype), dtype=dtype, device=device), fan_in)
        self.bias = init.default_uniform_(Parameter(np.zeros(out_channels), dtype=dtype, device=device), fan_in) if bias else None

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}")


class Linear(Module):
    """weight (out_features, in_features), bias (out_features,)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        weight = Parameter(np.empty((out_features, in_features), dtype), dtype=dtype, device=device)
        self.weight = init.default_uniform_(weight, in_features)
        self.bias = init.default_uniform_(Parameter(np.zeros(out_features), dtype=dtype, device=device), in_features) if bias else None

    def forward(self, x):
        return linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class ReLU(Module):
    def forward(self, x):
        return relu(x)


class LocalResponseNorm(Module):
    """The paper's LRN: ``alpha`` multiplies the *sum* over ``size`` channels (PyTorch's
    ``LocalResponseNorm`` uses alpha/size; its alpha equals ``alpha * size`` here). ``groups``
    keeps each window inside one of that many channel groups (the two-tower original)."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, groups=1):
        super().__init__()
        self.size, self.alpha, self.beta, self.k, self.groups = size, alpha, beta, k, groups

    def forward(self, x):
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k, self.groups)

    def extra_repr(self):
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, groups={self.groups}"


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Dropout(Module):
    """Active in train() mode only. ``inverted=False`` is the paper's convention (scale by
    1 - p at test time); the default is PyTorch's (scale by 1/(1-p) while training)."""

    def __init__(self, p=0.5, inverted=True):
        super().__init__()
        self.p, self.inverted = p, inverted

    def forward(self, x):
        return dropout(x, self.p, self.training, inverted=self.inverted)

    def extra_repr(self):
        return f"p={self.p}, inverted={self.inverted}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)


class Sequential(Module):
    """Calls its modules in order; children are named "0", "1", ..."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, expected a Module")
            setattr(self, str(i), m)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x
