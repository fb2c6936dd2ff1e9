"""Dropout (the paper's section 4.2): each unit is kept with probability 1 - p during training.

Two conventions give the same network in expectation:

* ``inverted=True`` (PyTorch's): training output x * mask / (1 - p); identity at test time.
* ``inverted=False`` (the paper's): training output x * mask; at test time every output is
  multiplied by 1 - p ("multiply their outputs by 0.5").

The mask can be given (gradient checks need it fixed) or drawn from a NumPy Generator; both
backends draw the same numbers, so a seed gives the same masks on any of them.
"""
from __future__ import annotations

from .. import random as mt_random
from ..autograd import Function


class Dropout(Function):
    """``mask``: the keep-mask, boolean (True keeps) or of x's dtype (0/1); ``scale``: a number."""

    fresh_grads = True  # each input's gradient is a new array

    def forward(self, x, mask, scale):
        mask = mask.astype(x.dtype)
        self.mask = mask * scale if scale != 1.0 else mask
        return x * self.mask

    def backward(self, gy):
        return (gy * self.mask,)


def dropout(x, p=0.5, training=True, mask=None, inverted=True, generator=None):
    """Zero each element of ``x`` with probability ``p`` (training) or rescale (test, paper mode).

    ``mask``: an optional array or Tensor of 0/1 of x's shape to use instead of a random one.
    ``generator``: an optional ``numpy.random.Generator`` (default: the global one, see
    ``mt.manual_seed``).
    """
    from ..tensor import Tensor

    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    if not training:
        return x if inverted or p == 0.0 else x * (1.0 - p)
    if mask is None:
        keep = mt_random.keep_mask(x.shape, p, x.device, generator)
    else:
        with x.device.context():  # a given mask is uploaded to x's device, not the current one
            keep = mask.data if isinstance(mask, Tensor) else x.xp.asarray(mask)
        if keep.shape != x.shape:
            raise ValueError(f"dropout: mask must have the input's shape {x.shape}, got {keep.shape}")
    scale = 1.0 / (1.0 - p) if inverted and p < 1.0 else 1.0
    return Dropout.apply(x, mask=keep, scale=scale)
