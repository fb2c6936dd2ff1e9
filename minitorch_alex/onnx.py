"""ONNX export (``mt.onnx.export(model, path)``) of the paper's AlexNet, grouped or two-tower, and of
torchvision's variant, for inference in onnxruntime, TensorRT, OpenVINO, ...

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

    def lrn(self, x, hint, lrn, channels):
        """The paper's LRN (alpha on the sum) as ONNX's (alpha on the mean), per channel group."""
        attrs = dict(size=lrn.size, alpha=float(lrn.alpha * lrn.size), beta=float(lrn.beta), bias=float(lrn.k))
        if lrn.groups == 1:
            return self.node("LRN", [x], hint, **attrs)
        sizes = self.const(hint + "_split", np.full(lrn.groups, channels // lrn.groups, np.int64))
        parts = [self.name(f"{hint}_group{g}") for g in range(lrn.groups)]
        self.nodes.append(self.h.make_node("Split", [x, sizes], parts, name=self.name(hint + "_split"), axis=1))
        return self.node("Concat", [self.node("LRN", [p], hint, **attrs) for p in parts], hint + "_concat", axis=1)

    def dropout(self, x, drop, hint):
        """Evaluation-mode dropout: nothing (inverted) or the paper's multiplication by 1 - p."""
        if drop.inverted or drop.p == 0.0:
            return x
        return self.node("Mul", [x, self.const(hint + "_keep", np.array(1.0 - drop.p, np.float32))], hint)


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
    """Write ``model`` (``AlexNet``, ``AlexNetTwoTower`` or ``AlexNetTorchvision``) to the ONNX file
    ``path``: input ``images`` (N, 3, input_size, input_size) float32 with N free, output ``logits``
    (N, num_classes). ``metadata``: key -> string, the model's ``metadata_props`` (e.g.
    ``models.classifier.inference_metadata``). Returns ``path``. The file is checked with
    ``onnx.checker`` before it is kept."""
    onnx = _onnx()
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
    else:
        raise TypeError(f"mt.onnx.export: expected AlexNet, AlexNetTwoTower or AlexNetTorchvision, "
                        f"got {type(model).__name__}")
    state = {k: _host(v) for k, v in state.items()}
    g = _Graph(onnx, state)
    logits = build(g, "images")
    h = onnx.helper
    graph = h.make_graph(
        g.nodes + [h.make_node("Identity", [logits], ["logits"], name="logits")], type(model).__name__,
        [h.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["N", 3, input_size, input_size])],
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


__all__ = ["export"]
