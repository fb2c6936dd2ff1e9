"""Keep freed memory in the process instead of handing it back to the OS after every step.

A training step allocates the same large arrays (activations, gradients) every time and frees
them by the end of the step. glibc serves blocks above M_MMAP_THRESHOLD (at most 32 MB) with
mmap and returns them to the kernel on free, so every step page-faults its activations in
again: ~650 MB of fresh pages per AlexNet step at batch 32, several GB at 128. On a virtual
machine that reclaims guest memory those faults are slow and erratic (a step at batch 32 took
1.1 to 2.5 s; with this setting 1.15 to 1.5 s).

``retain_freed_memory(True)`` tells glibc never to use mmap for allocations and never to trim the
heap, so freed activations are reused by the next step's allocations of the same sizes. The
process's resident memory then stays at its peak (which is what a training run reaches every
step anyway). It is process-wide, so nothing here runs at import: ``mt.config`` holds the
setting (MINITORCH_ALEX_RETAIN_MEMORY=0 turns it off) and training entry points apply it
(``Trainer.fit``, ``benchmarks/bench_cpu.py``). ``retain_freed_memory(False)`` puts glibc's
defaults back. On other C libraries (macOS, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024  # glibc's defaults (malloc/malloc.c)
_DEFAULT_MMAP_MAX = 65536
_mallopt = None
_retained = False


def _libc_mallopt():
    global _mallopt
    if _mallopt is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc
            mallopt = False
        else:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _mallopt = mallopt
    return _mallopt


def retain_freed_memory(enabled: bool = True) -> bool:
    """Keep freed memory in the process (``enabled``) or restore glibc's defaults; returns True
    when freed memory is being kept after the call."""
    global _retained
    mallopt = _libc_mallopt()
    if not mallopt or enabled == _retained:
        return _retained
    if enabled:
        _retained = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    else:
        mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
        mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        _retained = False
    return _retained


def retaining() -> bool:
    """Whether ``retain_freed_memory(True)`` is in effect."""
    return _retained
