"""What the convolution and linear classes of the CUDA backend share (``conv.py``, ``linear.py``)."""
from __future__ import annotations

from ..common import needs
from .activation import relu_backward


class GemmLayer:
    """What the convolution and linear classes share: the ``tf32`` option, the optional fused
    ReLU (whose backward pass masks gy with the saved output) and one gradient per array input
    (2 without a bias, 3 with one)."""

    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)
    relu = False

    def __init__(self, tf32=None):
        self.tf32 = tf32

    def _save(self, y, bias, **state):
        """Keep ``state`` for the backward pass, unless no input needs a gradient (no_grad)."""
        self.count = 2 if bias is None else 3
        if any(needs(self, self.count)):
            self.__dict__.update(state)
            if self.relu:
                self.y = y

    def _grad_in(self, gy):
        """(gy through the fused ReLU, need x, need weight, need bias)."""
        if self.relu:
            gy = relu_backward(self.y, gy)
        need = needs(self, self.count)
        return gy, need[0], need[1], self.count == 3 and need[2]

    def _out(self, gx, gw, gb):
        return (gx, gw) if self.count == 2 else (gx, gw, gb)
