"""Weight initialisers; each fills a Parameter in place from a NumPy Generator."""
from __future__ import annotations

import math

from .. import random as mt_random


def normal_(param, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std^2) (the paper: N(0, 0.01^2) for every weight)."""
    param.data = mt_random.normal(param.shape, mean, std, param.dtype, param.device, generator)
    return param


def constant_(param, value):
    with param.device.context():  # allocated on the parameter's device, not the current one
        param.data = param.xp.full(param.shape, value, dtype=param.dtype)
    return param


def uniform_(param, low, high, generator=None):
    own = param.data if param.device.type == "cpu" else None  # in place, as torch's uniform_
    with param.device.context():  # the result lands on the parameter's device
        param.data = mt_random.uniform_between(param.shape, low, high, param.dtype, param.device, generator, out=own)
    return param


def default_uniform_(param, fan_in, generator=None):
    """PyTorch's default for Conv2d and Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return uniform_(param, -bound, bound, generator)
