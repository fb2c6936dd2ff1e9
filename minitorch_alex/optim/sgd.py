"""Stochastic gradient descent with momentum and weight decay, in the paper's form (section 5):

    v <- momentum * v - weight_decay * lr * w - lr * grad
    w <- w + v

This differs from PyTorch's SGD (v <- m v + grad + wd w; w <- w - lr v) only when the learning
rate changes: here the velocity keeps the steps taken at the old rate.

``sgd_momentum_update_`` below is the reference: three NumPy statements, five passes. The
'numba' and 'cuda' backends (``minitorch_alex.dispatch``) have it as one fused pass that reads
w, v and g once and writes w and v once (``kernels/cpu/sgd.py``; ``kernels/cuda/sgd.cu`` for
float32/float64 CuPy parameters, the masters in mixed precision). Velocities are allocated once
and reused.

Parameter groups, ``zero_grad`` and ``state_dict`` are ``Optimizer``'s (optimizer.py).
"""
from __future__ import annotations

from .. import dispatch
from .optimizer import Optimizer


def sgd_momentum_update_(w, v, g, momentum, weight_decay, lr):
    """v <- momentum * v - (weight_decay * lr) * w - lr * g;  w <- w + v, both in place."""
    v *= momentum
    v -= (weight_decay * lr) * w
    v -= lr * g
    w += v


class SGD(Optimizer):
    """The paper's SGD (module doc) with parameter groups (``Optimizer``).

    Defaults are PyTorch's (momentum 0, no weight decay): ``SGD(params, lr=0.1)`` is plain SGD.
    The paper's values are passed explicitly: ``SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)``.
    A group with ``lr`` 0 is frozen: not touched at all (no update, no decay, its velocity stays 0).
    """

    state_names = ("velocity",)

    def __init__(self, params, lr=1e-3, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def check_group(self, group):
        lr, m, wd = group["lr"], group["momentum"], group["weight_decay"]
        if not (lr >= 0 and 0 <= m < 1 and wd >= 0):
            raise ValueError(f"SGD: expected lr >= 0, 0 <= momentum < 1, weight_decay >= 0; "
                             f"got lr={lr}, momentum={m}, weight_decay={wd}")

    def update(self, p, g, state, group):
        if group["lr"] == 0:
            return
        v = state["velocity"]
        _, update = dispatch.function("sgd_momentum_update_", p.data, v, g)
        update(p.data, v, g, group["momentum"], group["weight_decay"], group["lr"])

    def state_dict(self):
        """As ``Optimizer.state_dict``, with zeros for velocities not made yet (checkpoints hold one
        velocity per parameter)."""
        state = super().state_dict()
        state["state"]["velocity"] = [v if v is not None else _on(p, lambda: p.xp.zeros_like(p.data))
                                      for v, p in zip(state["state"]["velocity"], self.params)]
        return state


def _on(p, make):
    """``make()`` run on the device of parameter p (CuPy allocates on the current device)."""
    with p.device.context():
        return make()
