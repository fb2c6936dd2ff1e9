"""Launch helpers shared by the per-op wrappers of ``kernels.cuda``: the array module, the kernel
lookup, the device an array lives on, the grid, the size checks and the GEMM.

Everything is looked up through the package at call time (``kernels.cuda.cupy``,
``kernels.cuda.function``, ``kernels.cuda.set_tf32``) so that ``tests/test_cuda_emulated.py`` can
swap NumPy in for CuPy and host builds of the kernels in for the RawKernels.
"""
from __future__ import annotations

import contextlib
import sys

import numpy as np

PACKAGE = __package__  # the name this package was imported under (minitorch_alex_kernels.cuda)
BLOCK = 256  # threads per block: enough warps to hide memory latency on every kernel here
MAX_BLOCKS = 1 << 20  # grid-stride loops (64-bit indices, common.cuh) cover the rest
MAX_GRID_Y = 65535
INT_MAX = 2**31 - 1


def _package():
    return sys.modules[PACKAGE]


def cupy():
    """The array module (cupy; the emulation test swaps in numpy through the package)."""
    return _package().cupy()


def function(source_name, kernel, dtype):
    """The package's cached kernel lookup."""
    return _package().function(source_name, kernel, dtype)


def on(array):
    """The device context of a CuPy array (launches and allocations go to its GPU)."""
    device = getattr(array, "device", None)
    return device if hasattr(device, "__enter__") else contextlib.nullcontext()


def i32(*values):
    """Kernel int arguments: shape dimensions and per-row counts, which the kernels keep in 32-bit
    ints (element totals and offsets are 64-bit in the kernels). Raises if one does not fit."""
    for v in values:
        if not 0 <= v <= INT_MAX:
            raise ValueError(f"CUDA kernels take dimensions as 32-bit ints: expected 0 <= value <= {INT_MAX}, "
                             f"got {v} (split the batch)")
    return [np.int32(v) for v in values]


def i64(*values):
    """Kernel element-count arguments (``long long`` in the kernels)."""
    return [np.int64(v) for v in values]


def blocks(total):
    return max(1, min((int(total) + BLOCK - 1) // BLOCK, MAX_BLOCKS))


def launch(kern, total, args, grid_y=1):
    kern((blocks(total), grid_y), (BLOCK,), tuple(args))


def out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def needs(impl, count):
    """``impl.needs_input_grad`` padded to ``count`` entries (all True when the engine set none)."""
    flags = tuple(getattr(impl, "needs_input_grad", ()) or ())
    return flags + (True,) * (count - len(flags)) if len(flags) < count else flags[:count]


def gemm(a, b, out, tf32=None):
    """out = a @ b for 2-D a, b into the preallocated C-contiguous ``out`` of their dtype.

    This is CuPy's 2-D path (``matmul`` -> ``dot`` -> ``tensordot_core``): one cublasGemmEx with
    the compute type of ``set_compute_type`` (so TF32 reaches it), 16-bit inputs kept 16-bit
    (float32 accumulation), and a transposed operand passed as a transposed GEMM, not copied.
    The 3-D batched path upcasts float16, ignores the compute type and has no bfloat16.
    ``tf32``: None leaves CuPy's float32 compute type alone; True/False sets it first.
    """
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2:
        raise ValueError(f"gemm: expected 2-D operands, got {a.ndim}-D, {b.ndim}-D -> {out.ndim}-D")
    if not (a.dtype == b.dtype == out.dtype) or not out.flags.c_contiguous:
        raise ValueError(f"gemm: expected one dtype and a C-contiguous out, got {a.dtype}, {b.dtype} -> {out.dtype}")
    if tf32 is not None and out.dtype == np.float32:
        _package().set_tf32(bool(tf32))
    return cupy().matmul(a, b, out=out)


def sum_rows(gy, axes):
    """Bias gradient: gy summed over ``axes``, accumulated in float32 for 16-bit gradients."""
    acc = np.float32 if gy.dtype.itemsize < 4 else gy.dtype
    return gy.sum(axis=axes, dtype=acc).astype(gy.dtype, copy=False)  # no copy when acc is gy's dtype


class GemmLayer:
    """What the convolution and linear classes share: the ``tf32`` option, the optional fused
    ReLU (whose backward pass masks gy with the saved output) and one gradient per array input
    (2 without a bias, 3 with one)."""

    needs_input_grad = ()
    relu = False

    def __init__(self, tf32=None):
        self.tf32 = tf32

    def _save(self, y, bias, **state):
        """Keep ``state`` for the backward pass, unless no input needs a gradient (no_grad)."""
        self.count = 2 if bias is None else 3
        if any(needs(self, self.count)):
            self.__dict__.update(state)
            if self.relu:
                self.y = y

    def _grad_in(self, gy):
        """(gy through the fused ReLU, need x, need weight, need bias)."""
        if self.relu:
            from .activation import relu_backward  # noqa: PLC0415 (the sibling module imports this one)

            gy = relu_backward(self.y, gy)
        need = needs(self, self.count)
        return gy, need[0], need[1], self.count == 3 and need[2]

    def _out(self, gx, gw, gb):
        return (gx, gw) if self.count == 2 else (gx, gw, gb)
