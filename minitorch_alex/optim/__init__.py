"""Optimizers and learning-rate schedules (``mt.optim``)."""
from . import lr_scheduler
from .lr_scheduler import ReduceLROnPlateau, StepLR
from .sgd import SGD

__all__ = ["SGD", "StepLR", "ReduceLROnPlateau", "lr_scheduler"]
