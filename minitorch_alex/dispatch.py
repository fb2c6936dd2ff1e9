"""The one place that decides which implementation runs a hot op.

Every hot op has one implementation per backend, each in its own home, with the same class
name and methods (``forward(*arrays, **params) -> array``, ``backward(gy) -> tuple``):

    backend      home                     takes
    'reference'  minitorch_alex/ops/      any array (NumPy or CuPy), any dtype: the readable code
    'numba'      kernels/cpu/<op>.py      NumPy float32/float64 arrays
    'cuda'       kernels/cuda/<op>.py     CuPy float16/bfloat16/float32/float64 arrays

The three homes agree on the small conventions too (``tests/core/test_dispatch.py`` checks them): the
same ``forward`` parameters with the same defaults as the reference; ``needs_input_grad``, set
by the engine before each forward, defaults to ``()``, "not told: every input needs a gradient"
(``kernels/common.py: needs``), and a kernel keeps what backward needs only when one does (with
no graph recorded, nothing); ``__init__`` takes no argument but the settings of ``OPTIONS`` it
names (the CUDA GEMM ops: ``tf32``).

``OPS`` lists the hot ops and their modules; ``TABLE`` follows from it, as "module:name"
strings imported on first use (so numba, CuPy and the CUDA sources load only when an array needs
them). The op of a class is found by identity with the reference class (``op_of``). For a call, ``select`` reads
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
import inspect

import numpy as np

from .config import config, numba_available

BACKENDS = ("reference", "numba", "cuda")

# The hot ops, the manifest every table below derives from: op name -> module. The name is the
# class's (the SGD update: the function's) in all three homes; the module is its file there:
# minitorch_alex/ops/<module>.py (the SGD update: minitorch_alex/optim/), kernels/cpu/<module>.py
# and kernels/cuda/<module>.py.
OPS = {
    "Conv2d": "conv", "Conv2dReLU": "conv", "Linear": "linear", "LinearReLU": "linear", "MaxPool2d": "pool",
    "LocalResponseNorm": "lrn", "ReLU": "activation", "Dropout": "dropout", "BatchNorm": "batchnorm",
    "sgd_momentum_update_": "sgd",
}
HOMES = {"reference": "minitorch_alex.ops", "numba": "minitorch_alex_kernels.cpu", "cuda": "minitorch_alex_kernels.cuda"}
REFERENCE_HOME = {"sgd_momentum_update_": "minitorch_alex.optim"}  # the ops whose reference is not under ops/

# op -> backend -> "module:name", imported on first use
TABLE = {op: {backend: f"{REFERENCE_HOME.get(op, home) if backend == 'reference' else home}.{module}:{op}"
              for backend, home in HOMES.items()} for op, module in OPS.items()}

# the dtypes each backend's kernels take (per op where it differs)
DTYPES = {"numba": ("float32", "float64"), "cuda": ("float16", "bfloat16", "float32", "float64")}
OP_DTYPES = {("sgd_momentum_update_", "cuda"): ("float32", "float64")}  # float32 masters under mixed precision
# the settings (mt.config) a backend's classes may take in __init__, read at each call; a class
# gets those its __init__ names (the CUDA GEMM ops: tf32), the others none
OPTIONS = {"cuda": ("tf32",)}


def _fused_update(w, v, g):
    """The fused update walks w, v and g as flat C-ordered arrays of one shape and dtype."""
    return (w.dtype == v.dtype == g.dtype and w.shape == v.shape == g.shape
            and w.flags.c_contiguous and v.flags.c_contiguous and g.flags.c_contiguous)


# an op's own condition for leaving the reference: f(arrays, params) -> bool
# forward parameters only the reference has: a call that passes one runs there (the public calls
# pass dilation only where it is not (1, 1); the kernels have no dilated windows)
REFERENCE_ONLY = {"Conv2d": ("dilation",), "Conv2dReLU": ("dilation",), "MaxPool2d": ("dilation",)}

REQUIRES = {
    "Dropout": lambda arrays, params: params["mask"].dtype == bool,  # the kernels take a boolean keep-mask
    "sgd_momentum_update_": lambda arrays, params: _fused_update(*arrays),
}

_loaded = {}
_options_of = {}  # implementation class -> the OPTIONS its __init__ names
_op_of_class = None  # reference class -> op name, built on the first call of op_of


def load(op, backend):
    """The implementation of ``op`` in ``backend`` (a class, or the SGD update function)."""
    key = (op, backend)
    if key not in _loaded:
        module, _, name = TABLE[op][backend].partition(":")
        _loaded[key] = getattr(importlib.import_module(module), name)
    return _loaded[key]


def op_of(cls):
    """The op whose reference class is ``cls`` itself, or None (ops with one implementation, and
    subclasses: they may change what the kernels compute). By identity, not by name, so a reference
    class defined in one module and re-exported where ``TABLE`` points still dispatches."""
    global _op_of_class
    if _op_of_class is None:
        _op_of_class = {load(op, "reference"): op for op in TABLE if isinstance(load(op, "reference"), type)}
    return _op_of_class.get(cls)


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
            if params and any(name in params for name in REFERENCE_ONLY.get(op, ())):
                break
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
    impl = load(op, backend)
    options = _options_of.get(impl)
    if options is None:
        names = inspect.signature(impl).parameters
        options = _options_of[impl] = tuple(name for name in OPTIONS.get(backend, ()) if name in names)
    return backend, impl(**{name: getattr(config, name) for name in options}) if options else impl()


def function(op, *arrays, **params):
    """(backend name, function) for a plain function such as the SGD update."""
    backend = backend_for(op, arrays, params)
    return backend, load(op, backend)


__all__ = ["BACKENDS", "HOMES", "OPS", "TABLE", "backend_for", "function", "load", "op_of", "select"]
