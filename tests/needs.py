"""Skip marks for what a test needs beyond the CPU install: each says what is missing.

    from needs import needs_numba, needs_gpu, needs_nvcc

``needs_numba``: the numba backend (``mt.config.using(backend="numba")`` raises without numba,
and ``kernels.cpu`` imports it); ``needs_gpu``: CuPy and a CUDA device; ``needs_nvcc``: the
host emulation of the CUDA kernels; ``needs_mpi`` (``HAVE_MPI``): mpi4py and mpiexec."""
import importlib.util
import shutil

import pytest

from minitorch_alex.config import numba_available


def _gpu():
    try:
        import cupy
    except ImportError:
        return False
    try:
        return bool(cupy.cuda.is_available())
    except Exception:  # a driver problem reads as no GPU
        return False


needs_numba = pytest.mark.skipif(not numba_available(), reason="needs numba (pip install numba): the numba backend")
needs_gpu = pytest.mark.skipif(not _gpu(), reason="needs CuPy and a CUDA GPU")
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on the PATH")
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and shutil.which("mpiexec") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpi4py and mpiexec: pip install -e '.[dist]'")
