"""Learning-rate schedules. Both change ``optimizer.lr`` in place.

* ``StepLR``: multiply by ``gamma`` every ``step_size`` epochs.
* ``ReduceLROnPlateau``: the paper's rule, "divide the learning rate by 10 when the validation
  error rate stopped improving with the current learning rate" (they did it 3 times).
"""
from __future__ import annotations

import math


class StepLR:
    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self):
        """Call once per epoch."""
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)

    def state_dict(self):
        return {"epoch": self.epoch, "base_lr": self.base_lr}

    def load_state_dict(self, state):
        self.epoch, self.base_lr = int(state["epoch"]), float(state["base_lr"])
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)


class ReduceLROnPlateau:
    """Multiply the lr by ``factor`` once the metric (e.g. validation error, lower is better)
    has not improved by more than ``threshold`` for ``patience`` consecutive epochs.

    ``max_reductions`` caps the number of reductions (the paper: 3)."""

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
            self.optimizer.lr *= self.factor
            self.reductions += 1
            self.bad_epochs = 0
            return True
        return False

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs, "reductions": self.reductions}

    def load_state_dict(self, state):
        self.best, self.bad_epochs, self.reductions = float(state["best"]), int(state["bad_epochs"]), int(state["reductions"])
