"""The host emulation of the CUDA kernels, as fixtures: each ``kernels/cuda/*.cu`` compiled by nvcc
with ``-DMT_HOST_EMULATION`` (see ``common.cuh``), which turns every kernel into a plain host
function whose "threads" run one after the other; ``emulated`` is ``minitorch_alex_kernels.cuda`` with NumPy as
its array module and those builds as its kernels (NumPy stands in for CuPy, ctypes for the launch).

Used by tests/kernels/cuda/test_cuda_emulated.py and tests/benchmarks/test_gpu_check.py (the
fixtures are imported into tests/conftest.py). Needs nvcc on the PATH (``needs.needs_nvcc``).
"""
import ctypes
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import minitorch_alex_kernels.cuda as kc

NVCC = shutil.which("nvcc")
# a kernel's host build against the float64 reference
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-5),
       np.float16: dict(rtol=2e-2, atol=2e-2)}


def close(actual, expected, dtype):
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual.astype(np.float64), np.asarray(expected, np.float64), **TOL[dtype])


@pytest.fixture(scope="session")
def libraries(tmp_path_factory):
    """name -> ctypes CDLL of the host-emulated build of ``name.cu`` (built once per process)."""
    tmp = tmp_path_factory.mktemp("emulated")

    def build(name):
        src, lib = tmp / f"{name}.cu", tmp / f"{name}.so"
        src.write_text(kc.source(name))
        proc = subprocess.run([NVCC, "-DMT_HOST_EMULATION", "-shared", "-Xcompiler", "-fPIC", "-O1", *kc.OPTIONS,
                               "-o", str(lib), str(src)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return name, ctypes.CDLL(str(lib))

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(pool.map(build, kc.SOURCES))


def signature(source, kernel):
    """The C parameter kinds of ``kernel`` in ``source.cu``: 'ptr', 'int', 'long long', 'double'
    (read from its INSTANTIATE macro, the entry points CuPy launches)."""
    text = kc.source(source).replace("\\\n", " ")
    match = re.search(r"KERNEL void " + kernel + r"_##S\(([^)]*)\)", text)
    assert match, f"{kernel} not found in {source}.cu"
    kinds = []
    for param in match.group(1).split(","):
        param = " ".join(param.split())
        kinds.append("ptr" if "*" in param else "long long" if param.startswith("long long") else param.split()[0])
    return kinds


_KIND = {np.int32: "int", np.int64: "long long", np.float64: "double"}


class _HostKernel:
    """Called like a CuPy RawKernel, ``kernel(grid, block, args)``; runs the host build. The
    arguments must match the kernel's C parameters one for one (CuPy passes a NumPy scalar by its
    own size: an np.int64 for an ``int`` parameter would shift every later argument on a GPU).
    ``library``: a kernel computing in float32 (the f32, f16 and bf16 builds) runs with subnormals
    flushed to zero, as CuPy's -ftz=true build does on a GPU (common.cuh)."""

    def __init__(self, fn, kinds=None, library=None):
        self.fn, self.kinds, self.library = fn, kinds, library

    def __call__(self, grid, block, args):
        if self.kinds is not None:
            given = ["ptr" if isinstance(a, np.ndarray) else _KIND.get(type(a), type(a).__name__) for a in args]
            assert given == self.kinds, f"arguments {given} do not match the kernel's parameters {self.kinds}"
        converted = []
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous, "kernels read arrays as flat C-ordered buffers"
                converted.append(ctypes.c_void_p(a.ctypes.data))
            elif isinstance(a, np.int32):
                converted.append(ctypes.c_int(int(a)))
            elif isinstance(a, np.int64):
                converted.append(ctypes.c_longlong(int(a)))
            elif isinstance(a, np.float64):
                converted.append(ctypes.c_double(float(a)))
            else:
                raise TypeError(f"a kernel argument must be an array, np.int32, np.int64 or np.float64 (as CuPy needs), got {type(a)}")
        if self.library is None:
            self.fn(*converted)
            return
        previous = self.library.mt_emulation_flush_subnormals(1)
        try:
            self.fn(*converted)
        finally:
            self.library.mt_emulation_restore_csr(previous)


def _csr_functions(library):
    library.mt_emulation_flush_subnormals.restype = ctypes.c_uint
    library.mt_emulation_flush_subnormals.argtypes = [ctypes.c_uint]
    library.mt_emulation_restore_csr.argtypes = [ctypes.c_uint]
    return library


@pytest.fixture(scope="module")
def emulated(libraries):
    """minitorch_alex_kernels.cuda with NumPy as its array module and the host builds as its kernels (for one
    module: the patches are undone after it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kc.loader, "cupy", lambda: np)
        mp.setattr(kc.loader, "set_tf32", lambda enabled: None)  # CuPy's compute type: nothing to set on NumPy
        mp.setattr(kc.loader, "function", lambda src, kernel, dtype: _HostKernel(
            getattr(libraries[src], f"{kernel}_{kc.suffix(dtype)}"), signature(src, kernel),
            library=None if np.dtype(dtype) == np.float64 else _csr_functions(libraries[src])))
        yield kc
