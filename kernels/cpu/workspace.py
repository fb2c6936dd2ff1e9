"""Scratch buffers reused across calls and training steps.

Fresh multi-megabyte NumPy arrays are mmap'ed by the C allocator and page-faulted (zeroed by the
kernel) on first touch, every step. The im2col chunk, the GEMM output rows and the like are
scratch: they die within one op. Keeping them here, one per (name, dtype) and per thread (so the
two towers of a split model never share one), makes every step after the first fault-free.

A forward that no backward follows (evaluation) is not a training step: kept scratch would stay
resident beside every later layer's activations (~310 MB for AlexNet at batch 128, two threads'
Winograd buffers and conv2's spectra). ``transient()`` wraps such kernels: what they
had to make, in any thread, is dropped when they return, so the next layer reuses the memory.
"""
from __future__ import annotations

import contextlib
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
        if _transient["depth"]:
            _transient["made"].append((pool, key, buf))
    return buf[:size].reshape(shape)


# Process-wide, not per thread: the kernels' worker threads take scratch for the caller's call.
_transient = {"depth": 0, "made": []}
_transient_lock = threading.Lock()


@contextlib.contextmanager
def transient():
    """Scratch made inside (by any thread) is reused within the block and dropped at its end (at
    the end of the last, when blocks of several threads overlap); buffers that were already big
    enough are kept. Their memory goes back to malloc, not to the next call."""
    with _transient_lock:
        _transient["depth"] += 1
    made = []
    try:
        yield
    finally:
        with _transient_lock:
            _transient["depth"] -= 1
            if not _transient["depth"]:
                made, _transient["made"] = _transient["made"], []
        for pool, key, buf in made:
            if pool.get(key) is buf:  # not replaced since
                del pool[key]


def clear_workspaces():
    """Release this thread's scratch buffers."""
    _local.__dict__.pop("pool", None)


def workspace_bytes():
    """Bytes held by this thread's scratch buffers."""
    return sum(b.nbytes for b in _local.__dict__.get("pool", {}).values())
