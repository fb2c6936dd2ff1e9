"""Adam and AdamW, as PyTorch defines them (``torch.optim.Adam``/``AdamW``: the same defaults,
bias correction and update order).

For each parameter w with gradient g, at step t (1, 2, ...):

    g <- g + weight_decay * w                  (Adam: L2 in the gradient)
    w <- w - lr * weight_decay * w             (AdamW instead: decoupled decay, Loshchilov & Hutter)
    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g^2
    v_max <- max(v_max, v)                     (amsgrad only; then v_max replaces v below)
    w <- w - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""
from __future__ import annotations

import math

from .optimizer import Optimizer


class Adam(Optimizer):
    state_names = ("exp_avg", "exp_avg_sq")
    decoupled = False  # AdamW: True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        if amsgrad:  # the largest second moment so far, per entry
            self.state_names = self.state_names + ("max_exp_avg_sq",)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def check_group(self, group):
        b1, b2 = group["betas"]
        if not (group["lr"] >= 0 and 0 <= b1 < 1 and 0 <= b2 < 1 and group["eps"] >= 0 and group["weight_decay"] >= 0):
            raise ValueError(f"{type(self).__name__}: expected lr >= 0, 0 <= betas < 1, eps >= 0, weight_decay >= 0; "
                             f"got lr={group['lr']}, betas={group['betas']}, eps={group['eps']}, "
                             f"weight_decay={group['weight_decay']}")
        if bool(group["amsgrad"]) != ("max_exp_avg_sq" in self.state_names):
            raise ValueError(f"{type(self).__name__}: amsgrad must be the same in every group")
        group["betas"] = (float(b1), float(b2))

    def extra_state_names(self):
        return ("step",)

    def init_state(self, p):
        return dict(super().init_state(p), step=0)

    def update(self, p, g, state, group):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        w = p.data
        if wd and self.decoupled:
            w *= 1 - lr * wd
        elif wd:
            g = g + wd * w
        state["step"] = t = state["step"] + 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        if "max_exp_avg_sq" in state:
            p.xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = v ** 0.5
        denom /= math.sqrt(1 - b2 ** t)
        denom += eps
        w -= (lr / (1 - b1 ** t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's default weight_decay=0.01)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


__all__ = ["Adam", "AdamW"]
