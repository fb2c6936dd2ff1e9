"""The one place that decides which implementation runs a hot op.

Every hot op has one implementation per backend, each in its own home, with the same class
name and methods (``forward(*arrays, **params) -> array``, ``backward(gy) -> tuple``):

    backend      home                     takes
    'reference'  minitorch_alex/ops/      any array (NumPy or CuPy), any dtype: the readable code
    'numba'      kernels/cpu/<op>.py      NumPy float32/float64 arrays
    'cuda'       kernels/cuda/<op>.py     CuPy float16/bfloat16/float32/float64 arrays

``TABLE`` lists them, as "module:name" strings imported on first use (so numba, CuPy and the
CUDA sources load only when an array needs them). For a call, ``select`` reads
``mt.config.backend`` and the arrays' types and dtypes:

* 'auto' (the default): numba when every array is a NumPy float32/float64 array, cuda when
  every array is a CuPy array of a kernel dtype, else the reference;
* 'numba' / 'cuda': that backend for the arrays it takes, else the reference;
* 'reference': the reference.

An op's own condition (``REQUIRES``: e.g. dropout's kernels take a boolean mask) sends a call
back to the reference too. ``Function.apply`` asks once per call and records the answer on
the graph node (``node.backend``, ``node.impl``), and the backward pass calls that same
implementation, so switching the backend between forward and backward changes nothing.
"""
from __future__ import annotations

import importlib

import numpy as np

from .config import config, numba_available

BACKENDS = ("reference", "numba", "cuda")

TABLE = {
    "Conv2d": {"reference": "minitorch_alex.ops.conv:Conv2d", "numba": "minitorch_alex_kernels.cpu.conv:Conv2d",
               "cuda": "minitorch_alex_kernels.cuda.conv:Conv2d"},
    "Conv2dReLU": {"reference": "minitorch_alex.ops.conv:Conv2dReLU", "numba": "minitorch_alex_kernels.cpu.conv:Conv2dReLU",
                   "cuda": "minitorch_alex_kernels.cuda.conv:Conv2dReLU"},
    "Linear": {"reference": "minitorch_alex.ops.linear:Linear", "numba": "minitorch_alex_kernels.cpu.linear:Linear",
               "cuda": "minitorch_alex_kernels.cuda.linear:Linear"},
    "LinearReLU": {"reference": "minitorch_alex.ops.linear:LinearReLU", "numba": "minitorch_alex_kernels.cpu.linear:LinearReLU",
                   "cuda": "minitorch_alex_kernels.cuda.linear:LinearReLU"},
    "MaxPool2d": {"reference": "minitorch_alex.ops.pool:MaxPool2d", "numba": "minitorch_alex_kernels.cpu.pool:MaxPool2d",
                  "cuda": "minitorch_alex_kernels.cuda.pool:MaxPool2d"},
    "LocalResponseNorm": {"reference": "minitorch_alex.ops.lrn:LocalResponseNorm",
                          "numba": "minitorch_alex_kernels.cpu.lrn:LocalResponseNorm",
                          "cuda": "minitorch_alex_kernels.cuda.lrn:LocalResponseNorm"},
    "ReLU": {"reference": "minitorch_alex.ops.activation:ReLU", "numba": "minitorch_alex_kernels.cpu.activation:ReLU",
             "cuda": "minitorch_alex_kernels.cuda.activation:ReLU"},
    "Dropout": {"reference": "minitorch_alex.ops.dropout:Dropout", "numba": "minitorch_alex_kernels.cpu.dropout:Dropout",
                "cuda": "minitorch_alex_kernels.cuda.dropout:Dropout"},
    "sgd_momentum_update_": {"reference": "minitorch_alex.optim.sgd:sgd_momentum_update_",
                             "numba": "minitorch_alex_kernels.cpu.sgd:sgd_momentum_update_",
                             "cuda": "minitorch_alex_kernels.cuda.sgd:sgd_momentum_update_"},
}

# the dtypes each backend's kernels take (per op where it differs)
DTYPES = {"numba": ("float32", "float64"), "cuda": ("float16", "bfloat16", "float32", "float64")}
OP_DTYPES = {("sgd_momentum_update_", "cuda"): ("float32", "float64")}  # float32 masters under mixed precision
# keyword options a backend's classes take in __init__, read from mt.config at each call
OPTIONS = {"cuda": ("tf32",)}


def _fused_update(w, v, g):
    """The fused update walks w, v and g as flat C-ordered arrays of one shape and dtype."""
    return (w.dtype == v.dtype == g.dtype and w.shape == v.shape == g.shape
            and w.flags.c_contiguous and v.flags.c_contiguous and g.flags.c_contiguous)


# an op's own condition for leaving the reference: f(arrays, params) -> bool
REQUIRES = {
    "Dropout": lambda arrays, params: params["mask"].dtype == bool,  # the kernels take a boolean keep-mask
    "sgd_momentum_update_": lambda arrays, params: _fused_update(*arrays),
}

_loaded = {}
_op_of_class = {}


def load(op, backend):
    """The implementation of ``op`` in ``backend`` (a class, or the SGD update function)."""
    key = (op, backend)
    if key not in _loaded:
        module, _, name = TABLE[op][backend].partition(":")
        _loaded[key] = getattr(importlib.import_module(module), name)
    return _loaded[key]


def op_of(cls):
    """The TABLE entry whose reference is ``cls``, or None (ops with one implementation)."""
    try:
        return _op_of_class[cls]
    except KeyError:
        where = f"{cls.__module__}:{cls.__qualname__}"
        _op_of_class[cls] = op = next((name for name, homes in TABLE.items() if homes["reference"] == where), None)
        return op


_NUMPY_DTYPES = {key: frozenset(np.dtype(d) for d in names) for key, names in
                 [("numba", DTYPES["numba"])] + [(k, v) for k, v in OP_DTYPES.items() if k[1] == "numba"]}


def _takes(backend, op, arrays):
    """Does ``backend`` take these arrays (all of one kind and a kernel dtype; None entries skipped)?"""
    if backend == "numba":
        dtypes = _NUMPY_DTYPES.get((op, backend)) or _NUMPY_DTYPES["numba"]
        return numba_available() and all(
            isinstance(a, np.ndarray) and a.dtype in dtypes for a in arrays if a is not None)
    from .device import _cupy  # CuPy is never imported here: a CuPy array exists only once it has been

    dtypes = OP_DTYPES.get((op, backend), DTYPES[backend])
    return _cupy is not None and all(
        isinstance(a, _cupy.ndarray) and a.dtype.name in dtypes for a in arrays if a is not None)


def backend_for(op, arrays, params=None):
    """The backend ('reference', 'numba' or 'cuda') that runs ``op`` on ``arrays`` now."""
    setting = config.backend
    if setting == "reference":
        return "reference"
    candidates = ("numba", "cuda") if setting == "auto" else (setting,)
    for backend in candidates:
        if _takes(backend, op, arrays):
            condition = REQUIRES.get(op)
            if condition is None or condition(arrays, params or {}):
                return backend
            break
    return "reference"


def select(cls, arrays, params):
    """(backend name, implementation instance or None for ``cls`` itself) for a call of ``cls``."""
    op = op_of(cls)
    if op is None:
        return "reference", None
    backend = backend_for(op, arrays, params)
    if backend == "reference":
        return backend, None
    options = OPTIONS.get(backend)
    impl = load(op, backend)
    return backend, impl(**{name: getattr(config, name) for name in options}) if options else impl()


def function(op, *arrays, **params):
    """(backend name, function) for a plain function such as the SGD update."""
    backend = backend_for(op, arrays, params)
    return backend, load(op, backend)


__all__ = ["BACKENDS", "TABLE", "backend_for", "function", "load", "op_of", "select"]
