"""ONNX export (``mt.onnx.export(model, path)``) of the paper's AlexNet, grouped or two-tower, of
torchvision's variant, and of an ``nn.Sequential`` of the layers in ``LAYERS`` (one mapping per
layer type: a new layer adds one entry), for inference in onnxruntime, TensorRT, OpenVINO, ...

    import minitorch_alex as mt
    model = mt.models.alexnet()            # or alexnet(devices=("cuda:0", "cuda:1")), alexnet_torchvision()
    mt.onnx.export(model, "alexnet.onnx")  # input "images" (N, 3, 224, 224) float32, output "logits"

The graph is the model in evaluation mode (dropout is the identity, or the paper's test-time
multiplication by 1 - p), written node by node with the ``onnx`` package's helpers; weights are
stored as float32 initializers. Two conventions differ from this framework's and are converted:

* **LRN.** ONNX's ``LRN`` computes ``x / (bias + alpha / size * sum(x^2)) ^ beta``: its alpha
  multiplies the window's *mean*. The paper's (and ``nn.LocalResponseNorm``'s) alpha multiplies the
  *sum*, so the exported alpha is ``alpha * size`` (5e-4 for the paper's 1e-4).
* **Grouped LRN.** ONNX's LRN has no groups; the paper's towers normalise within their own half of
  the channels, so a ``groups=2`` LRN is exported as Split -> LRN, LRN -> Concat.

* **Batch normalisation.** ``BatchNormalization`` in inference form: the layer's weight, bias
  and running mean and variance (buffers) as initializers, its eps; the graph is evaluation mode.

The two-tower model exports as the grouped graph: its state dict is already the grouped model's,
and the grouped network computes the same function on one device.

Needs the ``onnx`` package (``pip install onnx``; the ``dev`` extra has it and onnxruntime); it
is imported only when ``export`` is called.
"""
from __future__ import annotations

import numpy as np

from .models.alexnet import AlexNet, layers
from .models.alexnet_torchvision import AlexNetTorchvision
from .models.two_tower import AlexNetTwoTower, convert_state_dict
from .nn import layers as nn_layers
from .serialization import _host

OPSET = 17


def _onnx():
    try:
        import onnx  # noqa: PLC0415 (optional dependency)
    except ImportError as exc:
        raise RuntimeError("mt.onnx.export needs the onnx package: pip install onnx (or the 'dev' extra)") from exc
    return onnx


class _Graph:
    """Nodes and float32 initializers, each output named after the layer that makes it."""

    def __init__(self, onnx, state):
        self.onnx, self.h, self.state = onnx, onnx.helper, state
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, hint, array):
        name = self.name(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, hint, **attrs):
        out = self.name(hint)
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def param(self, key):
        return self.const(key, np.asarray(self.state[key], dtype=np.float32))

    def conv(self, x, layer, stride, padding, groups=1, relu=True):
        w = self.param(f"{layer}.weight")
        k = self.state[f"{layer}.weight"].shape[-1]
        y = self.node("Conv", [x, w, self.param(f"{layer}.bias")], layer, kernel_shape=[k, k],
                      strides=[stride, stride], pads=[padding] * 4, group=groups)
        return self.node("Relu", [y], layer + "_relu") if relu else y

    def fc(self, x, layer, relu=True):
        y = self.node("Gemm", [x, self.param(f"{layer}.weight"), self.param(f"{layer}.bias")], layer, transB=1)
        return self.node("Relu", [y], layer + "_relu") if relu else y

    def maxpool(self, x, hint):
        return self.node("MaxPool", [x], hint, kernel_shape=[3, 3], strides=[2, 2])

    def lrn(self, x, hint, lrn, channels=None):
        """The paper's LRN (alpha on the sum) as ONNX's (alpha on the mean), per channel group
        (``channels`` None: ONNX's Split cuts the channels into equal groups itself)."""
        attrs = dict(size=lrn.size, alpha=float(lrn.alpha * lrn.size), beta=float(lrn.beta), bias=float(lrn.k))
        if lrn.groups == 1:
            return self.node("LRN", [x], hint, **attrs)
        sizes = [] if channels is None else [self.const(hint + "_split", np.full(lrn.groups, channels // lrn.groups,
                                                                                   np.int64))]
        parts = [self.name(f"{hint}_group{g}") for g in range(lrn.groups)]
        self.nodes.append(self.h.make_node("Split", [x, *sizes], parts, name=self.name(hint + "_split"), axis=1))
        return self.node("Concat", [self.node("LRN", [p], hint, **attrs) for p in parts], hint + "_concat", axis=1)

    def dropout(self, x, drop, hint):
        """Evaluation-mode dropout: nothing (inverted) or the paper's multiplication by 1 - p."""
        if drop.inverted or drop.p == 0.0:
            return x
        return self.node("Mul", [x, self.const(hint + "_keep", np.array(1.0 - drop.p, np.float32))], hint)


def _conv_layer(g, x, name, conv):
    inputs = [x, g.param(f"{name}.weight")] + ([g.param(f"{name}.bias")] if conv.bias is not None else [])
    return g.node("Conv", inputs, name, kernel_shape=list(conv.kernel_size), strides=list(conv.stride),
                  pads=list(conv.padding) * 2, dilations=list(conv.dilation), group=conv.groups)


def _linear_layer(g, x, name, fc):
    inputs = [x, g.param(f"{name}.weight")] + ([g.param(f"{name}.bias")] if fc.bias is not None else [])
    return g.node("Gemm", inputs, name, transB=1)


def _pool_layer(g, x, name, pool):
    k = pool.kernel_size if isinstance(pool.kernel_size, (tuple, list)) else (pool.kernel_size,) * 2
    stride = k if pool.stride is None else pool.stride if isinstance(pool.stride, (tuple, list)) else (pool.stride,) * 2
    pad = pool.padding if isinstance(pool.padding, (tuple, list)) else (pool.padding,) * 2
    dilation = pool.dilation if isinstance(pool.dilation, (tuple, list)) else (pool.dilation,) * 2
    return g.node("MaxPool", [x], name, kernel_shape=list(k), strides=list(stride), pads=list(pad) * 2,
                  dilations=list(dilation), ceil_mode=int(bool(pool.ceil_mode)))


def _flatten_layer(g, x, name, flat):
    if flat.end_dim != -1:
        raise ValueError(f"mt.onnx.export: layer {name}: Flatten(end_dim={flat.end_dim}) has no ONNX Flatten "
                         "(expected end_dim=-1)")
    return g.node("Flatten", [x], name, axis=flat.start_dim)


def _batchnorm_layer(g, x, name, bn):
    """Evaluation mode: normalised by the running statistics (the layer's buffers)."""
    if bn.running_mean is None:
        raise ValueError(f"mt.onnx.export: layer {name}: {type(bn).__name__}(track_running_stats=False) normalises "
                         "by each batch's statistics in evaluation too (expected running statistics to export)")
    c = bn.num_features
    scale = g.param(f"{name}.weight") if bn.affine else g.const(f"{name}.weight", np.ones(c, np.float32))
    bias = g.param(f"{name}.bias") if bn.affine else g.const(f"{name}.bias", np.zeros(c, np.float32))
    return g.node("BatchNormalization", [x, scale, bias, g.param(f"{name}.running_mean"),
                                         g.param(f"{name}.running_var")], name, epsilon=float(bn.eps))


# layer type -> f(graph, input name, layer's name in the Sequential, layer) -> output name
LAYERS = {
    nn_layers.Conv2d: _conv_layer,
    nn_layers.Linear: _linear_layer,
    nn_layers.ReLU: lambda g, x, name, layer: g.node("Relu", [x], name),
    nn_layers.MaxPool2d: _pool_layer,
    nn_layers.LocalResponseNorm: lambda g, x, name, layer: g.lrn(x, name, layer),
    nn_layers.Dropout: lambda g, x, name, layer: g.dropout(x, layer, name),
    nn_layers.Flatten: _flatten_layer,
    nn_layers.BatchNorm1d: _batchnorm_layer,
    nn_layers.BatchNorm2d: _batchnorm_layer,
}


def _sequential_graph(g, model, x):
    """An ``nn.Sequential`` layer by layer, each through its ``LAYERS`` mapping."""
    for name, layer in model._modules.items():
        to_onnx = LAYERS.get(type(layer))
        if to_onnx is None:
            raise TypeError(f"mt.onnx.export: layer {name} is a {type(layer).__name__}, which has no ONNX mapping "
                            f"(expected one of {', '.join(sorted(t.__name__ for t in LAYERS))})")
        x = to_onnx(g, x, name, layer)
    return x


def _paper_graph(g, model, x):
    """The grouped AlexNet's evaluation graph (for AlexNet and AlexNetTwoTower alike)."""
    table = {layer.name: layer for layer in layers(model.fc8.out_features)}
    lrn_groups = model.lrn.groups if isinstance(model, AlexNet) else 2  # two-tower: each tower's own maps
    lrn = type("LRN", (), dict(size=model.lrn.size, alpha=model.lrn.alpha, beta=model.lrn.beta, k=model.lrn.k,
                                groups=lrn_groups))
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        layer = table[name]
        x = g.conv(x, name, layer.stride, layer.padding, layer.groups)
        if name in ("conv1", "conv2"):
            x = g.lrn(x, name + "_lrn", lrn, layer.out_features)
        if name in ("conv1", "conv2", "conv5"):
            x = g.maxpool(x, name.replace("conv", "pool"))
    x = g.fc(g.node("Flatten", [x], "flatten", axis=1), "fc6")
    x = g.fc(g.dropout(x, model.drop, "drop6"), "fc7")
    return g.fc(g.dropout(x, model.drop, "drop7"), "fc8", relu=False)


def _torchvision_graph(g, model, x, side):
    """torchvision's AlexNet; the adaptive average pool becomes a fixed AveragePool for ``side``."""
    f = model.features
    for i in (0, 3, 6, 8, 10):
        x = g.conv(x, f"features.{i}", f[i].stride[0], f[i].padding[0])
        if i in (0, 3, 10):
            x = g.maxpool(x, f"features.{i + 2}")
    c1 = f[0]
    pooled = (side + 2 * c1.padding[0] - c1.kernel_size[0]) // c1.stride[0] + 1  # the other convs keep the size
    for _ in range(3):  # three 3/2 max pools
        pooled = (pooled - 3) // 2 + 1
    out = model.avgpool.output_size
    out = out[0] if not isinstance(out, int) else out
    if pooled % out:
        raise ValueError(f"mt.onnx.export: the adaptive pool maps {pooled}x{pooled} to {out}x{out} with uneven bins, "
                         f"which ONNX cannot express; export for an input side whose pool5 is a multiple of {out}")
    if pooled != out:
        k = pooled // out
        x = g.node("AveragePool", [x], "avgpool", kernel_shape=[k, k], strides=[k, k])
    x = g.node("Flatten", [x], "flatten", axis=1)
    x = g.fc(x, "classifier.1")
    x = g.fc(x, "classifier.4")
    return g.fc(x, "classifier.6", relu=False)


def export(model, path, input_size=224, opset=OPSET, metadata=None):
    """Write ``model`` (``AlexNet``, ``AlexNetTwoTower``, ``AlexNetTorchvision``, or an
    ``nn.Sequential`` of ``LAYERS`` starting with a ``Conv2d``) to the ONNX file ``path``, in
    evaluation mode: input ``images`` (N, 3 or the Conv2d's in_channels, input_size, input_size)
    float32 with N free, output ``logits`` (N, num_classes: the last Linear's out_features).
    ``metadata``: key -> string, the model's ``metadata_props`` (e.g.
    ``models.classifier.inference_metadata``). Returns ``path``. The file is checked with
    ``onnx.checker`` before it is kept."""
    onnx = _onnx()
    in_channels = 3
    if isinstance(model, (AlexNet, AlexNetTwoTower)):
        state = convert_state_dict(model.state_dict(), to="grouped")
        num_classes = model.fc8.out_features
        build = lambda g, x: _paper_graph(g, model, x)  # noqa: E731
        if input_size != 224:
            raise ValueError(f"mt.onnx.export: the paper's AlexNet takes 224 x 224 inputs (fc6 reads 256x6x6), "
                             f"got input_size={input_size}")
    elif isinstance(model, AlexNetTorchvision):
        state = model.state_dict()
        num_classes = model.num_classes
        build = lambda g, x: _torchvision_graph(g, model, x, input_size)  # noqa: E731
    elif isinstance(model, nn_layers.Sequential) and len(model) and isinstance(model[0], nn_layers.Conv2d):
        state = model.state_dict()
        in_channels = model[0].in_channels
        last = [m for m in model if isinstance(m, nn_layers.Linear)]
        num_classes = last[-1].out_features if last else "classes"
        build = lambda g, x: _sequential_graph(g, model, x)  # noqa: E731
    else:
        raise TypeError(f"mt.onnx.export: expected AlexNet, AlexNetTwoTower, AlexNetTorchvision or an nn.Sequential "
                        f"starting with a Conv2d, got {type(model).__name__}")
    state = {k: _host(v) for k, v in state.items()}
    g = _Graph(onnx, state)
    logits = build(g, "images")
    h = onnx.helper
    graph = h.make_graph(
        g.nodes + [h.make_node("Identity", [logits], ["logits"], name="logits")], type(model).__name__,
        [h.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["N", in_channels, input_size, input_size])],
        [h.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", num_classes])], g.inits)
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], producer_name="minitorch_alex")
    if metadata:
        h.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(proto)
    _write_atomic(path, proto.SerializeToString())
    return path


def _write_atomic(path, data: bytes):
    """Write through the package's one atomic-write path: never half a model file (the folder
    must exist: a missing one is an error, not created behind the caller's back)."""
    from .serialization import write_atomic

    write_atomic(path, data)


__all__ = ["LAYERS", "export"]
