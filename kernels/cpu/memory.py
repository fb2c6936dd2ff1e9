"""Keep freed memory in the process instead of handing it back to the OS after every step.

A training step allocates the same large arrays (activations, gradients) every time and frees
them by the end of the step. glibc serves blocks above M_MMAP_THRESHOLD (at most 32 MB) with
mmap and returns them to the kernel on free, so every step page-faults its activations in
again: ~650 MB of fresh pages per AlexNet step at batch 32, several GB at 128. On a virtual
machine that reclaims guest memory those faults are slow and erratic (a step at batch 32 took
1.1 to 2.5 s; with this setting 1.15 to 1.5 s).

``retain_freed_memory()`` tells glibc never to use mmap for allocations and never to trim the
heap, so freed activations are reused by the next step's allocations of the same sizes. The
process's resident memory then stays at its peak (which is what a training run reaches every
step anyway). It is process-wide; set MINITORCH_ALEX_RETAIN_MEMORY=0 to leave malloc alone. On
other C libraries (macOS, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_done = None


def retain_freed_memory() -> bool:
    """Apply the malloc settings once; True when they are in effect."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("MINITORCH_ALEX_RETAIN_MEMORY", "1").strip() == "0":
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return _done
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _done
