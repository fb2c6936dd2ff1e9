"""Losses. Softmax cross-entropy, fused: the gradient of mean(-log softmax(z)[target]) with respect
to the logits z is (softmax(z) - onehot(target)) / N; with PyTorch's options (class weights,
reductions, ignore_index, label smoothing) see ``CrossEntropy``. Also ``nll_loss`` and ``mse_loss``."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..device import get_array_module
from .common import check_float


class CrossEntropy(Function):
    """Softmax cross-entropy with PyTorch's options. Per sample i of class t_i (w: the class
    weights, 1 without; e: label_smoothing; C classes; ignored samples give 0):

        loss_i = (1 - e) * (-w[t_i] log p_i[t_i]) + (e / C) * sum_c (-w[c] log p_i[c])

    reduced by 'none', 'sum' or 'mean' (the sum over the weight of the samples' own classes,
    sum_i w[t_i], the ignored left out: PyTorch's rule, also for the smoothing term). With d_i the
    coefficient of log p_i in the loss (a vector over the classes), the gradient of the logits is
    d_i - p_i * sum(d_i): log-softmax's backward."""

    fresh_grads = True  # each input's gradient is a new array

    def forward(self, logits, target, weight=None, reduction="mean", ignore_index=-100, label_smoothing=0.0,
                any_ignored=False):
        xp = get_array_module(logits)
        n, classes = logits.shape
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        rows = xp.arange(n)
        self.log_probs, self.target, self.options = log_probs, target, (weight, reduction, ignore_index, label_smoothing)
        # any_ignored: known from the checks on the host, so no read of the device here
        if weight is None and reduction == "mean" and label_smoothing == 0 and not any_ignored:
            self.plain = True  # the paper's loss: the two lines below, as before the options existed
            return -log_probs[rows, target].mean()
        self.plain = False
        valid = target != ignore_index
        safe = xp.where(valid, target, 0)  # an ignored sample's class: any index, its weight is 0 below
        w_t = valid.astype(logits.dtype) if weight is None else weight[safe] * valid
        coef = xp.zeros_like(log_probs)  # d_i: the coefficient of log p_i in the loss
        coef[rows, safe] = -(1 - label_smoothing) * w_t
        if label_smoothing:
            coef -= (label_smoothing / classes) * valid[:, None] * (1 if weight is None else weight[None, :])
        losses = (coef * log_probs).sum(axis=1)
        self.coef = coef
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        self.total = w_t.sum()  # 0 when every sample is ignored: the mean is nan, as PyTorch's
        with np.errstate(invalid="ignore", divide="ignore"):
            return losses.sum() / self.total

    def backward(self, g):
        xp = get_array_module(g)
        if self.plain:
            n = self.target.shape[0]
            grad = xp.exp(self.log_probs)
            grad[xp.arange(n), self.target] -= 1
            return (grad * (g / n),)
        reduction = self.options[1]
        scale = g[:, None] if reduction == "none" else g if reduction == "sum" else g / self.total
        coef = self.coef
        return ((coef - xp.exp(self.log_probs) * coef.sum(axis=1, keepdims=True)) * scale,)


class NLLLoss(Function):
    """-w[t_i] x_i[t_i] for log-probabilities x (N, C), reduced as CrossEntropy's (without smoothing)."""

    fresh_grads = True

    def forward(self, x, target, weight=None, reduction="mean", ignore_index=-100):
        xp = get_array_module(x)
        rows = xp.arange(x.shape[0])
        valid = target != ignore_index
        safe = xp.where(valid, target, 0)
        w_t = valid.astype(x.dtype) if weight is None else weight[safe] * valid
        losses = -w_t * x[rows, safe]
        self.shape, self.rows, self.safe, self.w_t, self.reduction = x.shape, rows, safe, w_t, reduction
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        self.total = w_t.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return losses.sum() / self.total

    def backward(self, g):
        xp = get_array_module(g)
        scale = g if self.reduction != "mean" else g / self.total
        grad = xp.zeros(self.shape, dtype=self.w_t.dtype)
        grad[self.rows, self.safe] = -self.w_t * scale
        return (grad,)


REDUCTIONS = ("mean", "sum", "none")


def _class_targets(logits, target, ignore_index, op, what):
    """``target`` (a Tensor, array or list of N class indices, each in [0, C) or ``ignore_index``)
    checked: (an int64 array on the logits' device, whether any entry is ``ignore_index``)."""
    from ..tensor import Tensor

    xp = logits.xp
    if isinstance(target, Tensor):
        if target.device != logits.device:
            raise RuntimeError(f"{op}: {what} are on {logits.device} but target is on {target.device}")
        target = target.data
    # Host labels (a list, a NumPy array: what the trainer passes) are checked here, before they
    # go up: checking them on a GPU would read the device, which waits for the whole forward.
    # Labels already on the device are checked there, at the cost of that one read.
    on_host = not hasattr(target, "__cuda_array_interface__") and get_array_module(target) is np
    target = np.asarray(target) if on_host else target
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer class indices as target, got dtype {target.dtype}")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"{op}: expected target of shape ({logits.shape[0]},) for {what} {logits.shape}, got {target.shape}")
    ignored = target == ignore_index
    kept = target[~ignored]
    if kept.size and (int(kept.min()) < 0 or int(kept.max()) >= logits.shape[1]):
        lo, hi = int(kept.min()), int(kept.max())
        raise ValueError(f"{op}: target values must lie in [0, {logits.shape[1]}), got values in [{lo}, {hi}] "
                         f"(ignore_index={ignore_index} aside)")
    with logits.device.context():  # one upload, straight to int64 (no copy when it already is)
        return xp.asarray(target, dtype=np.int64), bool(ignored.any())


def _class_weights(weight, x, op):
    """``weight`` (C,) as an array of the input's dtype on its device, or None."""
    if weight is None:
        return None
    from ..tensor import Tensor

    data = weight.data if isinstance(weight, Tensor) else weight
    with x.device.context():
        data = x.xp.asarray(data, dtype=x.dtype)
    if data.shape != (x.shape[1],):
        raise ValueError(f"{op}: expected weight of shape ({x.shape[1]},), one per class, got {data.shape}")
    return data


def _check_options(x, reduction, op, what):
    check_float(x, op, what)
    if x.ndim != 2:
        raise ValueError(f"{op}: expected {what} of rank 2 (N, C), got shape {x.shape}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: expected reduction one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(logits, target, weight=None, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Cross-entropy of ``logits`` (N, C) against class indices ``target`` (N,), as PyTorch's
    ``F.cross_entropy`` (class ``weight`` (C,), ``reduction``, ``ignore_index``, ``label_smoothing``
    in [0, 1]); the defaults give the paper's mean loss. ``target``: a Tensor, an array or a list."""
    op = "cross_entropy"
    _check_options(logits, reduction, op, "logits")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{op}: expected label_smoothing in [0, 1], got {label_smoothing}")
    target, any_ignored = _class_targets(logits, target, ignore_index, op, "logits")
    return CrossEntropy.apply(logits, target=target, weight=_class_weights(weight, logits, op), reduction=reduction,
                              ignore_index=int(ignore_index), label_smoothing=float(label_smoothing),
                              any_ignored=any_ignored)


def nll_loss(log_probs, target, weight=None, reduction="mean", ignore_index=-100):
    """The negative log-likelihood of class indices ``target`` (N,) under ``log_probs`` (N, C)
    (``log_softmax``'s output), as PyTorch's ``F.nll_loss``."""
    op = "nll_loss"
    _check_options(log_probs, reduction, op, "log-probabilities")
    target, _ = _class_targets(log_probs, target, ignore_index, op, "log-probabilities")
    return NLLLoss.apply(log_probs, target=target, weight=_class_weights(weight, log_probs, op), reduction=reduction,
                         ignore_index=int(ignore_index))


def mse_loss(input, target, reduction="mean"):  # noqa: A002 - PyTorch's argument name
    """Squared error (input - target)^2, reduced ('mean', 'sum' or 'none'); both may require grad."""
    from ..tensor import Tensor

    op = "mse_loss"
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: expected reduction one of {REDUCTIONS}, got {reduction!r}")
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype, device=input.device)
    if input.shape != target.shape:
        raise ValueError(f"{op}: expected input and target of one shape, got {input.shape} and {target.shape}")
    check_float(input, op)
    diff = input - target
    squared = diff * diff
    return squared if reduction == "none" else squared.sum() if reduction == "sum" else squared.mean()
