"""Layers: Modules wrapping the functional ops with their parameters and settings."""
from __future__ import annotations

import numpy as np

from ..ops.activation import leaky_relu, relu, sigmoid, tanh
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

    def extra_repr(self):  # PyTorch's: settings at their defaults left out, bias=False said
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        text += f", padding={self.padding}" if self.padding != (0, 0) else ""
        text += f", groups={self.groups}" if self.groups != 1 else ""
        return text + (", bias=False" if self.bias is None else "")


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
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    def forward(self, x):
        return relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x):
        return sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return tanh(x)


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
    """``stride`` None: the kernel size (non-overlapping windows), stored as such (as PyTorch's)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding

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


class Identity(Module):
    """Returns its input (a placeholder, e.g. for a removed head: ``model.fc8 = nn.Identity()``)."""

    def __init__(self, *args, **kwargs):  # PyTorch's takes and ignores any arguments
        super().__init__()

    def forward(self, x):
        return x


class ModuleList(Module):
    """A list of modules whose parameters the parent sees (children named "0", "1", ...); no forward."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def _check(self, m, where):
        if not isinstance(m, Module):
            raise TypeError(f"ModuleList: {where} is a {type(m).__name__}, expected a Module")
        return m

    def append(self, module):
        setattr(self, str(len(self)), self._check(module, f"item {len(self)}"))
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        items = list(self)
        items.insert(index, self._check(module, f"item {index}"))
        for name in list(self._modules):
            delattr(self, name)
        self.extend(items)

    def __getitem__(self, i):
        items = list(self._modules.values())
        return ModuleList(items[i]) if isinstance(i, slice) else items[i]

    def __setitem__(self, i, module):
        name = list(self._modules)[i]  # IndexError as a list's
        setattr(self, name, self._check(module, f"item {i}"))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules (string keys) whose parameters the parent sees; no forward."""

    def __init__(self, modules=None):
        super().__init__()
        self.update(modules or {})

    def __setitem__(self, key, module):
        if not isinstance(key, str) or not key.isidentifier():
            raise KeyError(f"ModuleDict: expected a key that is a Python name, got {key!r}")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: {key!r} is a {type(module).__name__}, expected a Module")
        setattr(self, key, module)

    def __getitem__(self, key):
        return self._modules[key]

    def __delitem__(self, key):
        if key not in self._modules:
            raise KeyError(key)
        delattr(self, key)

    def update(self, modules):
        for key, m in (modules.items() if isinstance(modules, dict) else modules):
            self[key] = m

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
