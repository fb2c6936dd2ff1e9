"""Which OpenBLAS kernels NumPy's GEMMs run, chosen before NumPy is imported.

OpenBLAS picks its kernels from the CPU model when it is loaded (``DYNAMIC_ARCH``), and falls
back to its AVX2 'Haswell' kernels on a model it does not know. The OpenBLAS 0.3.31 of NumPy's
wheels does not know AMD's family 26 (Zen 5), which has AVX-512: there it runs the Haswell
kernels, while ``OPENBLAS_CORETYPE=SkylakeX`` selects the AVX-512 ones. Measured on the 2-core
AMD EPYC (family 26) of benchmarks/RESULTS.md: sgemm 2048^3 at ~200 GFLOP/s with the Haswell
kernels against ~370 GFLOP/s with SkylakeX (alternating runs), and AlexNet's training step at
batch 128 about 10% faster.

Nothing here runs at import. A program calls :func:`choose_openblas_core` first thing, before
anything imports NumPy (``examples/train_imagenet.py`` and the benchmarks do); a value of
``OPENBLAS_CORETYPE`` already in the environment is left alone. This module imports neither
NumPy nor anything else that would load OpenBLAS.
"""
from __future__ import annotations

import os
import sys

AVX512 = ("avx512f", "avx512bw", "avx512dq", "avx512vl")  # what OpenBLAS's SkylakeX kernels use


def cpu_info(path="/proc/cpuinfo") -> dict:
    """vendor, name (the model name), family and model (ints) and flags (set) of the first CPU in
    ``path``; {} where unreadable."""
    info = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "vendor_id":
                    info["vendor"] = value
                elif key == "model name":
                    info["name"] = value
                elif key == "cpu family" and value.isdigit():
                    info["family"] = int(value)
                elif key == "model" and value.isdigit():
                    info["model"] = int(value)
                elif key == "flags":
                    info["flags"] = set(value.split())
                elif not line.strip() and info:  # the end of the first processor's block
                    break
    except OSError:
        return {}
    return info


def openblas_core_hint(info: dict) -> str | None:
    """The OPENBLAS_CORETYPE to ask for on the CPU ``info`` describes, or None to let OpenBLAS
    choose: 'SkylakeX' on AMD family 26 and later with AVX-512 (which OpenBLAS 0.3.31 would run
    with its Haswell kernels)."""
    if info.get("vendor") == "AuthenticAMD" and info.get("family", 0) >= 26 and set(AVX512) <= info.get("flags", set()):
        return "SkylakeX"
    return None


def choose_openblas_core(environ=None, info=None) -> str | None:
    """Set ``OPENBLAS_CORETYPE`` in ``environ`` (default ``os.environ``) to the hint for this CPU
    when it is not set and NumPy is not loaded yet; returns the value set, else None."""
    environ = os.environ if environ is None else environ
    if "OPENBLAS_CORETYPE" in environ or (environ is os.environ and "numpy" in sys.modules):
        return None
    hint = openblas_core_hint(cpu_info() if info is None else info)
    if hint is not None:
        environ["OPENBLAS_CORETYPE"] = hint
    return hint
