"""Small helpers shared by the ops."""
from __future__ import annotations


def sum_to(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    The gradient of a broadcast is a sum: if ``b`` of shape (3, 1) was added to ``a`` of shape
    (2, 3, 4), each element of ``b`` was used 2 * 4 times.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def conv_output_size(size, kernel, stride, padding, dilation=1):
    """Number of window positions along one axis: floor((size + 2*padding - span) / stride) + 1,
    where a window spans ``dilation * (kernel - 1) + 1`` input entries (``kernel`` taps,
    ``dilation`` apart)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pair(value, name, op):
    """An int or a pair of ints -> a pair of ints (for kernel sizes, strides, paddings)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def check_window_fits(size, kernel, padding, op, dilation=(1, 1)):
    """Raise unless a (kh, kw) window (taps ``dilation`` apart) fits the (h, w) input padded by
    (ph, pw) on each side."""
    (h, w), (kh, kw) = size, kernel
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    sh, sw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if sh > hp or sw > wp:
        spans = f" spans {sh}x{sw} at dilation {dilation} and" if tuple(dilation) != (1, 1) else ""
        raise ValueError(f"{op}: kernel {kh}x{kw}{spans} is larger than the padded input {hp}x{wp} "
                         f"(input {h}x{w}, padding {padding})")


def check_rank(t, rank, layout, op):
    if t.ndim != rank:
        raise ValueError(f"{op}: expected input of rank {rank} {layout}, got shape {t.shape}")


def check_float(t, op, what="input"):
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point {what}, got dtype {t.dtype}")
