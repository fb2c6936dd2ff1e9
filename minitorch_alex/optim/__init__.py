"""Optimizers and learning-rate schedules (``mt.optim``)."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import ReduceLROnPlateau, StepLR
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "StepLR", "ReduceLROnPlateau", "lr_scheduler"]
