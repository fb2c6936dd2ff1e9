"""The learning rate of a run (Caffe's ``lr_policy``): one base rate, each parameter group at its
multiple of it (fine-tuning: 0 for frozen layers, ``head_lr_mult`` for new ones); the paper's rule
divides it by 10 when the validation error stops improving (``ReduceLROnPlateau``), and a per-step
schedule (``optim.lr_scheduler``: warm-up, cosine) shapes it within the run.
"""
from __future__ import annotations

import math

from ..optim import ReduceLROnPlateau
from ..optim.lr_scheduler import ChainedScheduler, CosineAnnealingLR, LinearLR


class LRPolicy:
    """The rates of ``optimizer``'s groups, ``mults[i]`` x the base rate for group i, under the
    ``TrainConfig`` ``cfg`` (``lr``, ``schedule``, ``patience``, ``max_lr_drops``, ``warmup_steps``,
    ``epochs``)."""

    def __init__(self, optimizer, cfg, mults):
        if cfg.schedule not in ("plateau", "cosine"):
            raise ValueError(f"schedule must be 'plateau' or 'cosine', got {cfg.schedule!r}")
        self.optimizer, self.cfg, self.mults = optimizer, cfg, mults
        self.base = cfg.lr  # the plateau rule's rate: a group's rate is base x its multiplier
        self.plateau = ReduceLROnPlateau(optimizer, factor=0.1, patience=cfg.patience, max_reductions=cfg.max_lr_drops)
        self.per_step = None  # the per-step schedule (warm-up, cosine), made by start()

    def set_base(self, base):
        """Every group's rate (and the per-step schedule's starting rate) from ``base``."""
        self.base = base
        for group, mult in zip(self.optimizer.param_groups, self.mults):
            group["lr"] = group["initial_lr"] = base * mult

    def start(self, steps_per_epoch):
        """Make the per-step schedule (``mt.optim.lr_scheduler`` objects), or None: the linear warm-up
        from base/W over the first W steps (``LinearLR``), with ``schedule="cosine"`` times the half
        cosine from 1 down to 0 over the run (``CosineAnnealingLR``); both: their product."""
        cfg, chain = self.cfg, []
        if cfg.warmup_steps > 1:  # step k of W at base * (k + 1) / W
            chain.append(LinearLR(self.optimizer, 1.0 / cfg.warmup_steps, 1.0, cfg.warmup_steps - 1))
        if cfg.schedule == "cosine":
            chain.append(CosineAnnealingLR(self.optimizer, max(1, cfg.epochs * steps_per_epoch)))
        self.set_base(self.base)  # making a schedule sets the rates of its step 0
        self.per_step = None if not chain else chain[0] if len(chain) == 1 else ChainedScheduler(chain)

    def at(self, step):
        """The rate (of the layers at multiplier 1) the schedules give training step ``step``."""
        if self.per_step is None:
            return self.base
        return self.per_step.lr_at(step, self.base, self.optimizer.param_groups[0])

    def set_step(self, step):
        """The rates of training step ``step`` (before it is taken)."""
        if self.per_step is not None:
            self.per_step.set_step(step)

    def end_epoch(self, val_top1_err):
        """The paper's rule, once an epoch is validated: the base rate / 10 when the error stalls."""
        if self.cfg.schedule == "plateau" and self.plateau.step(val_top1_err):
            self.set_base(self.base * self.plateau.factor)  # the same for every group

    def state_dict(self):
        """What a checkpoint's meta keeps (``schedule``, ``base_lr``); "nothing yet" (inf) is null."""
        schedule = self.plateau.state_dict()
        schedule["best"] = schedule["best"] if math.isfinite(schedule["best"]) else None
        return {"schedule": schedule, "base_lr": self.base}

    def load_state_dict(self, meta):
        """Back to where a checkpoint's ``meta`` stood (the groups' rates come with the optimizer's state)."""
        schedule = dict(meta["schedule"])
        schedule["best"] = math.inf if schedule["best"] is None else schedule["best"]
        self.plateau.load_state_dict(schedule)
        self.base = float(meta.get("base_lr", self.optimizer.param_groups[0]["lr"]))  # v1: one group
