"""Deprecated: the old backend switch, kept as a thin layer over ``mt.config`` and
``minitorch_alex.dispatch`` until its last callers move (the notebooks, the GPU tests and
benchmarks). New code uses ``mt.config`` (see ``minitorch_alex/config.py``).

The old names map onto the new ones: 'fast' is 'auto' (numba for NumPy float32/float64
arrays, the CUDA kernels for CuPy arrays), 'reference' is 'reference'. ``get_backend`` answers
in the old names ('fast' for 'auto', 'numba' and 'cuda').
"""
from __future__ import annotations

import contextlib

from . import dispatch
from .config import config, numba_available

BACKENDS = ("reference", "fast")
ENV_VAR = "MINITORCH_ALEX_BACKEND"


def fast_available() -> bool:
    return numba_available()


def _new_name(name):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: expected one of {BACKENDS}")
    if name == "fast" and not numba_available():
        raise RuntimeError("the 'fast' backend needs numba and the kernels package (pip install -e . installs both)")
    return "auto" if name == "fast" else name


def get_backend() -> str:
    """'reference' or 'fast' (any other setting of ``mt.config.backend``)."""
    return "reference" if config.backend == "reference" else "fast"


def set_backend(name: str) -> str:
    """Set the process-wide backend ('reference' or 'fast'); returns the previous one (old name)."""
    previous = get_backend()
    config.set(backend=_new_name(name))
    return previous


@contextlib.contextmanager
def use_backend(name: str):
    """``mt.config.using(backend=...)`` under the old names (per thread, as that is)."""
    with config.using(backend=_new_name(name)):
        yield


def use_fast(*arrays) -> bool:
    """Would the numba kernels take these arrays now?"""
    return dispatch.backend_for("ReLU", arrays) == "numba"


def use_cuda(*arrays) -> bool:
    """Would the CUDA kernels take these arrays now?"""
    return dispatch.backend_for("ReLU", arrays) == "cuda"


def cpu_kernels():
    """The ``kernels.cpu`` module (imported, and numba with it, on first call)."""
    from kernels import cpu

    return cpu


def cuda_kernels():
    """The ``kernels.cuda`` module (its kernels are compiled by CuPy on first launch)."""
    from kernels import cuda

    return cuda


def tf32_enabled() -> bool:
    return config.tf32


def set_tf32(enabled: bool) -> bool:
    """Process-wide: ``mt.config.set(tf32=...)`` and CuPy's compute type for float32 matmuls
    (``cupy._core._routines_linalg.set_compute_type``, the switch of ``CUPY_TF32=1``), so plain
    CuPy GEMMs follow too. Needs CuPy and a GPU; returns the previous setting."""
    from .device import _import_cupy

    cupy = _import_cupy()  # raises a clear error without CuPy or a device
    from cupy._core import _routines_linalg as linalg  # noqa: PLC0415

    compute = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
    linalg.set_compute_type(cupy.float32, compute)
    return config.set(tf32=bool(enabled))["tf32"]
