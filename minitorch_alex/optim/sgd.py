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
"""
from __future__ import annotations

from .. import dispatch
from ..autograd import no_grad


def sgd_momentum_update_(w, v, g, momentum, weight_decay, lr):
    """v <- momentum * v - (weight_decay * lr) * w - lr * g;  w <- w + v, both in place."""
    v *= momentum
    v -= (weight_decay * lr) * w
    v -= lr * g
    w += v


def _on(p, make):
    """``make()`` run on the device of parameter p (CuPy allocates on the current device)."""
    with p.device.context():
        return make()


class SGD:
    def __init__(self, params, lr=0.01, momentum=0.9, weight_decay=5e-4):
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD: got an empty parameter list")
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"SGD: expected lr > 0, 0 <= momentum < 1, weight_decay >= 0; "
                             f"got lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = [None] * len(self.params)
        # per-parameter multiplier of lr (and so of the decay step): 0 freezes a parameter (no update,
        # no weight decay, its velocity stays 0), 10 makes a new classifier head learn faster
        self.lr_scale = [1.0] * len(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @no_grad()
    def step(self):
        """Update every parameter that has a gradient."""
        lr, m, wd = self.lr, self.momentum, self.weight_decay
        for i, p in enumerate(self.params):
            scale = self.lr_scale[i]
            if p.grad is None or scale == 0:
                continue
            with p.device.context():  # the velocity and the update live on the parameter's device
                self._update(i, p, lr * scale if scale != 1 else lr, m, wd)

    def _update(self, i, p, lr, m, wd):
        v = self.velocity[i]
        if v is None:
            v = self.velocity[i] = p.xp.zeros_like(p.data)
        _, update = dispatch.function("sgd_momentum_update_", p.data, v, p.grad.data)
        update(p.data, v, p.grad.data, m, wd, lr)

    def state_dict(self):
        """Hyper-parameters and velocities (arrays; zeros for parameters not yet updated)."""
        return {
            "lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
            "velocity": [v if v is not None else _on(p, lambda: p.xp.zeros_like(p.data))
                         for v, p in zip(self.velocity, self.params)],
        }

    def load_state_dict(self, state):
        vel = state["velocity"]
        if len(vel) != len(self.params):
            raise ValueError(f"SGD.load_state_dict: expected {len(self.params)} velocities, got {len(vel)}")
        for i, (v, p) in enumerate(zip(vel, self.params)):
            if tuple(v.shape) != p.shape:
                raise ValueError(f"SGD.load_state_dict: velocity {i} has shape {tuple(v.shape)}, expected {p.shape}")
        self.lr, self.momentum, self.weight_decay = float(state["lr"]), float(state["momentum"]), float(state["weight_decay"])
        self.velocity = [_on(p, lambda: p.xp.asarray(v, dtype=p.dtype).copy()) for v, p in zip(vel, self.params)]
