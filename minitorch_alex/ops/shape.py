"""Ops that move values around without arithmetic: reshape, transpose, indexing, concat,
split, dtype casts and copies between devices."""
from __future__ import annotations

from ..autograd import Function
from ..device import get_array_module, transfer


class Reshape(Function):
    def forward(self, x, shape):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}") from None

    def backward(self, g):
        return (g.reshape(self.shape),)


class Clone(Function):
    """A copy with its own memory; the gradient passes unchanged."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return (g,)


class Transpose(Function):
    """Permute axes (reverse them when ``axes`` is None); the gradient applies the inverse."""

    def forward(self, x, axes):
        if axes is not None and sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}")
        self.axes = axes
        return x.transpose(axes)

    def backward(self, g):
        if self.axes is None:
            return (g.transpose(),)
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a % len(self.axes)] = i
        return (g.transpose(inverse),)


def _is_basic_index(key):
    """True for ints, slices, None and Ellipsis: such an index never picks an element twice."""
    keys = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, slice)) or k is None or k is Ellipsis for k in keys)


class GetItem(Function):
    """x[key]; the gradient scatters back, adding where an advanced index repeats an entry."""

    def forward(self, x, key):
        self.shape, self.dtype, self.key = x.shape, x.dtype, key
        return x[key]

    def backward(self, g):
        xp = get_array_module(g)
        gx = xp.zeros(self.shape, dtype=self.dtype)
        if _is_basic_index(self.key):
            gx[self.key] = g
        else:
            xp.add.at(gx, self.key, g)
        return (gx,)


class Concat(Function):
    def forward(self, *xs, axis):
        ndim = xs[0].ndim
        for i, x in enumerate(xs[1:], start=1):
            others = [n for a, n in enumerate(x.shape) if a != axis % ndim]
            first = [n for a, n in enumerate(xs[0].shape) if a != axis % ndim]
            if x.ndim != ndim or others != first:
                raise ValueError(f"concat: input {i} has shape {x.shape}, incompatible with {xs[0].shape} along axis {axis}")
        self.sizes, self.axis = [x.shape[axis] for x in xs], axis
        return get_array_module(xs[0]).concatenate(xs, axis=axis)

    def backward(self, g):
        xp = get_array_module(g)
        bounds = list(_cumsum(self.sizes)[:-1])
        return tuple(xp.split(g, bounds, axis=self.axis))


class Split(Function):
    """Split into pieces of the given sizes along ``axis`` (several outputs)."""

    def forward(self, x, sizes, axis):
        if sum(sizes) != x.shape[axis]:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but axis {axis} of shape {x.shape} has {x.shape[axis]}")
        self.axis = axis
        bounds = list(_cumsum(sizes)[:-1])
        return tuple(get_array_module(x).split(x, bounds, axis=axis))

    def backward(self, *gs):
        return (get_array_module(gs[0]).concatenate(gs, axis=self.axis),)


def _cumsum(sizes):
    total, out = 0, []
    for s in sizes:
        total += s
        out.append(total)
    return out


class Cast(Function):
    same_dtype = False

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return (g.astype(self.dtype),)


class ToDevice(Function):
    """The one way across devices: a copy forward and a copy of the gradient back."""

    same_dtype = False

    def forward(self, x, src, dst):
        self.src, self.dst = src, dst
        return transfer(x, src, dst)

    def backward(self, g):
        return (transfer(g, self.dst, self.src),)

    def output_device(self, input_device):
        return self.dst


def concat(tensors, axis=0):
    """Join tensors along an existing axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: expected at least one tensor")
    return Concat.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    """Join tensors of one shape along a new axis (each reshaped with a 1 there, then concatenated)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: expected tensors of one shape, got {sorted(shapes)}")
    ndim = tensors[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"stack: axis {axis} is out of range for {ndim} dimensions")
    return concat([t.unsqueeze(axis % ndim) for t in tensors], axis=axis % ndim)


def split(x, split_size_or_sections, axis=0):
    """Split like PyTorch: an int gives pieces of that size (the last may be smaller), a list
    gives the sizes of the pieces."""
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: the piece size must be positive, got {step}")
        sizes = [min(step, n - i) for i in range(0, n, step)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
    return list(Split.apply(x, sizes=sizes, axis=axis))


def flatten(x, start_dim=1, end_dim=-1):
    """Merge axes start_dim..end_dim into one (default: keep the batch axis)."""
    nd = x.ndim
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {x.shape}")
    size = 1
    for n in x.shape[s : e + 1]:
        size *= n
    return x.reshape(x.shape[:s] + (size,) + x.shape[e + 1 :])
