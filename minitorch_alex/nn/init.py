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


# ----- PyTorch's initialisers (torch.nn.init): the same names, gains and fan rules ----------------

_LINEAR_GAINS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity, param=None):
    """The gain torch.nn.init uses for ``nonlinearity``: 1 (linear, convolutions, sigmoid), 5/3 (tanh),
    sqrt(2) (relu), sqrt(2 / (1 + slope^2)) (leaky_relu, slope ``param``, default 0.01), 3/4 (selu)."""
    if nonlinearity in _LINEAR_GAINS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity in ("relu", "leaky_relu"):
        return math.sqrt(_squared_gain(nonlinearity, param))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: expected one of {_LINEAR_GAINS + ('tanh', 'relu', 'leaky_relu', 'selu')}, "
                     f"got {nonlinearity!r}")


def _squared_gain(nonlinearity, param=None):
    """gain^2, exact where the gain is a square root (2 for relu, not sqrt(2)**2 = 2.0000000000000004)."""
    if nonlinearity == "relu":
        return 2.0
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: expected a number as leaky_relu's slope, got {slope!r}")
        return 2.0 / (1 + slope ** 2)
    return calculate_gain(nonlinearity, param) ** 2


def fan_in_and_fan_out(shape):
    """(fan_in, fan_out) of a weight of ``shape``: (in, out) for a Linear weight (out, in), and
    (in/groups * kh * kw, out * kh * kw) for a convolution weight (out, in/groups, kh, kw)."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight of 2 or more dimensions, got shape {tuple(shape)}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return fan_in if mode == "fan_in" else fan_out


def kaiming_std(shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015)'s std for a weight of ``shape``: gain / sqrt(fan), computed as
    sqrt(gain^2 / fan), so for relu exactly sqrt(2 / fan_in) (PyTorch's quotient can differ in the
    last bit). The CLI's ``--init kaiming`` draws with it (``models.alexnet.iter_values``)."""
    return math.sqrt(_squared_gain(nonlinearity, a) / _fan(shape, mode))


def kaiming_normal_(param, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2) with std = ``kaiming_std`` = gain / sqrt(fan) (He et al. 2015); ``a``: leaky_relu's slope."""
    return normal_(param, 0.0, kaiming_std(param.shape, a, mode, nonlinearity), generator)


def kaiming_uniform_(param, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-bound, bound) with bound = gain * sqrt(3 / fan): the same variance as kaiming_normal_."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(param.shape, mode))
    return uniform_(param, -bound, bound, generator)


def xavier_normal_(param, gain=1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot and Bengio 2010)."""
    fan_in, fan_out = fan_in_and_fan_out(param.shape)
    return normal_(param, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def xavier_uniform_(param, gain=1.0, generator=None):
    """U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(param.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(param, -bound, bound, generator)


def zeros_(param):
    return constant_(param, 0.0)


def ones_(param):
    return constant_(param, 1.0)


def trunc_normal_(param, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """N(mean, std^2) restricted to [a, b] (absolute bounds, as torch's)."""
    param.data = mt_random.truncated_normal(param.shape, mean, std, a, b, param.dtype, param.device, generator)
    return param
