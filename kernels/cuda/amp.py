"""Mixed precision's unscale on the GPU (``elementwise.cu``): one kernel per gradient."""
from __future__ import annotations

import numpy as np

from . import _launch as L


def unscale(g, inv, found):
    """float32(g) * inv as a new float32 array of g's shape (g: C-contiguous, any float dtype);
    sets found[0] to 1 when a value is inf or NaN. ``found``: an int32 array of at least one
    element on g's device, shared by the gradients of a step and read once after them."""
    if found.dtype != np.int32 or found.size < 1:
        raise ValueError(f"unscale: expected an int32 flag array, got {found.dtype} of size {found.size}")
    cp = L.cupy()
    with L.on(g):
        g = cp.ascontiguousarray(g)
        out = cp.empty(g.shape, dtype=np.float32)
        L.launch(L.function("elementwise", "unscale", g.dtype), g.size, [g, out, *L.i64(g.size), np.float64(inv), found])
    return out
