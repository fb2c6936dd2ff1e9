"""The loader of the CUDA kernels: reads each ``*.cu`` source beside this file, pastes
``common.cuh`` into it and builds it with ``cupy.RawModule`` on first use, and caches the built
modules and kernels; ``set_tf32`` applies CuPy's float32 GEMM compute type. The launch helpers
(``_launch.py``) call these functions through this module at call time, so tests replace them
here (``monkeypatch.setattr(loader, "cupy", ...)``): NumPy for CuPy, host builds for the kernels.

CuPy is imported on first use only: importing this module (and reading or assembling the
sources, which the CPU-only tests do) works without CuPy or a GPU.
"""
from __future__ import annotations

import os
import re

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = "common.cuh"
# the .cu files beside this one, without extension: a new op's source is found, not registered
SOURCES = tuple(sorted(f[:-3] for f in os.listdir(HERE) if f.endswith(".cu")))

# storage dtype name -> suffix of the kernel entry points (FOR_EACH_FLOAT in common.cuh)
SUFFIX = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16"}

# compile options shared by the loader and the nvcc compile test (tests/kernels/cuda/test_cuda_compile.py)
OPTIONS = ("--std=c++17",)

_modules: dict = {}
_kernels: dict = {}  # (source, kernel, dtype name) -> RawKernel
_cupy = None


def cupy():
    """The cupy module, imported on first use (the caller has checked that a device exists)."""
    global _cupy
    if _cupy is None:
        import cupy as cp  # noqa: PLC0415 (optional dependency)

        _cupy = cp
    return _cupy


def source(name: str) -> str:
    """The complete CUDA source of ``name.cu`` with ``common.cuh`` pasted in (no local includes
    remain, so NVRTC needs no include path for it)."""
    if name not in SOURCES:
        raise ValueError(f"unknown CUDA source {name!r}: expected one of {SOURCES}")
    with open(os.path.join(HERE, name + ".cu"), encoding="utf-8") as f:
        text = f.read()
    with open(os.path.join(HERE, HEADER), encoding="utf-8") as f:
        header = f.read().replace("#pragma once\n", "")
    assembled, count = re.subn(r'^#include "common\.cuh"\s*$', lambda _: header, text, flags=re.M)
    if count != 1:
        raise RuntimeError(f"{name}.cu must include \"{HEADER}\" exactly once, found {count}")
    return assembled


def kernel_names(name: str) -> list[str]:
    """The extern "C" entry points that ``name.cu`` defines, one per kernel and storage type
    (read from its INSTANTIATE macro and the types it is applied to)."""
    text = source(name)
    bases = re.findall(r'KERNEL void (\w+)_##S\(', text)
    if "FOR_EACH_FLOAT(INSTANTIATE)" in text:
        suffixes = list(SUFFIX.values())
    else:
        suffixes = re.findall(r"^INSTANTIATE\(\s*[\w ]+,\s*(\w+)\)", text, flags=re.M)
    return [f"{b}_{s}" for b in bases for s in suffixes]


def module(name: str):
    """The built ``cupy.RawModule`` of ``name.cu`` (compiled on first use, then cached)."""
    mod = _modules.get(name)
    if mod is None:
        mod = _modules[name] = cupy().RawModule(code=source(name), options=OPTIONS)
    return mod


def suffix(dtype) -> str:
    name = np.dtype(dtype).name
    if name not in SUFFIX:
        raise TypeError(f"no CUDA kernel for dtype {name}: expected one of {tuple(SUFFIX)}")
    return SUFFIX[name]


def function(source_name: str, kernel: str, dtype):
    """The ``RawKernel`` ``<kernel>_<suffix of dtype>`` from ``source_name.cu``, cached per
    (source, kernel, dtype): ``RawModule.get_function`` builds a new RawKernel on every call.
    One RawKernel serves every GPU (CuPy keeps its loaded function per device)."""
    key = (source_name, kernel, np.dtype(dtype).name)
    kern = _kernels.get(key)
    if kern is None:
        kern = _kernels[key] = module(source_name).get_function(f"{kernel}_{suffix(dtype)}")
    return kern


def set_tf32(enabled: bool) -> None:
    """CuPy's float32 GEMM compute type: TF32 tensor cores (True) or full float32 (False). The
    switch is ``mt.config.tf32``, handed to each op as ``tf32=`` (``minitorch_alex.dispatch``);
    this is how the GEMM wrapper of such an op applies it, before each GEMM: CuPy's setting is
    process-wide and other code (``CUPY_TF32``, a user's own call) may change it in between, and
    setting it is one assignment in CuPy's table."""
    from cupy._core import _routines_linalg as linalg  # noqa: PLC0415 (optional dependency)

    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT)
