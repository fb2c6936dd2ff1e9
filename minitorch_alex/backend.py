"""Which implementation runs the hot ops on the CPU: the readable NumPy reference or the fast
numba kernels of ``kernels.cpu``.

    import minitorch_alex as mt

    mt.backend.get_backend()              # 'fast' when numba is installed, else 'reference'
    mt.backend.set_backend("reference")   # every op from now on runs its NumPy reference
    with mt.backend.use_backend("fast"):  # for a block only
        ...

The environment variable ``MINITORCH_ALEX_BACKEND=reference|fast`` sets the starting value.

* ``reference``: the code in ``minitorch_alex/ops`` that the course reads, and that is checked
  against finite differences and PyTorch. Runs on NumPy and CuPy.
* ``fast``: conv2d, max_pool2d, local_response_norm, relu, dropout, linear and the SGD update
  call numba kernels (im2col/col2im gathers, fused LRN, pool with argmax, fused SGD). Only
  NumPy float32/float64 arrays take this path; anything else (CuPy arrays on a GPU, integer
  arrays) falls back to the reference, so ``fast`` is always safe to leave on.

An op decides at forward time and remembers the decision, so its backward pass uses the same
implementation even if the backend is switched in between. The setting is process-wide (not
per thread).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings

import numpy as np

BACKENDS = ("reference", "fast")
ENV_VAR = "MINITORCH_ALEX_BACKEND"
_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_fast_available = None


def fast_available() -> bool:
    """True when numba and the ``kernels`` package can be imported (checked without importing
    numba, which takes a while; the kernels themselves are imported on first use)."""
    global _fast_available
    if _fast_available is None:
        _fast_available = all(importlib.util.find_spec(m) is not None for m in ("numba", "kernels"))
    return _fast_available


def _check(name):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: expected one of {BACKENDS}")
    if name == "fast" and not fast_available():
        raise RuntimeError("the 'fast' backend needs numba and the kernels package (pip install -e . installs both)")
    return name


def _initial():
    name = os.environ.get(ENV_VAR, "").strip().lower()
    if not name:
        return "fast" if fast_available() else "reference"
    if name not in BACKENDS:
        raise ValueError(f"{ENV_VAR}={name!r}: expected one of {BACKENDS}")
    if name == "fast" and not fast_available():
        warnings.warn(f"{ENV_VAR}=fast but numba is not installed; using the reference backend", stacklevel=2)
        return "reference"
    return name


_current = _initial()


def get_backend() -> str:
    """The backend new ops will use: 'reference' or 'fast'."""
    return _current


def set_backend(name: str) -> str:
    """Select 'reference' or 'fast' for every op run from now on; returns the previous one."""
    global _current
    previous, _current = _current, _check(name)
    return previous


@contextlib.contextmanager
def use_backend(name: str):
    """Run a block with the given backend, restoring the previous one afterwards."""
    previous = set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def use_fast(*arrays) -> bool:
    """Should an op on these arrays take the fast path? Only with the 'fast' backend, and only
    when every array is a NumPy float32/float64 array (never for CuPy arrays)."""
    if _current != "fast":
        return False
    return all(isinstance(a, np.ndarray) and a.dtype in _FAST_DTYPES for a in arrays if a is not None)


def cpu_kernels():
    """The ``kernels.cpu`` module (imported, and numba with it, on first call)."""
    from kernels import cpu

    return cpu
