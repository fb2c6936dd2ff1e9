"""``Module``: a tree of layers that owns ``Parameter``s, like ``torch.nn.Module``.

Assigning a Parameter or a Module to an attribute registers it, so ``parameters()``,
``state_dict()`` and ``to(device)`` find everything without the layer listing it by hand.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..device import Device, transfer
from ..tensor import Tensor


def check_state_dict(owner, expected, state_dict, strict=True):
    """Compare ``state_dict`` (name -> array or Tensor) with ``expected`` (name -> shape) before
    anything is loaded; returns ``(missing, unexpected)`` key lists.

    Raises KeyError naming the missing and unexpected keys (when ``strict``) and ValueError naming
    every shape mismatch, both prefixed "load_state_dict for <owner>". Every loader (``Module``,
    the two-tower AlexNet, ``amp.MixedPrecision``) checks through here, so one mistake reads the
    same everywhere.
    """
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if strict and (missing or unexpected):
        raise KeyError(f"load_state_dict for {owner}: missing keys {missing}, unexpected keys {unexpected}")
    shape = lambda v: tuple(v.shape) if hasattr(v, "shape") else np.shape(v)  # noqa: E731 (no GPU copy)
    mismatched = [f"{k}: expected {tuple(expected[k])}, got {shape(v)}"
                  for k, v in state_dict.items() if k in expected and shape(v) != tuple(expected[k])]
    if mismatched:
        raise ValueError(f"load_state_dict for {owner}: shape mismatch for " + "; ".join(mismatched))
    return missing, unexpected


class Parameter(Tensor):
    """A leaf tensor that a Module owns and an optimizer updates (requires grad by default)."""

    def __init__(self, data, requires_grad=True, dtype=None, device=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ----- traversal ------------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix=""):
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    # ----- modes and devices ------------------------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, device=None, dtype=None):
        """Move (and/or cast) every parameter in place; returns self."""
        for p in self.parameters():
            data = p.data
            if dtype is not None:
                with p.device.context():  # the cast runs on the parameter's device
                    data = data.astype(dtype)
            if device is not None and Device(device) != p.device:
                data = transfer(data, p.device, Device(device))
                p.device = Device(device)
            p.data = data
            p.grad = None
        return self

    # ----- state --------------------------------------------------------------------------------
    def state_dict(self):
        """Ordered ``name -> array`` of every parameter (the arrays themselves, not copies)."""
        return OrderedDict((name, p.data) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the parameters, cast to each parameter's dtype and device.

        Raises KeyError naming missing and unexpected keys (when ``strict``) and ValueError naming
        every shape mismatch; nothing is changed unless everything fits.
        """
        own = dict(self.named_parameters())
        missing, unexpected = check_state_dict(type(self).__name__, {k: p.shape for k, p in own.items()},
                                               state_dict, strict)
        for k, v in state_dict.items():
            if k in own:
                p = own[k]
                value = v.data if isinstance(v, Tensor) else v
                p.data = Tensor(value, dtype=p.dtype, device=p.device).data
        return missing, unexpected

    # ----- printing -----------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(lines) + "\n)" if lines else ")")
