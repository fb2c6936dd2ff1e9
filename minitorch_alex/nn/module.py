"""``Module``: a tree of layers that owns ``Parameter``s and buffers, like ``torch.nn.Module``.

Assigning a Parameter or a Module to an attribute registers it, so ``parameters()``,
``state_dict()`` and ``to(device)`` find everything without the layer listing it by hand.
Buffers (``register_buffer``) are state that is not trained by the optimizer, such as batch
normalisation's running mean and variance: ``to(device)`` moves them, a dtype cast casts the
floating ones, and the persistent ones are in ``state_dict()`` beside the parameters (each
module's parameters, then its buffers, as PyTorch orders them).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..device import Device, device_of_array, transfer
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
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):  # a new value, as in PyTorch
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: cannot assign a {type(value).__name__} to buffer {name!r} "
                                "(expected a Tensor or None)")
            self._buffers[name] = value
            object.__setattr__(self, name, value)
            return
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    def register_buffer(self, name, value, persistent=True):
        """Register ``value`` (a Tensor, an array or None) as the buffer ``name``: state that is
        not a parameter (no gradient, not in ``parameters()``), moved by ``to(device)`` and cast
        by ``to(dtype=...)`` when floating. ``persistent``: whether ``state_dict()`` holds it.
        An array becomes a Tensor on the array's device; returns the stored Tensor (or None)."""
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before "
                                 f"register_buffer({name!r})")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: expected a non-empty name without '.', got {name!r}")
        if name not in self._buffers and (name in self._parameters or name in self._modules or hasattr(self, name)):
            raise KeyError(f"register_buffer: {type(self).__name__} already has an attribute {name!r}")
        if value is not None and not isinstance(value, Tensor):
            value = Tensor(value, device=device_of_array(value))
        if value is not None and value.requires_grad:
            raise ValueError(f"register_buffer: buffer {name!r} must not require grad (a buffer is not trained; "
                             "use a Parameter)")
        self._buffers[name] = value
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, value)
        return value

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

    def named_buffers(self, prefix=""):
        """(dotted name, Tensor) of every buffer, persistent or not, module by module (None
        buffers skipped)."""
        for mod_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def _named_state(self):
        """(name, Tensor) of what ``state_dict`` holds: each module's parameters, then its
        persistent buffers (torchvision's order, e.g. ``bn.weight, bn.bias, bn.running_mean``)."""
        for mod_name, module in self.named_modules():
            for name, t in list(module._parameters.items()) + [
                    (n, b) for n, b in module._buffers.items() if n not in module._non_persistent]:
                if t is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), t

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
        """Move (and/or cast) every parameter and buffer in place; returns self. A dtype cast
        leaves integer buffers (a batch counter) as they are, as PyTorch does."""
        for p in list(self.parameters()) + list(self.buffers()):
            data = p.data
            if dtype is not None and (isinstance(p, Parameter) or data.dtype.kind == "f"):
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
        """Ordered ``name -> array`` of every parameter and persistent buffer (the arrays
        themselves, not copies)."""
        return OrderedDict((name, t.data) for name, t in self._named_state())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the parameters and persistent buffers, cast to each one's dtype and
        device.

        Raises KeyError naming missing and unexpected keys (when ``strict``) and ValueError naming
        every shape mismatch; nothing is changed unless everything fits.
        """
        own = dict(self._named_state())
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
