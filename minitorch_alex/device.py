"""Devices: where a tensor's array lives, and which array module (NumPy or CuPy) runs its ops.

A device is named like PyTorch's: ``"cpu"`` (same as ``"cpu:0"``), ``"cpu:1"``, ... and
``"cuda:0"``, ``"cuda:1"``, ... . The ``cpu:N`` devices are *virtual*: NumPy arrays tagged with
an index, so a model split over two devices (the paper's two towers) can be built, tested and
checked for accidental cross-device traffic on a machine without GPUs. ``cuda:N`` devices hold
CuPy arrays; CuPy is imported only when such a device is first asked for.

Ops never import numpy directly for their arithmetic: they ask the device (or the array) for its
array module ``xp`` and call ``xp.matmul``, ``xp.exp``, ... so the same code runs on both.
"""
from __future__ import annotations

import contextlib

import numpy as np

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

    def __init__(self, spec: "str | Device" = "cpu"):
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
        """The array module of this device: numpy for cpu, cupy for cuda."""
        if self.type == "cpu":
            return np
        return _check_cuda_index(self.index)

    def context(self):
        """A context manager that makes this device CuPy's current device (kernels and
        allocations go there); does nothing for cpu devices."""
        if self.type == "cpu":
            return contextlib.nullcontext()
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
    return np


def device_of_array(array) -> Device:
    """The device an array lives on (``cpu:0`` for NumPy arrays)."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return Device(f"cuda:{array.device.id}")
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


def transfer(array, src: Device, dst: Device):
    """Copy ``array`` from device ``src`` to device ``dst`` (always a new array)."""
    if dst.type == "cpu":
        if src.type == "cuda":
            return _import_cupy().asnumpy(array)
        return np.array(array, copy=True)
    cupy = _check_cuda_index(dst.index)
    if src.type == "cuda" and src.index != dst.index:
        # GPU to GPU without the host: cudaMemcpyPeer is ordered after pending work on both devices
        with cupy.cuda.Device(src.index):
            array = cupy.ascontiguousarray(array)
        with cupy.cuda.Device(dst.index):
            out = cupy.empty(array.shape, dtype=array.dtype)
            cupy.cuda.runtime.memcpyPeer(out.data.ptr, dst.index, array.data.ptr, src.index, array.nbytes)
            return out
    with cupy.cuda.Device(dst.index):
        return cupy.array(array, copy=True)
