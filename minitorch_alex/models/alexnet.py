"""AlexNet exactly as in Krizhevsky, Sutskever and Hinton (NIPS 2012), on one device.

The paper split every layer over two GPUs ("towers"); on one device the split is expressed by
``groups=2``: conv2, conv4 and conv5 see only their own tower's maps, and LRN normalises
within each tower's half of the channels. conv3 and the fully connected layers see both towers.

    input            3 x 224 x 224
    conv1 96@11x11/4, pad 2 -> ReLU -> LRN -> maxpool 3/2      96 x 55 x 55 -> 96 x 27 x 27
    conv2 256@5x5, pad 2, groups 2 -> ReLU -> LRN -> maxpool   256 x 27 x 27 -> 256 x 13 x 13
    conv3 384@3x3, pad 1 -> ReLU                                384 x 13 x 13
    conv4 384@3x3, pad 1, groups 2 -> ReLU                      384 x 13 x 13
    conv5 256@3x3, pad 1, groups 2 -> ReLU -> maxpool 3/2       256 x 13 x 13 -> 256 x 6 x 6
    fc6 9216 -> 4096 -> ReLU -> dropout
    fc7 4096 -> 4096 -> ReLU -> dropout
    fc8 4096 -> num_classes                                     60,965,224 parameters (1000 classes)

Why conv1 has padding 2: the paper says 224 x 224 inputs and 55 x 55 conv1 outputs, which
(224 - 11) / 4 + 1 = 54.25 cannot give; with 2 pixels of padding (224 + 4 - 11) // 4 + 1 = 55.
(cuda-convnet and Caffe instead fed 227 x 227 crops with no padding; the output is the same.)

Dropout: the paper drops units of the two 4096-wide layers (i.e. the inputs of fc7 and fc8)
and multiplies their outputs by 0.5 at test time; ``paper_dropout=False`` switches to
PyTorch's inverted dropout, which gives the same network in expectation.

Initialisation (section 5): every weight N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6
and fc7 (to give the ReLUs positive inputs early on), 0 in conv1, conv3 and fc8.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import nn
from .. import random as mt_random
from ..ops.conv import conv2d_relu
from ..ops.linear import linear_relu
from ..ops.pool import max_pool2d
from ..ops.shape import flatten


@dataclass(frozen=True)
class Layer:
    """One learned layer of the paper's AlexNet as the grouped single-device model holds it.

    ``kernel`` 0 means fully connected. ``groups`` 2: each tower sees only its own half of the
    input (conv2, conv4, conv5). ``split``: the outputs are divided between the towers (every
    layer but fc8, which sits on the first device). ``bias_one``: the paper's bias of 1.
    """

    name: str
    in_features: int  # input channels (conv) or features (fc)
    out_features: int
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    groups: int = 1
    bias_one: bool = False
    split: bool = True

    def weight_shape(self):
        """(out, in/groups, k, k) for a conv, (out, in) for a fully connected layer."""
        if self.kernel:
            return (self.out_features, self.in_features // self.groups, self.kernel, self.kernel)
        return (self.out_features, self.in_features)

    def tower_half(self):
        """The layer one tower of the two-device model holds: half the outputs; a groups=2 layer
        reads its own tower's half of the inputs, so it becomes an ungrouped one on half of them."""
        return replace(self, in_features=self.in_features // self.groups, out_features=self.out_features // 2, groups=1)

    def build(self, dtype=np.float32, device=None):
        """A fresh ``nn.Conv2d`` or ``nn.Linear`` of this shape (values set by ``initial_values``)."""
        if self.kernel:
            return nn.Conv2d(self.in_features, self.out_features, self.kernel, stride=self.stride,
                             padding=self.padding, groups=self.groups, dtype=dtype, device=device)
        return nn.Linear(self.in_features, self.out_features, dtype=dtype, device=device)


# The one statement of the architecture: the grouped model, the two-tower model, param_shapes,
# initial_values and the ONNX exporter all read it.
LAYERS = (
    Layer("conv1", 3, 96, 11, stride=4, padding=2),
    Layer("conv2", 96, 256, 5, padding=2, groups=2, bias_one=True),
    Layer("conv3", 256, 384, 3, padding=1),
    Layer("conv4", 384, 384, 3, padding=1, groups=2, bias_one=True),
    Layer("conv5", 384, 256, 3, padding=1, groups=2, bias_one=True),
    Layer("fc6", 256 * 6 * 6, 4096, bias_one=True),
    Layer("fc7", 4096, 4096, bias_one=True),
    Layer("fc8", 4096, 1000, split=False),
)
LAYER_NAMES = tuple(layer.name for layer in LAYERS)
BIAS_ONE = tuple(layer.name for layer in LAYERS if layer.bias_one)
LRN = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)  # section 3.3; alpha multiplies the sum


def layers(num_classes=1000):
    """``LAYERS`` with fc8 sized for ``num_classes``."""
    return LAYERS[:-1] + (replace(LAYERS[-1], out_features=num_classes),)


class AlexNet(nn.Module):
    # the smallest and largest input side for which pool5 is 6 x 6, as fc6 takes (the paper's 224 among them);
    # the Trainer checks the crops against them
    input_sizes = (223, 254)

    def __init__(self, num_classes=1000, dropout=0.5, paper_dropout=True, lrn_groups=2, init="paper",
                 dtype=np.float32, device=None, generator=None):
        super().__init__()
        for layer in layers(num_classes):
            setattr(self, layer.name, layer.build(dtype, device))
        self.lrn = nn.LocalResponseNorm(**LRN, groups=lrn_groups)
        self.drop = nn.Dropout(dropout, inverted=not paper_dropout)
        self.reset_parameters(init, generator)

    def reset_parameters(self, init="paper", generator=None):
        """Draw every parameter (see ``initial_values``) in the order of ``param_shapes``: weights
        into their host arrays in place, others loaded as each is drawn, so the build never holds
        a second copy of the weights (nor leaves freed holes that the forward cannot reuse)."""
        shapes = param_shapes(self.fc8.out_features)
        own = {k: p.data for k, p in self.named_parameters()}
        for name, value in iter_values(shapes, BIAS_ONE, "fc8", init, self.conv1.weight.dtype, generator, out=own):
            if value is not own[name]:
                self.load_state_dict({name: value}, strict=False)

    def stages(self, x):
        """Run the network on ``x`` (N, 3, 224, 224), yielding ``(name, output)`` after each stage:
        conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5, fc6, fc7, fc8 (the logits)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"AlexNet: expected input of shape (N, 3, 224, 224), got {x.shape}")
        x = self.lrn(_conv_relu(self.conv1, x))
        yield "conv1", x
        x = max_pool2d(x, 3, 2)
        yield "pool1", x
        x = self.lrn(_conv_relu(self.conv2, x))
        yield "conv2", x
        x = max_pool2d(x, 3, 2)
        yield "pool2", x
        x = _conv_relu(self.conv3, x)
        yield "conv3", x
        x = _conv_relu(self.conv4, x)
        yield "conv4", x
        x = _conv_relu(self.conv5, x)
        yield "conv5", x
        x = max_pool2d(x, 3, 2)
        yield "pool5", x
        x = _linear_relu(self.fc6, flatten(x, 1))
        yield "fc6", x
        x = _linear_relu(self.fc7, self.drop(x))
        yield "fc7", x
        yield "fc8", self.fc8(self.drop(x))

    def forward(self, x):
        """(N, 3, 224, 224) -> (N, num_classes) logits."""
        out = x
        for _, out in self.stages(x):  # noqa: B007  (each stage's output replaces the last: the logits remain)
            pass
        return out


def _conv_relu(conv, x):
    """relu(conv(x)); with the 'fast' CPU backend one fused op (bias + ReLU written with the
    output, the ReLU's mask applied as the gradient is read), else the two ops."""
    return conv2d_relu(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _linear_relu(fc, x):
    return linear_relu(x, fc.weight, fc.bias)


def param_shapes(num_classes=1000):
    """(name, shape) of every parameter of the single-device AlexNet, in order."""
    return [(f"{layer.name}.{kind}", layer.weight_shape() if kind == "weight" else (layer.out_features,))
            for layer in layers(num_classes) for kind in ("weight", "bias")]


def initial_values(num_classes=1000, init="paper", dtype=np.float32, generator=None):
    """A state dict of freshly initialised parameters (host arrays).

    ``init="paper"``: every weight N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6, fc7 and
    0 elsewhere (section 5). ``init="kaiming"``: weights N(0, 2 / fan_in) (He et al., 2015)
    except fc8, which keeps N(0, 0.01^2) so the first logits are near zero, and zero biases.
    With inputs of unit scale it skips the long slow start of the paper's initialisation, for
    short runs. (The paper's biases of 1 were there to make tiny-weight ReLUs fire; on top of He
    weights they push every layer's output up, and the first steps blow up.)
    """
    return draw_values(param_shapes(num_classes), BIAS_ONE, "fc8", init, dtype, generator)


def draw_values(shapes, bias_one, last, init="paper", dtype=np.float32, generator=None):
    """``initial_values``'s rules for any layer list: ``shapes`` (name, shape) pairs named
    ``<layer>.weight``/``<layer>.bias``, ``bias_one`` the layers whose paper bias is 1, ``last`` the
    classifier layer (N(0, 0.01^2) under "kaiming" too)."""
    return dict(iter_values(shapes, bias_one, last, init, dtype, generator))


def iter_values(shapes, bias_one, last, init="paper", dtype=np.float32, generator=None, out=None):
    """``draw_values``'s (name, array) pairs, in order, each drawn when asked for (a bad ``init``
    raises at the first). ``out``: name -> host array that a weight is drawn into in place when
    it fits (``mt_random.normal``)."""
    if init not in ("paper", "kaiming"):
        raise ValueError(f"init must be 'paper' or 'kaiming', got {init!r}")
    for name, shape in shapes:
        layer, kind = name.rsplit(".", 1)
        if kind == "bias":
            one = init == "paper" and layer in bias_one
            yield name, np.full(shape, 1.0 if one else 0.0, dtype)
        else:
            std = 0.01 if init == "paper" or layer == last else nn.init.kaiming_std(shape, nonlinearity="relu")
            yield name, mt_random.normal(shape, 0.0, std, dtype, generator=generator, out=(out or {}).get(name))

