"""Finite-difference gradient checking.

For a function ``fn`` of tensors, compare the gradient from backward with central differences

    d f / d x[i]  ~  (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

in float64. A non-scalar output is reduced to the scalar f = sum(r * fn(x)) with a fixed random
``r``, so one backward gives the whole gradient and every output element takes part.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .autograd import no_grad
from .tensor import Tensor


@dataclass
class GradcheckReport:
    ok: bool
    checked: int  # number of entries compared
    max_rel_error: float  # max |analytic - numeric| / max(|analytic|, |numeric|, atol / rtol)
    worst: dict = field(default_factory=dict)  # the entry furthest outside tolerance

    def __bool__(self):
        return self.ok

    def __str__(self):
        w = self.worst
        verdict = "passed" if self.ok else "FAILED"
        return (
            f"gradcheck {verdict}: {self.checked} entries, max relative error {self.max_rel_error:.3e}; worst entry: "
            f"input {w.get('input')} index {w.get('index')}: analytic {w.get('analytic'):.10g}, "
            f"numeric {w.get('numeric'):.10g} (|diff| {w.get('abs_error'):.3e}, allowed {w.get('allowed'):.3e})"
        )


class GradcheckError(AssertionError):
    pass


def gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-6, samples=None, seed=0, raise_exception=True):
    """Check ``fn``'s gradients with respect to every input that requires grad.

    inputs: a Tensor or a sequence of Tensors; those that require grad must be float64.
    An entry passes when |analytic - numeric| <= atol + rtol * |numeric|.
    samples: check at most this many randomly chosen entries per input (None: all of them).
    Returns a ``GradcheckReport``; raises ``GradcheckError`` with the report when it fails
    (unless ``raise_exception=False``).
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked_inputs = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked_inputs:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked_inputs:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} must be float64 for a meaningful check, got {inputs[i].dtype}")

    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    xp = out.xp
    r = xp.asarray(rng.standard_normal(out.shape))

    saved = [inputs[i].grad for i in checked_inputs]
    for i in checked_inputs:
        inputs[i].grad = None
    (out * Tensor._wrap(r, out.device)).sum().backward()
    analytic = {i: (inputs[i].grad.data if inputs[i].grad is not None else xp.zeros(inputs[i].shape)) for i in checked_inputs}
    for i, g in zip(checked_inputs, saved):
        inputs[i].grad = g

    def f():
        with no_grad():
            return float((fn(*inputs).data * r).sum())

    report = GradcheckReport(ok=True, checked=0, max_rel_error=0.0)
    worst_ratio = -1.0
    for i in checked_inputs:
        x = inputs[i].data
        flat_indices = np.arange(x.size) if samples is None or samples >= x.size else rng.choice(x.size, samples, replace=False)
        for flat in flat_indices:
            idx = np.unravel_index(int(flat), x.shape)
            orig = float(x[idx])
            x[idx] = orig + eps
            f_plus = f()
            x[idx] = orig - eps
            f_minus = f()
            x[idx] = orig
            numeric = (f_plus - f_minus) / (2 * eps)
            a = float(analytic[i][idx])
            err = abs(a - numeric)
            allowed = atol + rtol * abs(numeric)
            rel = err / max(abs(a), abs(numeric), atol / rtol)  # gradients near 0 are judged by atol
            report.checked += 1
            report.max_rel_error = max(report.max_rel_error, rel)
            if err / allowed > worst_ratio:
                worst_ratio = err / allowed
                report.worst = {"input": i, "index": tuple(int(j) for j in idx), "analytic": a, "numeric": numeric,
                                "abs_error": err, "allowed": allowed}
            if err > allowed:
                report.ok = False
    if raise_exception and not report.ok:
        raise GradcheckError(str(report))
    return report
