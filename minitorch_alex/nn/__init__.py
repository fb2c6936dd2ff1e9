"""Layers and the Module system (``mt.nn``); the functional ops are in ``mt.nn.functional``."""
from . import functional, init, utils
from .layers import (
                     Conv2d,
                     Dropout,
                     Flatten,
                     Identity,
                     LeakyReLU,
                     Linear,
                     LocalResponseNorm,
                     MaxPool2d,
                     ModuleDict,
                     ModuleList,
                     ReLU,
                     Sequential,
                     Sigmoid,
                     Tanh,
)
from .module import Module, Parameter

__all__ = [
    "Conv2d", "Dropout", "Flatten", "Identity", "LeakyReLU", "Linear", "LocalResponseNorm", "MaxPool2d", "Module",
    "ModuleDict", "ModuleList", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh", "functional", "init", "utils",
]
