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
from ..ops.activation import relu
from ..ops.pool import max_pool2d
from ..ops.shape import ToDevice, concat, flatten
from .alexnet import LAYER_NAMES, initial_values, param_shapes


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
    """One half of every layer (fc8 lives beside the towers, on the first device)."""

    def __init__(self, dtype, device):
        super().__init__()
        conv = lambda *a, **k: nn.Conv2d(*a, **k, dtype=dtype, device=device)  # noqa: E731
        self.conv1 = conv(3, 48, 11, stride=4, padding=2)
        self.conv2 = conv(48, 128, 5, padding=2)
        self.conv3 = conv(256, 192, 3, padding=1)  # both towers' pool2
        self.conv4 = conv(192, 192, 3, padding=1)
        self.conv5 = conv(192, 128, 3, padding=1)
        self.fc6 = nn.Linear(2 * 128 * 6 * 6, 2048, dtype=dtype, device=device)  # both towers' pool5
        self.fc7 = nn.Linear(2 * 2048, 2048, dtype=dtype, device=device)  # both towers' fc6


class AlexNetTwoTower(nn.Module):
    def __init__(self, num_classes=1000, devices=("cpu:0", "cpu:1"), dropout=0.5, paper_dropout=True, init="paper",
                 dtype=np.float32, generator=None):
        super().__init__()
        if len(devices) != 2:
            raise ValueError(f"AlexNetTwoTower: expected two devices, got {devices!r}")
        self.devices = tuple(Device(d) for d in devices)
        self.dtype = np.dtype(dtype)
        self.tower0 = Tower(dtype, self.devices[0])
        self.tower1 = Tower(dtype, self.devices[1])
        self.fc8 = nn.Linear(2 * 2048, num_classes, dtype=dtype, device=self.devices[0])
        self.lrn = nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)  # over one tower's maps
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
        xp_of = lambda p: p.numpy()  # noqa: E731  (a view on cpu devices, a host copy from a GPU)
        out = OrderedDict()
        for layer in LAYER_NAMES[:-1]:
            for kind in ("weight", "bias"):
                halves = [xp_of(getattr(getattr(tw, layer), kind)) for tw in self.towers]
                out[f"{layer}.{kind}"] = np.concatenate(halves, axis=0)
        out["fc8.weight"], out["fc8.bias"] = xp_of(self.fc8.weight), xp_of(self.fc8.bias)
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Load a state dict of the single-device ``AlexNet`` (or of this model's ``state_dict``)."""
        expected = OrderedDict(param_shapes(self.fc8.out_features))
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict for AlexNetTwoTower: missing keys {missing}, unexpected keys {unexpected}")
        mismatched = [f"{k}: expected {expected[k]}, got {tuple(np.shape(v))}" for k, v in state_dict.items()
                      if k in expected and tuple(np.shape(v)) != expected[k]]
        if mismatched:
            raise ValueError("load_state_dict for AlexNetTwoTower: shape mismatch for " + "; ".join(mismatched))
        per_tower = [OrderedDict(), OrderedDict()]
        for key, value in state_dict.items():
            if key not in expected or key.startswith("fc8."):
                continue
            value = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
            half = value.shape[0] // 2
            per_tower[0][key], per_tower[1][key] = value[:half], value[half:]
        for tw, sd in zip(self.towers, per_tower):
            tw.load_state_dict(sd, strict=False)
        self.fc8.load_state_dict({k[4:]: v for k, v in state_dict.items() if k.startswith("fc8.")}, strict=False)
        return missing, unexpected
