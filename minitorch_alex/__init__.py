"""minitorch_alex: a from-scratch deep-learning framework that reproduces AlexNet.

    import minitorch_alex as mt
    import minitorch_alex.nn.functional as F

    x = mt.tensor(np.random.randn(2, 3, 224, 224), dtype=mt.float32)
    model = mt.models.alexnet()
    loss = F.cross_entropy(model(x), [3, 7])
    loss.backward()
"""
import numpy as _np

from . import dispatch, models, nn, onnx, optim
from .autograd import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .config import config
from .device import Device
from .gradcheck import GradcheckError, GradcheckReport, gradcheck
from .ops.shape import concat, split, stack
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


def from_dlpack(obj, device=None):
    """A tensor sharing the memory of any DLPack producer, without a copy: a NumPy or CuPy array,
    a PyTorch tensor (detach it first if it requires grad), another framework's tensor.

    Host memory becomes a cpu tensor (NumPy data), CUDA memory a ``cuda:i`` tensor (CuPy data, on
    the producer's GPU). ``device``: where the tensor should be; a different one costs a copy.
    """
    from .device import as_device, transfer

    if not hasattr(obj, "__dlpack__"):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ (NumPy, CuPy, PyTorch, ...), got {type(obj).__name__}")
    kind, index = obj.__dlpack_device__()
    if int(kind) == 1:  # kDLCPU
        array, here = _np.from_dlpack(obj), Device("cpu")
    elif int(kind) in (2, 13):  # kDLCUDA, kDLCUDAManaged
        from .device import _import_cupy

        array, here = _import_cupy().from_dlpack(obj), Device(f"cuda:{int(index)}")
    else:
        raise ValueError(f"from_dlpack: DLPack device type {int(kind)} is neither the CPU (1) nor CUDA (2)")
    if device is not None:
        dst = as_device(device)
        if dst.type == "cpu" and here.type == "cpu":
            here = dst  # cpu:0 and cpu:1 share host memory: no copy
        elif dst != here:
            array, here = transfer(array, here, dst), dst
    return Tensor._wrap(array, here)


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


def cat(tensors, dim=0):
    """PyTorch's name for ``concat``."""
    return concat(tensors, axis=dim)


def full(shape, fill_value, dtype=float32, device=None, requires_grad=False):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(_np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad, device=device)


def zeros_like(t, dtype=None, requires_grad=False):
    """Zeros of ``t``'s shape, dtype (unless given) and device."""
    return full(t.shape, 0, dtype or t.dtype, t.device, requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return full(t.shape, 1, dtype or t.dtype, t.device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """[start, end) by ``step`` (``arange(n)``: 0 .. n-1); int64 for integer arguments, else float32
    (PyTorch's rule: not NumPy's float64)."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = int64 if all(isinstance(v, int) for v in (start, end, step)) else float32
    return Tensor(_np.arange(start, end, step, dtype=dtype), requires_grad=requires_grad, device=device)


__all__ = [
    "Device", "Function", "GradcheckError", "GradcheckReport", "Tensor", "arange", "cat", "concat",
    "config", "device", "dispatch", "enable_grad", "float32", "float64", "from_dlpack", "from_numpy", "full",
    "gradcheck", "int64", "is_grad_enabled", "load", "manual_seed", "matmul", "models", "nn", "no_grad", "ones",
    "ones_like", "onnx", "optim", "randn", "save", "set_grad_enabled", "split", "stack", "tensor", "zeros",
    "zeros_like",
]
