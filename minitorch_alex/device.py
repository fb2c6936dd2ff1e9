"""Devices: where a tensor's array lives, and which array module (NumPy or CuPy) runs its ops.

A device is named like PyTorch's: ``"cpu"`` (same as ``"cpu:0"``), ``"cpu:1"``, ... and
``"cuda:0"``, ``"cuda:1"``, ... . The ``cpu:N`` devices are *virtual*: NumPy arrays tagged with
an index, so a model split over two devices (the paper's two towers) can be built, tested and
checked for accidental cross-device traffic on a machine without GPUs. ``cuda:N`` devices hold
CuPy arrays; CuPy is imported only when such a device is first asked for.

Ops never import numpy directly for their arithmetic: they ask the device (or the array) for its
array module ``xp`` and call ``xp.matmul``, ``xp.exp``, ... so the same code runs on both.

The current device. As in CuPy, each thread has a current device, set by ``Device.context()``
(for ``cuda:N``, CuPy's own ``cupy.cuda.Device(N)``; for ``cpu:N``, a thread-local index,
``cpu:0`` by default). CuPy launches every kernel and makes every allocation on the current
device, so the framework must enter a tensor's device before touching its array. On the virtual
CPU devices that rule is checked only in strict mode, which the two-device tests turn on
(``strict_mode.py``; its names are importable from here too).
"""
from __future__ import annotations

import numpy as np

from . import strict_mode
from .strict_mode import (  # noqa: F401  (the two-device tests import them from here)
    STRICT_NUMPY,
    CpuContext,
    DeviceContextError,
    StrictArray,
    current_cpu_index,
    place,
    set_strict,
    strict_devices,
)

_cupy = None  # the cupy module once imported successfully
_device_count = None


def _import_cupy():
    """Import CuPy lazily; raise a clear error saying why CUDA cannot be used."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy  # noqa: PLC0415 (optional dependency, imported on first use)
    except ImportError as exc:
        raise RuntimeError(
            "a 'cuda' device was requested but CuPy is not installed; "
            "install it with `pip install -e \".[gpu]\"` (or cupy-cuda12x) on a machine with an NVIDIA GPU"
        ) from exc
    try:
        available = cupy.cuda.is_available()
    except Exception:  # CUDA driver missing or broken
        available = False
    if not available:
        raise RuntimeError("a 'cuda' device was requested but CuPy finds no usable CUDA device on this machine "
                           "(no NVIDIA GPU, or no working driver); use 'cpu' instead")
    _cupy = cupy
    return cupy


def cuda_device_count() -> int:
    """Number of CUDA devices CuPy sees (raises the clear errors of ``_import_cupy`` if none)."""
    global _device_count
    cupy = _import_cupy()
    if _device_count is None:
        _device_count = cupy.cuda.runtime.getDeviceCount()
    return _device_count


def _check_cuda_index(index: int):
    count = cuda_device_count()
    if index >= count:
        raise RuntimeError(f"device 'cuda:{index}' was requested but this machine has {count} CUDA device(s): "
                           f"cuda:0 ... cuda:{count - 1}")
    return _cupy


class Device:
    """A device name parsed into ``type`` ('cpu' or 'cuda') and ``index`` (int >= 0)."""

    __slots__ = ("type", "index")

    def __init__(self, spec: str | Device = "cpu"):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string such as 'cpu', 'cpu:1' or 'cuda:0', got {type(spec).__name__}")
        name, _, idx = spec.strip().lower().partition(":")
        if name not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cpu:N' or 'cuda:N'")
        if idx == "":
            index = 0
        elif idx.isdigit():
            index = int(idx)
        else:
            raise ValueError(f"bad device index in {spec!r}: expected a non-negative integer after ':'")
        self.type, self.index = name, index

    @property
    def xp(self):
        """The array module of this device: numpy for cpu (a checking stand-in in strict mode),
        cupy for cuda."""
        if self.type == "cpu":
            return STRICT_NUMPY if strict_mode.active else np
        return _check_cuda_index(self.index)

    def context(self):
        """A context manager that makes this device the current one of this thread: CuPy's
        current device for cuda (kernels and allocations go there), the virtual current device
        for cpu (checked in strict mode)."""
        if self.type == "cpu":
            return CpuContext(self.index)
        return _check_cuda_index(self.index).cuda.Device(self.index)

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Device(other)
            except (ValueError, TypeError):
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device('{self}')"


CPU = Device("cpu")


def as_device(device) -> Device:
    """``None`` -> cpu; a string or Device -> Device."""
    return CPU if device is None else Device(device)


def get_array_module(array):
    """numpy for NumPy arrays (and anything else), cupy for CuPy arrays, without importing cupy."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy
    return STRICT_NUMPY if isinstance(array, StrictArray) else np


def device_of_array(array) -> Device:
    """The device an array lives on (``cpu:0`` for NumPy arrays, ``cpu:k`` for strict-mode ones)."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return Device(f"cuda:{array.device.id}")
    if isinstance(array, StrictArray):
        return Device(f"cpu:{array._mt_device}")
    return CPU


def enable_peer_access(a: Device, b: Device) -> bool:
    """Let two GPUs read each other's memory directly where the hardware allows it (cross-tower
    copies then skip the host). Returns True when peer access is on in both directions."""
    if a.type != "cuda" or b.type != "cuda" or a.index == b.index:
        return False
    cupy = _import_cupy()
    runtime = cupy.cuda.runtime
    if not (runtime.deviceCanAccessPeer(a.index, b.index) and runtime.deviceCanAccessPeer(b.index, a.index)):
        return False
    for src, dst in ((a, b), (b, a)):
        with cupy.cuda.Device(src.index):
            try:
                runtime.deviceEnablePeerAccess(dst.index)
            except runtime.CUDARuntimeError as exc:  # already enabled is fine
                if "PeerAccessAlreadyEnabled" not in str(exc):
                    raise
    return True


def transfer(array, src: Device, dst: Device, streams=None):
    """Copy ``array`` from device ``src`` to device ``dst`` (always a new array).

    GPU to GPU is ``cudaMemcpyPeerAsync`` on the destination's stream, ordered by events: it
    waits for the work already queued on the source's stream (which produced ``array``), and the
    source's stream waits for the copy before anything after it may reuse that memory. Neither
    the host nor either device waits as a whole (``cudaMemcpyPeer`` synchronises both devices).
    ``streams``: the (source, destination) CuPy streams to order against; None: each device's
    current stream.
    """
    if dst.type == "cpu":
        if src.type == "cuda":
            return _import_cupy().asnumpy(array)
        return np.array(array, copy=True)
    cupy = _check_cuda_index(dst.index)
    if src.type == "cuda" and src.index != dst.index:
        return _peer_copy(cupy, array, src, dst, streams)
    with cupy.cuda.Device(dst.index):
        return cupy.array(array, copy=True)


def _peer_copy(cupy, array, src, dst, streams):
    src_stream, dst_stream = streams if streams is not None else (None, None)
    with cupy.cuda.Device(src.index):
        array = cupy.ascontiguousarray(array)
        src_stream = src_stream or cupy.cuda.get_current_stream()
        ready = cupy.cuda.Event(disable_timing=True)
        ready.record(src_stream)  # array's producers are done once this is reached
    with cupy.cuda.Device(dst.index):
        dst_stream = dst_stream or cupy.cuda.get_current_stream()
        out = cupy.empty(array.shape, dtype=array.dtype)
        dst_stream.wait_event(ready)
        cupy.cuda.runtime.memcpyPeerAsync(out.data.ptr, dst.index, array.data.ptr, src.index, array.nbytes,
                                          dst_stream.ptr)
        copied = cupy.cuda.Event(disable_timing=True)
        copied.record(dst_stream)
    with cupy.cuda.Device(src.index):
        src_stream.wait_event(copied)  # later work on src (which may reuse array's memory) waits for the read
    return out


_pinned_in_flight = []  # (event, pinned buffer): kept alive until the copy out of it is done


def upload_async(array, device: Device):
    """A copy of the host ``array`` on GPU ``device``: staged in pinned memory and copied
    asynchronously on the device's current stream (the host does not wait for it). The pinned
    buffer is kept until an event after the copy has completed."""
    cupy = _check_cuda_index(device.index)
    array = np.ascontiguousarray(array)
    _pinned_in_flight[:] = [(e, buf) for e, buf in _pinned_in_flight if not e.done]
    with cupy.cuda.Device(device.index):
        stream = cupy.cuda.get_current_stream()
        buf = cupy.cuda.alloc_pinned_memory(max(array.nbytes, 1))
        staged = np.frombuffer(buf, dtype=array.dtype, count=array.size).reshape(array.shape)
        staged[...] = array
        out = cupy.empty(array.shape, dtype=array.dtype)
        out.set(staged, stream=stream)
        done = cupy.cuda.Event(disable_timing=True)
        done.record(stream)
        _pinned_in_flight.append((done, buf))
    return out


def tower_streams(devices):
    """One CuPy stream per distinct GPU among ``devices`` (None for cpu devices), in their order:
    each tower queues its kernels on its own device's stream, so the towers' work overlaps and
    only the cross-tower copies order them (by events). Towers that share a GPU share its stream,
    so a tower never reads the other's output before it is written. Blocking streams (not
    ``non_blocking``): work on the legacy default stream, which the backward pass uses, stays
    ordered with them."""
    made = {}
    out = []
    for d in devices:
        if d.type != "cuda":
            out.append(None)
            continue
        if d not in made:
            cupy = _check_cuda_index(d.index)
            with cupy.cuda.Device(d.index):
                made[d] = cupy.cuda.Stream(non_blocking=False)
        out.append(made[d])
    return tuple(out)
