"""The paper's SGD update on the GPU (``sgd.cu``), one pass per parameter."""
from __future__ import annotations

import numpy as np

from . import _launch as L


def sgd_momentum_update_(w, v, g, momentum, weight_decay, lr):
    """In place on C-contiguous w, v and g of one shape and dtype (float32/float64):
    v <- momentum * v - weight_decay * lr * w - lr * g;  w <- w + v."""
    if not (w.dtype == v.dtype == g.dtype and w.shape == v.shape == g.shape):
        raise ValueError(f"sgd_momentum_update_: expected w, v, g of one shape and dtype, got "
                         f"{w.shape}/{w.dtype}, {v.shape}/{v.dtype}, {g.shape}/{g.dtype}")
    with L.on(w):
        L.launch(L.function("sgd", "sgd_momentum", w.dtype), w.size,
                 [w, v, g, *L.i64(w.size), np.float64(momentum), np.float64(weight_decay * lr), np.float64(lr)])
