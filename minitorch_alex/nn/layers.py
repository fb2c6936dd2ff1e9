"""Layers: Modules wrapping the functional ops with their parameters and settings."""
from __future__ import annotations

import numpy as np

from ..ops.activation import leaky_relu, relu, sigmoid, tanh
from ..ops.batchnorm import batch_norm
from ..ops.common import pair
from ..ops.conv import conv2d
from ..ops.dropout import dropout
from ..ops.linear import linear
from ..ops.loss import cross_entropy, mse_loss, nll_loss
from ..ops.lrn import local_response_norm
from ..ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ..ops.shape import flatten
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 dtype=np.float32, device=None):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        kh, kw = pair(kernel_size, "kernel_size", "Conv2d")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding = (kh, kw), pair(stride, "stride", "Conv2d"), pair(padding, "padding", "Conv2d")
        self.dilation = pair(dilation, "dilation", "Conv2d")
        fan_in = in_channels // groups * kh * kw
        shape = (out_channels, in_channels // groups, kh, kw)
        self.weight = init.default_uniform_(Parameter(np.empty(shape, dtype), dtype=dtype, device=device), fan_in)
        self.bias = init.default_uniform_(Parameter(np.zeros(out_channels), dtype=dtype, device=device), fan_in) if bias else None

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):  # PyTorch's: settings at their defaults left out, bias=False said
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        text += f", padding={self.padding}" if self.padding != (0, 0) else ""
        text += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
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


class _BatchNorm(Module):
    """Batch normalisation over channel axis 1, as PyTorch's layers: weight (C,) = 1 and bias
    (C,) = 0 when ``affine``; buffers running_mean (C,) = 0, running_var (C,) = 1 and
    num_batches_tracked (int64) when ``track_running_stats``. In train() mode the batch's
    statistics normalise and the running ones are updated (``momentum`` the new batch's weight;
    None: the cumulative average over the batches seen); in eval() mode the running ones
    normalise (without them, the batch's, as PyTorch)."""

    ranks = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float32, device=None):
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"{type(self).__name__}: expected num_features a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features), dtype=dtype, device=device) if affine else None
        self.bias = Parameter(np.zeros(num_features), dtype=dtype, device=device) if affine else None
        for name, value in (("running_mean", np.zeros(num_features, dtype)), ("running_var", np.ones(num_features, dtype)),
                            ("num_batches_tracked", np.array(0, np.int64))):
            self.register_buffer(name, Tensor(value, device=device) if track_running_stats else None)

    def forward(self, x):
        if x.ndim not in self.ranks:
            raise ValueError(f"{type(self).__name__}: expected input of rank {' or '.join(map(str, self.ranks))}, "
                             f"got shape {x.shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1  # in place: the buffer's array is the state dict's
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / int(self.num_batches_tracked.data)
        use_batch = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if keep else None, self.running_var if keep else None, self.weight,
                          self.bias, use_batch, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Input (N, C) or (N, C, L)."""

    ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Input (N, C, H, W)."""

    ranks = (4,)


class MaxPool2d(Module):
    """``stride`` None: the kernel size (non-overlapping windows), stored as such (as PyTorch's)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        if return_indices:  # PyTorch's positional order keeps this slot; there is no MaxUnpool2d here to use them
            raise ValueError("MaxPool2d: expected return_indices=False (indices are not returned), got True")
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)

    def extra_repr(self):  # PyTorch's MaxPool2d repr names all four
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


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


class CrossEntropyLoss(Module):
    """``F.cross_entropy`` with its options fixed: ``loss = CrossEntropyLoss(label_smoothing=0.1)(logits, target)``."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        self.weight, self.ignore_index, self.reduction, self.label_smoothing = weight, ignore_index, reduction, label_smoothing

    def forward(self, logits, target):
        return cross_entropy(logits, target, self.weight, self.reduction, self.ignore_index, self.label_smoothing)


class NLLLoss(Module):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def forward(self, log_probs, target):
        return nll_loss(log_probs, target, self.weight, self.reduction, self.ignore_index)


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, x, target):
        return mse_loss(x, target, self.reduction)
