"""Strict device mode: test support for the virtual CPU devices (``cpu:N``, ``device.py``).

Each thread has a current virtual device (``cpu:0`` unless inside ``Device("cpu:k").context()``,
whose context is ``CpuContext`` here). In strict mode (``strict_devices()``, used by the
two-device tests) every array of a ``cpu:k`` tensor is tagged with k (``StrictArray``), and any
operation on it (ufuncs, NumPy functions, copies, casts) or allocation through its ``xp``
(``STRICT_NUMPY``) while another device is current raises ``DeviceContextError``, as CuPy
requires on GPUs. Views and cross-device copies (``device.transfer``) are allowed anywhere. Off by
default: the tags cost a Python call per operation. This module imports nothing of the package.
"""
from __future__ import annotations

import contextlib
import threading
import types

import numpy as np

_local = threading.local()
active = False  # strict mode, for every thread (set_strict, strict_devices)


class DeviceContextError(RuntimeError):
    """An array of one virtual device was used while another was current (strict mode only)."""


def current_cpu_index() -> int:
    """The index k of this thread's current virtual device cpu:k (0 unless inside a context)."""
    index = getattr(_local, "cpu", None)
    return 0 if index is None else index


class CpuContext:
    """``Device("cpu:k").context()``: cpu:k is this thread's current virtual device inside."""

    __slots__ = ("index", "previous")

    def __init__(self, index):
        self.index = index

    def __enter__(self):
        self.previous = getattr(_local, "cpu", None)
        _local.cpu = self.index
        return self

    def __exit__(self, *exc):
        _local.cpu = self.previous
        return False


def set_strict(on: bool) -> bool:
    """Turn strict device checks on or off for every thread; returns the previous setting."""
    global active
    previous, active = active, bool(on)
    return previous


@contextlib.contextmanager
def strict_devices(enabled: bool = True):
    """Strict device checks inside a block (see the module docstring). The calling thread is
    checked from the start (its current device is cpu:0 until a context says otherwise); another
    thread only once it enters a device context: the worker threads that a kernel of
    ``kernels.cpu`` starts for one op run on behalf of that op, on its device."""
    previous, previous_cpu = set_strict(enabled), getattr(_local, "cpu", None)
    if enabled and previous_cpu is None:
        _local.cpu = 0
    try:
        yield
    finally:
        set_strict(previous)
        _local.cpu = previous_cpu


def _check(values):
    """Raise unless every strict array among ``values`` (one level of lists/tuples too) lives on
    the current virtual device."""
    current = getattr(_local, "cpu", None)
    if current is None:  # a thread that never chose a device (see strict_devices)
        return
    for v in values:
        items = v if isinstance(v, (list, tuple)) else (v,)
        for a in items:
            if isinstance(a, StrictArray) and a._mt_device != current:
                raise DeviceContextError(
                    f"an array of cpu:{a._mt_device} was used while cpu:{current} is current: run it inside "
                    f"Device('cpu:{a._mt_device}').context() (strict device mode, as CuPy requires on GPUs)")


def _tag(result, index=None):
    """Plain arrays in ``result`` become strict arrays of ``index`` (default: the current device)."""
    if isinstance(result, tuple):
        return tuple(_tag(r, index) for r in result)
    if isinstance(result, np.ndarray) and not isinstance(result, StrictArray):
        result = result.view(StrictArray)
        result._mt_device = current_cpu_index() if index is None else index
    return result


class StrictArray(np.ndarray):
    """A NumPy array of the virtual device cpu:``_mt_device`` (strict mode only). Operations
    check that the device is current; results belong to the current device; views keep the
    device of their base."""

    _mt_device = 0

    def __array_finalize__(self, obj):
        index = getattr(obj, "_mt_device", None)
        if index is None:
            self._mt_device = current_cpu_index()
            return
        if self.base is None:  # new memory (a copy or a cast) of a strict array: an operation on it
            _check((obj,))
            index = current_cpu_index()
        self._mt_device = index

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _check(inputs + (out or ()))
        inputs = tuple(a.view(np.ndarray) if isinstance(a, StrictArray) else a for a in inputs)
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, StrictArray) else o for o in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _tag(result)

    def __array_function__(self, func, types_, args, kwargs):
        _check(tuple(args) + tuple(kwargs.values()))
        return _tag(super().__array_function__(func, types_, args, kwargs))


class _StrictNumpy(types.ModuleType):
    """numpy as the ``xp`` of a virtual device in strict mode: each function checks its array
    arguments and its new arrays belong to the current device (CuPy allocates there too)."""

    def __getattr__(self, name):
        attr = getattr(np, name)
        if isinstance(attr, (type, types.ModuleType, np.ufunc)) or not callable(attr):
            return attr  # dtypes, classes, submodules; ufuncs check through StrictArray

        def call(*args, **kwargs):
            _check(tuple(args) + tuple(kwargs.values()))
            return _tag(attr(*args, **kwargs))

        return call


STRICT_NUMPY = _StrictNumpy("numpy_strict")


def place(array, device):
    """The array to hold in a tensor of ``device``: in strict mode a cpu array is tagged with the
    device (raising if it is already another virtual device's); otherwise the array itself."""
    if not active or device.type != "cpu" or not isinstance(array, np.ndarray):
        return array
    if isinstance(array, StrictArray):
        if array._mt_device != device.index:
            raise DeviceContextError(f"an array of cpu:{array._mt_device} cannot be a tensor of {device} "
                                     "without a copy: use .to(device)")
        return array
    return _tag(array, device.index)
