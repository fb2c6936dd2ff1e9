"""Scratch buffers reused across calls and training steps.

Fresh multi-megabyte NumPy arrays are mmap'ed by the C allocator and page-faulted (zeroed by the
kernel) on first touch, every step. The im2col chunk, the GEMM output rows and the like are
scratch: they die within one op. Keeping them here, one per (name, dtype) and per thread (so the
two towers of a split model never share one), makes every step after the first fault-free.
"""
from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def workspace(name, shape, dtype):
    """A C-contiguous scratch array of ``shape``: a view into a per-thread buffer that only grows.

    Its content is undefined; two live workspaces must have different names.
    """
    pool = _local.__dict__.setdefault("pool", {})
    size = 1
    for n in shape:
        size *= n
    key = (name, np.dtype(dtype).str)
    buf = pool.get(key)
    if buf is None or buf.size < size:
        buf = pool[key] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def clear_workspaces():
    """Release this thread's scratch buffers."""
    _local.__dict__.pop("pool", None)


def workspace_bytes():
    """Bytes held by this thread's scratch buffers."""
    return sum(b.nbytes for b in _local.__dict__.get("pool", {}).values())
