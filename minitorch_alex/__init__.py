"""minitorch_alex: a from-scratch deep-learning framework that reproduces AlexNet.

    import minitorch_alex as mt
    import minitorch_alex.nn.functional as F

    x = mt.tensor(np.random.randn(2, 3, 224, 224), dtype=mt.float32)
    model = mt.models.alexnet()
    loss = F.cross_entropy(model(x), [3, 7])
    loss.backward()
"""
import numpy as _np

from . import models, nn, optim
from .autograd import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .device import Device
from .gradcheck import GradcheckError, GradcheckReport, gradcheck
from .ops.shape import concat, split
from .random import manual_seed
from .serialization import load, save
from .tensor import Tensor, matmul, tensor

float32 = _np.float32
float64 = _np.float64
int64 = _np.int64

__version__ = "0.1.0"


def device(name):
    """A Device from a name such as 'cpu', 'cpu:1' or 'cuda:0'."""
    return Device(name)


def from_numpy(array, device=None):
    """Wrap an array as a tensor without copying it (when it is already on ``device``)."""
    from .device import as_device, device_of_array, transfer

    device = as_device(device)
    src = device_of_array(array)
    if src.type != device.type or (device.type == "cuda" and src != device):
        array = transfer(array, src, device)
    return Tensor._wrap(array, device)


def zeros(*shape, dtype=float32, device=None, requires_grad=False):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_np.zeros(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def ones(*shape, dtype=float32, device=None, requires_grad=False):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_np.ones(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def randn(*shape, dtype=float32, device=None, requires_grad=False, generator=None):
    """Standard normal samples from the global generator (``manual_seed``) or ``generator``."""
    from .random import normal

    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(normal(shape, dtype=dtype, generator=generator), requires_grad=requires_grad, device=device)


__all__ = [
    "Device", "Function", "GradcheckError", "GradcheckReport", "Tensor", "concat", "device", "enable_grad",
    "float32", "float64", "from_numpy", "gradcheck", "int64", "is_grad_enabled", "load", "manual_seed", "matmul", "models", "nn",
    "no_grad", "ones", "optim", "randn", "save", "set_grad_enabled", "split", "tensor", "zeros",
]
