"""The AlexNet of torchvision (``torchvision.models.alexnet``), a second architecture.

It follows Krizhevsky's later "One weird trick" paper (2014) rather than the 2012 one: a single
tower, 64-192-384-256-256 filters, no LRN, an adaptive average pool to 6 x 6 before the
classifier, and inverted dropout *before* fc6 and fc7 (the 2012 net drops their outputs):

    features    0 conv 64@11x11/4 pad 2, 1 ReLU, 2 maxpool 3/2          3x224x224 -> 64x27x27
                3 conv 192@5x5 pad 2,   4 ReLU, 5 maxpool 3/2          -> 192x13x13
                6 conv 384@3x3 pad 1,   7 ReLU
                8 conv 256@3x3 pad 1,   9 ReLU
               10 conv 256@3x3 pad 1,  11 ReLU, 12 maxpool 3/2         -> 256x6x6
    avgpool     adaptive average to 6x6 (the identity for 224 x 224 inputs)
    classifier  0 dropout, 1 fc 9216->4096, 2 ReLU, 3 dropout, 4 fc 4096->4096, 5 ReLU,
                6 fc 4096->num_classes                                  61,100,840 parameters

The modules sit at torchvision's indices, so the state dict has torchvision's key names
(``features.0.weight`` ... ``classifier.6.bias``) and a torchvision checkpoint loads as it is,
once its tensors are NumPy arrays (``from_torchvision_state_dict``). Inputs are what torchvision
expects: RGB in [0, 1], normalised per channel by ``TORCHVISION_MEAN`` and ``TORCHVISION_STD``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from ..ops.conv import conv2d_relu
from ..ops.linear import linear_relu
from ..ops.shape import flatten
from .alexnet import draw_values

TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


# the layers in the places of the paper's conv2, conv4, conv5, fc6, fc7 (bias 1 under init="paper")
BIAS_ONE = ("features.3", "features.8", "features.10", "classifier.1", "classifier.4")


class AlexNetTorchvision(nn.Module):
    input_sizes = (63, None)  # the smallest input side (the adaptive pool takes any larger one)

    """``init``: "torchvision" (PyTorch's default U(+-1/sqrt(fan_in)) for weights and biases), or
    the paper's AlexNet rules "paper" / "kaiming" (``alexnet.initial_values``) on the same layers."""

    def __init__(self, num_classes=1000, dropout=0.5, init="torchvision", dtype=np.float32, device=None,
                 generator=None):
        super().__init__()
        if init not in ("torchvision", "paper", "kaiming"):
            raise ValueError(f"AlexNetTorchvision: init must be 'torchvision', 'paper' or 'kaiming', got {init!r}")
        conv = lambda *a, **k: nn.Conv2d(*a, **k, dtype=dtype, device=device)  # noqa: E731
        fc = lambda *a: nn.Linear(*a, dtype=dtype, device=device)  # noqa: E731
        self.features = nn.Sequential(
            conv(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            conv(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            conv(192, 384, 3, padding=1), nn.ReLU(),
            conv(384, 256, 3, padding=1), nn.ReLU(),
            conv(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), fc(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(dropout), fc(4096, 4096), nn.ReLU(),
            fc(4096, num_classes),
        )
        if init != "torchvision":
            shapes = [(name, p.shape) for name, p in self.named_parameters()]
            self.load_state_dict(draw_values(shapes, BIAS_ONE, "classifier.6", init, dtype, generator))

    @property
    def num_classes(self):
        return self.classifier[6].out_features

    def forward(self, x):
        """(N, 3, H, W), H and W >= 63 (224 as torchvision) -> (N, num_classes) logits."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"AlexNetTorchvision: expected input of shape (N, 3, 224, 224), got {x.shape}")
        x = _run_fused(self.features, x)
        return _run_fused(self.classifier, flatten(self.avgpool(x), 1))


def _run_fused(seq, x):
    """Run a Sequential, taking each conv/linear + ReLU pair as one fused op (same values)."""
    mods = list(seq)
    i = 0
    while i < len(mods):
        m = mods[i]
        if i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU) and isinstance(m, (nn.Conv2d, nn.Linear)):
            x = (conv2d_relu(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups) if isinstance(m, nn.Conv2d)
                 else linear_relu(x, m.weight, m.bias))
            i += 2
        else:
            x = m(x)
            i += 1
    return x


def from_torchvision_state_dict(state):
    """torchvision's ``AlexNet().state_dict()``, or any torch state dict such as one with batch-norm
    buffers (``running_mean``, ``running_var``, the 0-d int64 ``num_batches_tracked``), as torch
    tensors or arrays -> NumPy arrays under the same names and shapes, ready for ``load_state_dict``
    of the same layers here. Duck-typed: torch is not imported."""
    out = OrderedDict()
    for key, value in state.items():
        if hasattr(value, "detach"):  # a torch tensor: to host NumPy without importing torch
            value = value.detach().cpu().numpy()
        out[key] = np.array(value, order="C")  # a copy; ascontiguousarray made a 0-d num_batches_tracked 1-d
    return out
