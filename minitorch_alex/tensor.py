"""``Tensor``: an array (NumPy or CuPy) plus the device it lives on, and a place in the graph.

Arithmetic on tensors follows NumPy broadcasting; each operator below is a thin call into a
``Function`` from ``minitorch_alex.ops`` that knows its own gradient.
"""
from __future__ import annotations

import numpy as np

from . import autograd
from .device import CPU, Device, as_device, device_of_array, place, transfer
from .ops import arithmetic, reduction
from .ops import shape as shape_ops

_FLOAT_DEFAULT = np.float32


class Tensor:
    """A multi-dimensional array with autograd.

    Attributes: ``data`` (the array), ``device``, ``requires_grad``, ``grad`` (a Tensor or None,
    filled in by ``backward`` for leaves).
    """

    # make NumPy hand mixed expressions (ndarray + Tensor) to our reflected operators
    __array_priority__ = 1000
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        device = as_device(device)
        if isinstance(data, Tensor):
            data = data.data
        src = device_of_array(data)  # before the conversion: a strict-mode array knows its device
        array = _to_array(data, dtype)
        if src != device and (src.type != device.type or src.type == "cuda" or src.index != 0):
            array = transfer(array, src, device)  # (a plain NumPy array reads as cpu:0 and fits any cpu:k)
        self._init(array, device, requires_grad)

    def _init(self, array, device, requires_grad):
        self.data = place(array, device)  # strict device mode tags cpu arrays with their device
        self.device = device
        self.grad = None
        self._node = None  # the Function that produced this tensor (None for leaves)
        self._index = 0  # which output of that Function this is
        self._retains_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, array, device, requires_grad=False):
        """Make a Tensor around an existing array without copying or checks (used by ops)."""
        t = cls.__new__(cls)
        t._init(array, device, requires_grad)
        return t

    @classmethod
    def _scalar_like(cls, value, ref: Tensor, op_name: str):
        """Promote a Python number to a 0-d tensor of ``ref``'s dtype and device."""
        if isinstance(value, (bool, int, float, np.number)):
            if np.issubdtype(ref.dtype, np.integer) and not float(value).is_integer():
                raise TypeError(f"{op_name}: cannot combine an integer tensor ({ref.dtype}) with the float {value!r}; "
                                "convert the tensor first")
            with ref.device.context():  # CuPy allocates on the current device: make it ref's
                return cls._wrap(ref.xp.asarray(value, dtype=ref.dtype), ref.device)
        raise TypeError(
            f"{op_name}: expected a Tensor or a Python number, got {type(value).__name__}; wrap arrays with mt.tensor(...)"
        )

    # ----- properties -------------------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"only floating-point tensors can require grad, got dtype {self.data.dtype}")
        if not value and self._node is not None:
            raise RuntimeError("requires_grad can be switched off only on leaves; use .detach() for a non-leaf")
        self._requires_grad = bool(value)

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return int(self.data.size)

    @property
    def xp(self):
        return self.device.xp

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return autograd.grad_fn_name(self)

    @property
    def T(self):
        return self.transpose()

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extra = [f"device='{self.device}'"] if self.device != CPU else []
        if self.dtype != _FLOAT_DEFAULT:
            extra.append(f"dtype={self.dtype}")
        if self._node is not None:
            extra.append(f"grad_fn={self.grad_fn}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extra) + ")"

    # ----- conversion ---------------------------------------------------------------------------
    def numpy(self):
        """The values as a NumPy array (shared with the tensor on cpu, copied from a GPU)."""
        if self.device.type == "cpu":
            return np.asarray(self.data)  # a plain view: host memory, usable under any device
        return transfer(self.data, self.device, CPU)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    # ----- zero-copy exchange (DLPack, CUDA array interface) -------------------------------------
    def __dlpack__(self, *args, **kwargs):
        """Export the data without a copy to ``np.from_dlpack``, ``torch.from_dlpack``,
        ``cupy.from_dlpack``, ...: the consumer shares this tensor's memory (writes show on both
        sides) and sees the values only, detached from the autograd graph."""
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        """(device type, index) in DLPack's codes: (1, 0) for the CPU, (2, i) for cuda:i."""
        return self.data.__dlpack_device__()

    @property
    def __cuda_array_interface__(self):
        """Numba/CuPy/PyTorch's CUDA array interface, on CUDA tensors only (an AttributeError on the
        CPU, so ``hasattr`` tells consumers which protocol to use)."""
        if self.device.type != "cuda":
            raise AttributeError(f"__cuda_array_interface__: only CUDA tensors have it; this one is on {self.device}")
        return self.data.__cuda_array_interface__

    def item(self):
        if self.size != 1:
            raise ValueError(f"item(): expected a single-element tensor, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.size} elements is ambiguous")
        return bool(self.item())

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data, self.device)

    def to(self, target):
        """Move to a device (``"cpu:1"``, ``"cuda:0"``) or cast to a dtype; differentiable either way."""
        if _is_dtype(target):
            dtype = np.dtype(target)
            return self if dtype == self.dtype else shape_ops.Cast.apply(self, dtype=dtype)
        device = Device(target)
        return self if device == self.device else shape_ops.ToDevice.apply(self, src=self.device, dst=device)

    def cpu(self):
        return self.to(CPU)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # ----- autograd -----------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
        autograd.backward(self, grad, retain_graph)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor too after backward."""
        self._retains_grad = True
        return self

    def requires_grad_(self, mode=True):
        self.requires_grad = mode
        return self

    def _add_grad(self, g, owned=False):
        # a fresh array: ops may hand the same gradient array to several inputs (unless ``owned``:
        # the op made g for this input alone, so it can be kept as is)
        with self.device.context():  # the copy and the sum run on this tensor's device
            if self.grad is None:
                self.grad = Tensor._wrap(g if owned else g.copy(), self.device)
            else:
                self.grad = Tensor._wrap(self.grad.data + g, self.device)

    # ----- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other):
        return arithmetic.Add.apply(self, other)

    def __radd__(self, other):
        return arithmetic.Add.apply(other, self)

    def __sub__(self, other):
        return arithmetic.Sub.apply(self, other)

    def __rsub__(self, other):
        return arithmetic.Sub.apply(other, self)

    def __mul__(self, other):
        return arithmetic.Mul.apply(self, other)

    def __rmul__(self, other):
        return arithmetic.Mul.apply(other, self)

    def __truediv__(self, other):
        return arithmetic.Div.apply(self, other)

    def __rtruediv__(self, other):
        return arithmetic.Div.apply(other, self)

    def __neg__(self):
        return arithmetic.Neg.apply(self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            raise TypeError("pow: the exponent must be a Python number (tensor exponents are not supported)")
        return arithmetic.Pow.apply(self, exponent=float(exponent))

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def exp(self):
        return arithmetic.Exp.apply(self)

    def log(self):
        return arithmetic.Log.apply(self)

    def relu(self):
        from .ops.activation import relu

        return relu(self)

    def sigmoid(self):
        from .ops.activation import sigmoid

        return sigmoid(self)

    def tanh(self):
        from .ops.activation import tanh

        return tanh(self)

    def sqrt(self):
        return arithmetic.Sqrt.apply(self)

    def abs(self):
        return arithmetic.Abs.apply(self)

    __abs__ = abs

    def clamp(self, min=None, max=None):  # noqa: A002 - PyTorch's keyword names
        """Values limited to [min, max] (either may be None)."""
        if min is None and max is None:
            raise ValueError("clamp: expected min or max (or both), got neither")
        return arithmetic.Clamp.apply(self, low=min, high=max)

    def clone(self):
        """A copy with its own memory, still in the graph (the gradient passes to ``self``)."""
        return shape_ops.Clone.apply(self)

    # ----- comparisons (no gradient; boolean results) --------------------------------------------
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        with self.device.context():
            return Tensor._wrap(op(self.data, other), self.device)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    __hash__ = object.__hash__  # tensors are hashed by identity, like PyTorch's

    # ----- reductions ---------------------------------------------------------------------------
    # ``axis``/``keepdims`` are NumPy's names (the reference code is NumPy); PyTorch's ``dim``/``keepdim``
    # are taken too
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _axis_args(axis, keepdims, dim, keepdim, "sum")
        return reduction.Sum.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _axis_args(axis, keepdims, dim, keepdim, "mean")
        axes = _axes(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self.sum(axis, keepdims) * (1.0 / count)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """The largest values (a tensor; not PyTorch's (values, indices) pair: ``argmax`` gives those)."""
        axis, keepdims = _axis_args(axis, keepdims, dim, keepdim, "max")
        return reduction.Max.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def argmax(self, axis=None, *, dim=None):
        axis, _ = _axis_args(axis, False, dim, None, "argmax")
        with self.device.context():
            return Tensor._wrap(self.data.argmax(axis=axis), self.device)

    def numel(self):
        """The number of elements (``size``; PyTorch's ``size()`` is the shape)."""
        return self.size

    def dim(self):
        return self.ndim

    # ----- shape --------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return shape_ops.Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        from .ops.shape import flatten

        return flatten(self, start_dim, end_dim)

    def permute(self, *axes):
        """The axes in the order ``axes`` (none: reversed, NumPy's ``transpose()``)."""
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return shape_ops.Transpose.apply(self, axes=tuple(axes) if axes else None)

    def transpose(self, *axes):
        """PyTorch's ``transpose(dim0, dim1)`` swaps two axes; any other count of axes is a permutation
        (``permute``), as NumPy's ``transpose`` (whose two-axis form, a permutation, would differ)."""
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if len(axes) == 2:
            order = list(range(self.ndim))
            a, b = (int(x) % self.ndim for x in axes)
            order[a], order[b] = order[b], order[a]
            axes = order
        return self.permute(*axes)

    def unsqueeze(self, dim):
        """A new axis of size 1 at ``dim`` (negative counts from the end of the result)."""
        ndim = self.ndim + 1
        if not -ndim <= dim < ndim:
            raise ValueError(f"unsqueeze: dim {dim} is out of range for {ndim} dimensions")
        dim %= ndim
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        """Without the axes of size 1 (``dim``: only that one, if it has size 1)."""
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dim = _axes(dim, self.ndim)[0]
        return self.reshape(self.shape[:dim] + self.shape[dim + 1:]) if self.shape[dim] == 1 else self

    def __getitem__(self, key):
        return shape_ops.GetItem.apply(self, key=_index_key(key))


def _is_dtype(x):
    if isinstance(x, (Device,)):
        return False
    if isinstance(x, str):
        return not (x.startswith("cpu") or x.startswith("cuda"))
    try:
        np.dtype(x)
        return True
    except TypeError:
        return False


def _to_array(data, dtype):
    """Make an array from data; Python floats default to float32 like PyTorch."""
    if device_of_array(data).type == "cuda":
        if dtype is None:
            return data
        with data.device:  # the cast runs on the array's GPU, whichever is current
            return data.astype(dtype)
    if dtype is None and not isinstance(data, np.ndarray):
        array = np.asarray(data)
        if array.dtype == np.float64 and not isinstance(data, np.generic):
            array = array.astype(_FLOAT_DEFAULT)
    else:
        array = np.asarray(data, dtype=dtype)
    return np.array(array, copy=True) if array is data or array.base is data else array


def _axis_args(axis, keepdims, dim, keepdim, name):
    """(axis, keepdims) from NumPy's names or PyTorch's (not both)."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{name}: got both axis={axis} and dim={dim}; expected one")
        axis = dim
    if keepdim is not None:
        if keepdims:
            raise TypeError(f"{name}: got both keepdims and keepdim; expected one")
        keepdims = keepdim
    return axis, bool(keepdims)


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % max(ndim, 1))
    return tuple(sorted(out))


def _index_key(key):
    """Tensors used as indices become arrays (integer or boolean masks)."""
    if isinstance(key, Tensor):
        return key.data
    if isinstance(key, tuple):
        return tuple(k.data if isinstance(k, Tensor) else k for k in key)
    return key


def check_same_device(tensors, op_name) -> Device:
    """Return the common device of ``tensors`` or raise naming the two that differ."""
    first = tensors[0].device
    for i, t in enumerate(tensors[1:], start=1):
        if t.device != first:
            raise RuntimeError(
                f"{op_name}: expected all tensors on one device, got {first} (input 0) and {t.device} (input {i}); "
                "move one with .to(device)"
            )
    return first


def check_same_dtype(tensors, op_name):
    """Raise unless every tensor has the same dtype (no silent float32/float64 promotion)."""
    first = tensors[0].dtype
    for i, t in enumerate(tensors[1:], start=1):
        if t.dtype != first:
            raise TypeError(
                f"{op_name}: expected all tensors of one dtype, got {first} (input 0) and {t.dtype} (input {i}); "
                "convert one with .to(dtype)"
            )


def tensor(data, requires_grad=False, dtype=None, device=None) -> Tensor:
    """Make a leaf tensor (copying ``data``). Python floats become float32, ints int64."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def matmul(a, b):
    """Matrix product with NumPy's rules: 1-D operands are promoted and the added axis removed."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"matmul: expected two Tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: operands must have at least one dimension; use * for scalars")
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    a2 = a.reshape(1, -1) if squeeze_a else a
    b2 = b.reshape(-1, 1) if squeeze_b else b
    y = arithmetic.MatMul.apply(a2, b2)
    if squeeze_a or squeeze_b:
        shape = y.shape[:-2] + (() if squeeze_a else y.shape[-2:-1]) + (() if squeeze_b else y.shape[-1:])
        y = y.reshape(shape)
    return y
