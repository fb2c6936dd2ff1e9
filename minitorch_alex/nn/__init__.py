"""Layers and the Module system (``mt.nn``); the functional ops are in ``mt.nn.functional``."""
from . import functional, init, utils
from .layers import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential
from .module import Module, Parameter

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "Linear", "LocalResponseNorm", "MaxPool2d", "Module",
    "Parameter", "ReLU", "Sequential", "functional", "init", "utils",
]
