"""Learning-rate schedules, as PyTorch's ``torch.optim.lr_scheduler``: each sets the ``lr`` of every
parameter group of its optimizer.

* ``StepLR``: multiply by ``gamma`` every ``step_size`` epochs.
* ``LinearLR``: a linear ramp of the factor from ``start_factor`` to ``end_factor`` (warm-up).
* ``CosineAnnealingLR``: the half cosine from each group's lr down to ``eta_min`` over ``T_max`` steps.
* ``SequentialLR``: one schedule after another at the ``milestones`` (warm-up, then cosine).
* ``ChainedScheduler``: several at once, each on the rate the one before gave (warm-up x cosine).
* ``OneCycleLR``: up to ``max_lr`` and down again, momentum the other way (Smith and Topin 2017).
* ``ReduceLROnPlateau``: the paper's rule, "divide the learning rate by 10 when the validation
  error rate stopped improving with the current learning rate" (they did it 3 times).

The schedules with a formula compute it in closed form from their step count ``last_epoch``
(``lr(t) = base_lr * factor(t)``), so a resumed schedule (``load_state_dict``) gives the same
rates as one that never stopped. PyTorch updates most of them recursively (lr(t) from lr(t - 1));
the two agree to rounding, which the tests hold to 1e-12 in float64.
"""
from __future__ import annotations

import math


class LRScheduler:
    """Base: ``step()`` advances ``last_epoch`` and sets each group's lr to ``lr_at(t, base_lr)``.
    Making a scheduler sets the rates of step 0 (as PyTorch's do)."""

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        for group in optimizer.param_groups:  # the rate each schedule starts from, kept in the group
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, t, base_lr, group):  # pragma: no cover - overridden
        """The rate of ``group`` (which started at ``base_lr``) at step ``t``."""
        raise NotImplementedError

    def step(self):
        """Call once per epoch (or per batch, for schedules counted in batches)."""
        self.last_epoch += 1
        self._set(self.last_epoch)

    def set_step(self, t):
        """Set the rates of step ``t`` directly (a resumed run, or one driven by its own step count)."""
        self.last_epoch = int(t)
        self._set(self.last_epoch)

    def _set(self, t):
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(t, base, group)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The rates the last ``step`` set, one per group."""
        return list(self._last_lr)

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state):
        self.last_epoch, self.base_lrs = int(state["last_epoch"]), [float(b) for b in state["base_lrs"]]
        self._set(self.last_epoch)


class StepLR(LRScheduler):
    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: expected step_size an integer >= 1, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t, base_lr, group):
        return base_lr * self.gamma ** (t // self.step_size)


class LinearLR(LRScheduler):
    """factor(t) = start + (end - start) * min(t, total_iters) / total_iters (PyTorch's defaults:
    1/3 up to 1 over 5 steps). A warm-up of W steps from lr/W: ``LinearLR(opt, 1 / W, 1, W - 1)``."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: expected 0 < start_factor <= 1 and 0 <= end_factor <= 1, "
                             f"got {start_factor} and {end_factor}")
        if isinstance(total_iters, bool) or not isinstance(total_iters, int) or total_iters < 0:
            raise ValueError(f"LinearLR: expected total_iters an integer >= 0, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t, base_lr, group):
        done = min(t, self.total_iters) / self.total_iters if self.total_iters else 1.0
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done)


class CosineAnnealingLR(LRScheduler):
    """lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2 (SGDR without restarts;
    past T_max the cosine goes on, as PyTorch's closed form)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: expected T_max an integer >= 1, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t, base_lr, group):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class SequentialLR(LRScheduler):
    """``schedulers[i]`` from step ``milestones[i - 1]`` on, counting its own steps from 0 there."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(schedulers) < 1 or len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected one milestone fewer than schedulers, got {len(schedulers)} "
                             f"schedulers and {len(milestones)} milestones")
        if list(milestones) != sorted(milestones) or any(m < 1 for m in milestones):
            raise ValueError(f"SequentialLR: expected increasing milestones >= 1, got {list(milestones)}")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("SequentialLR: every scheduler must drive the SequentialLR's optimizer")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        super().__init__(optimizer, last_epoch)

    def _current(self, t):
        index = sum(t >= m for m in self.milestones)
        return self.schedulers[index], t - (self.milestones[index - 1] if index else 0)

    def lr_at(self, t, base_lr, group):
        scheduler, local = self._current(t)
        return scheduler.lr_at(local, base_lr, group)


class ChainedScheduler(LRScheduler):
    """Several schedules at once: each applied to the rate the one before gave, at the same step
    (for rate factors, their product: a warm-up times a cosine)."""

    def __init__(self, schedulers, optimizer=None):
        optimizer = optimizer if optimizer is not None else schedulers[0].optimizer
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("ChainedScheduler: every scheduler must drive the same optimizer")
        self.schedulers = list(schedulers)
        super().__init__(optimizer)

    def lr_at(self, t, base_lr, group):
        for scheduler in self.schedulers:
            base_lr = scheduler.lr_at(t, base_lr, group)
        return base_lr


class OneCycleLR(LRScheduler):
    """The 1cycle policy per batch, PyTorch's defaults: from max_lr / div_factor up to ``max_lr`` over
    ``pct_start`` of the ``total_steps`` and down to max_lr / (div_factor * final_div_factor), by
    half cosines (``anneal_strategy='cos'``) or straight lines ('linear'); with ``cycle_momentum``
    the momentum (or Adam's beta1) goes from max_momentum down to base_momentum and back."""

    def __init__(self, optimizer, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
                 cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, last_epoch=-1):
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 2:
            raise ValueError(f"OneCycleLR: expected total_steps an integer >= 2, got {total_steps!r}")
        if not 0 < pct_start < 1:
            raise ValueError(f"OneCycleLR: expected 0 < pct_start < 1, got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: expected anneal_strategy 'cos' or 'linear', got {anneal_strategy!r}")
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(f"OneCycleLR: expected {len(groups)} max_lr values (one per group), got {len(max_lrs)}")
        self.momentum_key = None
        if cycle_momentum:
            self.momentum_key = "betas" if "betas" in groups[0] else "momentum" if "momentum" in groups[0] else None
            if self.momentum_key is None:
                raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with 'momentum' or 'betas'")
        self.total_steps, self.anneal = total_steps, anneal_strategy
        self.up = float(pct_start * total_steps) - 1  # the step at which the lr peaks (PyTorch's phase end)
        self.base_momentum, self.max_momentum = base_momentum, max_momentum
        for group, peak in zip(groups, max_lrs):  # PyTorch's group keys, so its recipes read the same
            group["initial_lr"] = peak / div_factor
            group["max_lr"], group["min_lr"] = peak, peak / div_factor / final_div_factor
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, fraction):
        if self.anneal == "cos":
            return end + (start - end) / 2 * (1 + math.cos(math.pi * fraction))
        return start + (end - start) * fraction

    def _phase(self, t, start, peak, end):
        if t > self.total_steps:  # the rate after the last step is set too (and unused), as PyTorch's
            raise ValueError(f"OneCycleLR: stepped {t} times, past total_steps={self.total_steps}")
        if t <= self.up:
            return self._anneal(start, peak, t / self.up)
        return self._anneal(peak, end, (t - self.up) / (self.total_steps - 1 - self.up))

    def lr_at(self, t, base_lr, group):
        return self._phase(t, base_lr, group["max_lr"], group["min_lr"])

    def _set(self, t):
        super()._set(t)
        if self.momentum_key is not None:
            m = self._phase(t, self.max_momentum, self.base_momentum, self.max_momentum)
            for group in self.optimizer.param_groups:
                if self.momentum_key == "betas":
                    group["betas"] = (m, group["betas"][1])
                else:
                    group["momentum"] = m


class ReduceLROnPlateau:
    """Multiply every group's lr by ``factor`` once the metric (e.g. validation error, lower is
    better) has not improved by more than ``threshold`` for ``patience`` consecutive epochs.

    ``max_reductions`` caps the number of reductions (the paper: 3). Beside a per-step schedule
    (these compute from each group's ``initial_lr``, not from the last rate as PyTorch's recursive
    forms do) a reduction lasts only until that schedule's next step: scale ``initial_lr`` too, as
    the Trainer does (``train.lr_policy.LRPolicy.set_base``)."""

    def __init__(self, optimizer, factor=0.1, patience=0, threshold=1e-4, max_reductions=None):
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.optimizer, self.factor, self.patience, self.threshold = optimizer, factor, patience, threshold
        self.max_reductions = max_reductions
        self.best, self.bad_epochs, self.reductions = math.inf, 0, 0

    def step(self, metric):
        """Call once per epoch with the validation error; returns True when the lr was reduced."""
        metric = float(metric)
        if metric < self.best - self.threshold:
            self.best, self.bad_epochs = metric, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs > self.patience and (self.max_reductions is None or self.reductions < self.max_reductions):
            for group in self.optimizer.param_groups:
                group["lr"] *= self.factor
            self.reductions += 1
            self.bad_epochs = 0
            return True
        return False

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs, "reductions": self.reductions}

    def load_state_dict(self, state):
        self.best, self.bad_epochs, self.reductions = float(state["best"]), int(state["bad_epochs"]), int(state["reductions"])


__all__ = ["ChainedScheduler", "CosineAnnealingLR", "LRScheduler", "LinearLR", "OneCycleLR", "ReduceLROnPlateau", "SequentialLR", "StepLR"]
