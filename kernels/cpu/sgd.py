"""The paper's SGD update, one pass over each parameter:

    v <- momentum * v - (weight_decay * lr) * w - lr * g
    w <- w + v

Each element of w, v and g is read once and w, v written once (the three-statement NumPy form
makes five passes and temporaries). Called once per parameter; each call splits the parameter's
elements among the threads (fc6's 37.7M weights dominate, so splitting per element balances
the threads where splitting per parameter would not).
"""
from __future__ import annotations

from ._jit import kernel
from .parallel import elementwise_ranges, run_parallel


@kernel
def _sgd_momentum(w, v, g, momentum, wd_lr, lr):
    for i in range(w.size):
        vi = momentum * v[i] - wd_lr * w[i] - lr * g[i]
        v[i] = vi
        w[i] = w[i] + vi


def sgd_momentum_update_(w, v, g, momentum, weight_decay, lr):
    """Update w and v in place (C-contiguous arrays of one shape and dtype); g is the gradient."""
    t = w.dtype.type
    w1, v1, g1 = w.reshape(-1), v.reshape(-1), g.reshape(-1)
    m, wd_lr, lr_ = t(momentum), t(weight_decay * lr), t(lr)
    run_parallel(lambda r: _sgd_momentum(w1[r[0]:r[1]], v1[r[0]:r[1]], g1[r[0]:r[1]], m, wd_lr, lr_),
                 elementwise_ranges(w.size))
