"""AlexNet split over two devices, as trained in 2012 on two GTX 580s (section 3.2, Figure 2).

Each tower holds half of every layer. Per tower (channel counts per tower):

    conv1 48@11x11/4 -> ReLU -> LRN (own 48 maps) -> pool
    conv2 128@5x5     sees only its own tower      -> ReLU -> LRN -> pool
    conv3 192@3x3     sees BOTH towers' pool2      <- cross-device copy
    conv4 192@3x3     own tower only
    conv5 128@3x3     own tower only               -> pool
    fc6   2048        sees BOTH towers' pool5      <- cross-device copy
    fc7   2048        sees BOTH towers' fc6        <- cross-device copy
    fc8   1000 logits on the first device, sees both towers' fc7 <- copy from the second tower

Dropout acts within each tower. ``Tensor.to(device)`` is the only way across, so every byte
that crosses is counted (``traffic``): forward activations and, in backward, their gradients.

The state dict uses the single-device model's names and shapes (``AlexNet``, where the split is
``groups=2``): tower 0 holds output channels [0, C/2) of every layer, tower 1 the rest. So a
checkpoint trained one way loads the other way.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..device import Device, enable_peer_access, tower_streams, transfer
from ..nn.module import check_state_dict
from ..ops.activation import relu
from ..ops.pool import max_pool2d
from ..ops.shape import ToDevice, concat, flatten
from .alexnet import LAYER_NAMES, LAYERS, LRN, initial_values, layers, param_shapes


@dataclass
class Traffic:
    """Bytes copied between the towers since the last ``reset``."""

    forward_bytes: int = 0
    backward_bytes: int = 0
    copies: int = 0

    @property
    def total_bytes(self):
        return self.forward_bytes + self.backward_bytes

    def reset(self):
        self.forward_bytes = self.backward_bytes = self.copies = 0


class CrossTowerCopy(ToDevice):
    """``ToDevice`` that adds the bytes it moves (both directions) to a ``Traffic``, and orders
    GPU-to-GPU copies against the towers' streams (``streams``: source's, destination's) with
    events instead of synchronising both devices (``device.transfer``)."""

    def forward(self, x, src, dst, traffic, streams=None):
        self.traffic, self.src, self.dst, self.streams = traffic, src, dst, streams
        traffic.forward_bytes += x.nbytes
        traffic.copies += 1
        return transfer(x, src, dst, streams)

    def backward(self, g):
        self.traffic.backward_bytes += g.nbytes
        back = None if self.streams is None else self.streams[::-1]
        return (transfer(g, self.dst, self.src, back),)


class Tower(nn.Module):
    """One half of every layer (fc8 lives beside the towers, on the first device): the layers of
    ``alexnet.LAYERS`` halved by ``Layer.tower_half``."""

    def __init__(self, dtype, device):
        super().__init__()
        for layer in LAYERS[:-1]:
            setattr(self, layer.name, layer.tower_half().build(dtype, device))


class AlexNetTwoTower(nn.Module):
    input_sizes = (223, 254)  # as AlexNet: pool5 must be 6 x 6 for fc6

    def __init__(self, num_classes=1000, devices=("cpu:0", "cpu:1"), dropout=0.5, paper_dropout=True, init="paper",
                 dtype=np.float32, generator=None):
        super().__init__()
        if len(devices) != 2:
            raise ValueError(f"AlexNetTwoTower: expected two devices, got {devices!r}")
        self.devices = tuple(Device(d) for d in devices)
        self.dtype = np.dtype(dtype)
        self.tower0 = Tower(dtype, self.devices[0])
        self.tower1 = Tower(dtype, self.devices[1])
        self.fc8 = layers(num_classes)[-1].build(dtype, self.devices[0])
        self.lrn = nn.LocalResponseNorm(**LRN)  # over one tower's maps
        self.drop = nn.Dropout(dropout, inverted=not paper_dropout)
        self.traffic = Traffic()
        enable_peer_access(*self.devices)
        self.streams = tower_streams(self.devices)  # one per GPU (None on cpu devices)
        self.reset_parameters(init, generator)

    @property
    def towers(self):
        return (self.tower0, self.tower1)

    def reset_parameters(self, init="paper", generator=None):
        """The same draws as the single-device model's, so one seed gives one network in both forms."""
        self.load_state_dict(initial_values(self.fc8.out_features, init, self.dtype, generator))

    def _across(self, x, src, dst):
        """Tower ``src``'s x copied to tower ``dst``'s device, bytes counted; no copy when both
        towers share a device (they share its stream too, so no ordering is needed)."""
        if self.devices[src] == self.devices[dst]:
            return x
        streams = None if None in (self.streams[src], self.streams[dst]) else (self.streams[src], self.streams[dst])
        return CrossTowerCopy.apply(x, src=self.devices[src], dst=self.devices[dst], traffic=self.traffic,
                                    streams=streams)

    def _both(self, parts, t, axis):
        """Tower t's view of both towers' outputs: own part local, the other's copied over."""
        return concat([p if i == t else self._across(p, i, t) for i, p in enumerate(parts)], axis=axis)

    def _tower(self, t):
        """Tower t's device made current, and its stream (on a GPU) for the kernels queued inside."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.devices[t].context())
        if self.streams[t] is not None:
            stack.enter_context(self.streams[t])
        return stack

    def _each(self, step, h):
        """[step(t, tower t, h[t]) for each tower], each inside its tower's device and stream."""
        out = []
        for t, (tw, hi) in enumerate(zip(self.towers, h)):
            with self._tower(t):
                out.append(step(t, tw, hi))
        return out

    def forward(self, x):
        """(N, 3, 224, 224) on any device -> (N, num_classes) logits on the first device."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"AlexNetTwoTower: expected input of shape (N, 3, 224, 224), got {x.shape}")
        # both towers read the image (the data loader feeds each device; not cross-tower traffic)
        # (the lambdas read h while _each runs, before h is rebound to its result)
        h = self._each(lambda t, tw, _: x.to(self.devices[t]), [x, x])
        h = self._each(lambda t, tw, hi: max_pool2d(self.lrn(relu(tw.conv1(hi))), 3, 2), h)
        h = self._each(lambda t, tw, hi: max_pool2d(self.lrn(relu(tw.conv2(hi))), 3, 2), h)
        h = self._each(lambda t, tw, _: relu(tw.conv3(self._both(h, t, axis=1))), h)
        h = self._each(lambda t, tw, hi: relu(tw.conv4(hi)), h)
        h = self._each(lambda t, tw, hi: flatten(max_pool2d(relu(tw.conv5(hi)), 3, 2), 1), h)
        h = self._each(lambda t, tw, _: self.drop(relu(tw.fc6(self._both(h, t, axis=1)))), h)
        h = self._each(lambda t, tw, _: self.drop(relu(tw.fc7(self._both(h, t, axis=1)))), h)
        with self._tower(0):
            return self.fc8(self._both(h, 0, axis=1))

    # ----- the single-device model's state dict -----------------------------------------------------
    def state_dict(self):
        """``AlexNet``'s names and shapes: each layer's two halves joined along its outputs."""
        return convert_state_dict(super().state_dict(), to="grouped")

    def load_state_dict(self, state_dict, strict=True):
        """Load a state dict of the single-device ``AlexNet`` (this model's ``state_dict``) or one in
        this model's own per-tower names (``tower0.conv1.weight``, ...: ``named_parameters``)."""
        if _form_of(state_dict) == "two_tower":
            state_dict = convert_state_dict(state_dict, to="grouped")
        expected = OrderedDict(param_shapes(self.fc8.out_features))
        missing, unexpected = check_state_dict(type(self).__name__, expected, state_dict, strict)
        known = {k: v for k, v in state_dict.items() if k in expected}
        super().load_state_dict(convert_state_dict(known, to="two_tower"), strict=False)
        return missing, unexpected


# ----- moving state between the two forms ---------------------------------------------------------
FORMS = ("grouped", "two_tower")


def _host(value):
    """A NumPy array of ``value`` (array, CuPy array or Tensor); no copy for NumPy data."""
    if hasattr(value, "numpy"):
        return value.numpy()
    return value.get() if hasattr(value, "get") else np.asarray(value)


def _form_of(state):
    return "two_tower" if any(k.startswith(("tower0.", "tower1.")) for k in state) else "grouped"


def convert_state_dict(state, to="grouped"):
    """Map a state dict between the grouped single-device ``AlexNet`` and ``AlexNetTwoTower``'s own
    per-tower parameters (``named_parameters``: tower0.conv1.weight, ..., tower1.fc7.bias, fc8.*).

    ``to="grouped"``: each layer's two tower halves joined along the outputs (axis 0), so a model
    trained on two devices evaluates on one. ``to="two_tower"``: each grouped layer split in half
    (views, no copy). A dict already in the target form comes back as it is. The layers' values come
    back as NumPy arrays; other keys pass through unchanged.
    """
    if to not in FORMS:
        raise ValueError(f"convert_state_dict: to must be one of {FORMS}, got {to!r}")
    if _form_of(state) == to:
        return OrderedDict(state)
    out = OrderedDict()
    split = {f"{layer}.{kind}" for layer in LAYER_NAMES[:-1] for kind in ("weight", "bias")}
    if to == "grouped":
        for key in split:
            halves = [state.get(f"tower{t}.{key}") for t in (0, 1)]
            if any(h is None for h in halves):
                raise KeyError(f"convert_state_dict: expected tower0.{key} and tower1.{key}, got only "
                               f"{[f'tower{t}.{key}' for t in (0, 1) if halves[t] is not None]}")
        for key in (k for k, _ in param_shapes()):
            if key in split:
                out[key] = np.concatenate([_host(state[f"tower{t}.{key}"]) for t in (0, 1)], axis=0)
            elif key in state:
                out[key] = _host(state[key])
        towers = {f"tower{t}.{key}" for t in (0, 1) for key in split}
        out.update((k, v) for k, v in state.items() if k not in towers and k not in out)
        return out
    for t in (0, 1):
        for key, value in state.items():
            if key in split:
                value = _host(value)
                half = value.shape[0] // 2
                out[f"tower{t}.{key}"] = value[:half] if t == 0 else value[half:]
    out.update((k, _host(v) if k.startswith("fc8.") else v) for k, v in state.items() if k not in split)
    return out


def parameter_names(form="grouped", num_classes=1000):
    """The names of ``model.parameters()``, in order, for the grouped or the two-tower model."""
    if form == "grouped":
        return [name for name, _ in param_shapes(num_classes)]
    if form == "two_tower":
        return [f"tower{t}.{layer}.{kind}" for t in (0, 1) for layer in LAYER_NAMES[:-1]
                for kind in ("weight", "bias")] + ["fc8.weight", "fc8.bias"]
    raise ValueError(f"parameter_names: form must be one of {FORMS}, got {form!r}")


def convert_parameter_list(values, to="grouped"):
    """Per-parameter arrays in the *other* form's ``parameters()`` order (e.g. SGD velocities: 30
    for the two-tower model, 16 for the grouped one) -> the same in ``to``'s order."""
    if to not in FORMS:
        raise ValueError(f"convert_parameter_list: to must be one of {FORMS}, got {to!r}")
    source = FORMS[1 - FORMS.index(to)]
    names = parameter_names(source)
    if len(values) != len(names):
        raise ValueError(f"convert_parameter_list: expected {len(names)} arrays of the {source} model, got {len(values)}")
    converted = convert_state_dict(dict(zip(names, values)), to=to)
    return [converted[name] for name in parameter_names(to)]
