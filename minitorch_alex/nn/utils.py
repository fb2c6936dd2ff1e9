"""Gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` and ``clip_grad_value_``.

Both act in place on ``p.grad`` of the given parameters (those without a gradient are skipped) and
work across devices (the two towers): each device reduces its own gradients; only one number per
parameter crosses to the host.
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor


def _with_grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients by min(1, max_norm / (total + 1e-6)), where ``total`` is the
    ``norm_type``-norm of all gradients together (as if concatenated into one vector; ``inf``: the
    largest absolute entry). Returns ``total`` as a 0-d float64 Tensor on the CPU (before clipping).

    ``error_if_nonfinite``: raise instead of scaling when ``total`` is nan or inf (PyTorch's flag)."""
    norm_type = float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: expected max_norm >= 0, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: expected norm_type > 0 or inf, got {norm_type}")
    params = _with_grads(parameters)
    if not params:
        return Tensor(np.float64(0.0))
    norms = []
    for p in params:  # one reduction per gradient, on its device; a float each to the host
        g = p.grad.data
        with p.device.context():
            if math.isinf(norm_type):
                norms.append(float(abs(g).max()) if g.size else 0.0)
            elif norm_type == 2:  # a dot product: no copy (fc6's gradient is 151 MB in float32)
                flat = g.reshape(-1)
                norms.append(float(flat @ flat))
            else:
                norms.append(float((abs(g.astype(np.float64)) ** norm_type).sum()))
    total = max(norms) if math.isinf(norm_type) else math.fsum(norms) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type:g} of the gradients is "
                           f"{total}; set error_if_nonfinite=False to scale anyway")
    coef = max_norm / (total + 1e-6)
    if coef < 1:  # torch multiplies by the coefficient clamped to 1: a no-op above it
        for p in params:
            with p.device.context():
                p.grad.data *= p.grad.data.dtype.type(coef)
    return Tensor(np.float64(total))


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient entry to [-clip_value, clip_value], in place."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: expected clip_value >= 0, got {clip_value}")
    for p in _with_grads(parameters):
        with p.device.context():
            p.xp.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)


__all__ = ["clip_grad_norm_", "clip_grad_value_"]
