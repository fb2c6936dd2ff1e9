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
  call numba kernels (im2col/col2im gathers, fused LRN, pool with argmax, fused SGD) for NumPy
  float32/float64 arrays, and the CUDA kernels of ``kernels/cuda`` (``cuda_kernels()``) for CuPy
  float16/bfloat16/float32/float64 arrays, with GEMMs in cuBLAS. Anything else (integer arrays,
  other dtypes) falls back to the reference, so ``fast`` is always safe to leave on.

TF32 (``set_tf32(True)``): float32 GEMMs on a GPU of compute capability 8.0 or later (A100,
H100) then use TF32 tensor cores: inputs rounded to a 10-bit mantissa, float32 accumulation,
several times the float32 throughput. It changes CuPy's compute type for float32 matmuls
(``cupy._core._routines_linalg.set_compute_type``, the same switch as ``CUPY_TF32=1``) and is
off by default, as in PyTorch since 1.12. CPU results never change.

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
_CUDA_DTYPES = ("float16", "bfloat16", "float32", "float64")  # the kernels of kernels/cuda

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


def use_cuda(*arrays) -> bool:
    """Should an op on these arrays call the CUDA kernels? Only with the 'fast' backend, and only
    when every array is a CuPy array of a dtype the kernels have (float16, bfloat16, float32,
    float64). CuPy is never imported here: a CuPy array exists only once it has been."""
    if _current != "fast":
        return False
    from .device import _cupy

    if _cupy is None:
        return False
    return all(isinstance(a, _cupy.ndarray) and a.dtype.name in _CUDA_DTYPES for a in arrays if a is not None)


def cuda_kernels():
    """The ``kernels.cuda`` module (its kernels are compiled by CuPy on first launch)."""
    from kernels import cuda

    return cuda


_tf32 = False


def tf32_enabled() -> bool:
    """Whether float32 GEMMs on the GPU may use TF32 tensor cores (``set_tf32``)."""
    return _tf32


def set_tf32(enabled: bool) -> bool:
    """Let float32 GEMMs on the GPU use TF32 tensor cores (True) or not (False, the default);
    returns the previous setting. Needs CuPy and a GPU (compute capability >= 8.0 for it to have
    an effect; CuPy raises on older GPUs). Process-wide, like CuPy's switch it sets."""
    global _tf32
    from .device import _import_cupy

    cupy = _import_cupy()  # raises a clear error without CuPy or a device
    from cupy._core import _routines_linalg as linalg  # noqa: PLC0415

    compute = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
    linalg.set_compute_type(cupy.float32, compute)
    previous, _tf32 = _tf32, bool(enabled)
    return previous
