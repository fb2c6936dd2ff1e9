"""What the numba (``cpu/``) and CUDA (``cuda/``) kernels share: plain Python, no NumPy, numba or
CuPy, so either side imports it without the other's dependencies."""
from __future__ import annotations


def conv_output_size(size, kernel, stride, padding):
    """Window positions along one axis: floor((size + 2*padding - kernel) / stride) + 1. The
    reference has the same function (``minitorch_alex.ops.common``): the package runs without the
    kernels, and the kernels never import the package."""
    return (size + 2 * padding - kernel) // stride + 1


def needs(impl, count):
    """Which of an op's ``count`` inputs need a gradient: ``impl.needs_input_grad``, which the
    engine sets before each forward, padded to ``count`` entries. The class default ``()`` (not
    told, e.g. a kernel called directly) means every input does: the op keeps what backward needs.
    Every kernel class saves state only when ``any(needs(self, count))``: when no graph is recorded
    the forward pass keeps nothing."""
    flags = tuple(getattr(impl, "needs_input_grad", ()) or ())
    return flags + (True,) * (count - len(flags)) if len(flags) < count else flags[:count]
