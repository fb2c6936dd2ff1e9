"""Softmax cross-entropy, fused: the gradient of mean(-log softmax(z)[target]) with respect to
the logits z is (softmax(z) - onehot(target)) / N."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..device import get_array_module
from .common import check_float


class CrossEntropy(Function):
    fresh_grads = True  # each input's gradient is a new array

    def forward(self, logits, target):
        xp = get_array_module(logits)
        n = logits.shape[0]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        rows = xp.arange(n)
        self.log_probs, self.target = log_probs, target
        return -log_probs[rows, target].mean()

    def backward(self, g):
        xp = get_array_module(g)
        n = self.target.shape[0]
        grad = xp.exp(self.log_probs)
        grad[xp.arange(n), self.target] -= 1
        return (grad * (g / n),)


def cross_entropy(logits, target):
    """Mean cross-entropy of ``logits`` (N, C) against integer class indices ``target`` (N,).

    ``target`` may be a Tensor, an array or a list; its values must lie in [0, C).
    """
    from ..tensor import Tensor

    op = "cross_entropy"
    check_float(logits, op, "logits")
    if logits.ndim != 2:
        raise ValueError(f"{op}: expected logits of rank 2 (N, C), got shape {logits.shape}")
    xp = logits.xp
    if isinstance(target, Tensor):
        if target.device != logits.device:
            raise RuntimeError(f"{op}: logits are on {logits.device} but target is on {target.device}")
        target = target.data
    # Host labels (a list, a NumPy array: what the trainer passes) are checked here, before they
    # go up: checking them on a GPU would read the device, which waits for the whole forward.
    # Labels already on the device are checked there, at the cost of that one read.
    on_host = not hasattr(target, "__cuda_array_interface__") and get_array_module(target) is np
    target = np.asarray(target) if on_host else target
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer class indices as target, got dtype {target.dtype}")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"{op}: expected target of shape ({logits.shape[0]},) for logits {logits.shape}, got {target.shape}")
    if target.size and (int(target.min()) < 0 or int(target.max()) >= logits.shape[1]):
        lo, hi = int(target.min()), int(target.max())
        raise ValueError(f"{op}: target values must lie in [0, {logits.shape[1]}), got values in [{lo}, {hi}]")
    with logits.device.context():  # one upload, straight to int64 (no copy when it already is)
        target = xp.asarray(target, dtype=np.int64)
    return CrossEntropy.apply(logits, target=target)
