"""One declaration per op (the idea of PyTorch's OpInfo): every per-op check iterates ``SPECS``.

An ``OpSpec`` holds what the checks need to know of an op, and nothing else:

* ``call(*tensors, **params)``: the public call (``minitorch_alex.nn.functional``);
* ``op``: its name in ``minitorch_alex.dispatch.TABLE`` (a hot op with numba and CUDA forms), or
  None for an op the reference alone implements; ``kernel_params(params)``: the keyword
  arguments of the implementation classes' ``forward`` (the same as ``params`` unless the public
  call translates them, as dropout's ``p``/``inverted`` become a ``scale``);
* ``cases``: a hypothesis strategy of ``Case``s for the comparisons (float64 values, cast to each
  dtype by the check); ``gradcheck``: a strategy of cases in the domain where a central
  difference is valid (away from ReLU kinks and max-pool ties), or None with ``gradcheck_note``;
* ``torch(*torch_tensors, **params)``: the PyTorch twin, with any convention translation (the
  paper's LRN alpha is not divided by the window, PyTorch's is; grouped LRN is PyTorch's on each
  group; dropout's given keep-mask and scale), or None;
* ``reference_float16``: whether the reference code itself is checked in float16 (on CuPy);
* ``state``: positions of the call's arrays that are state the op updates in place (BatchNorm's
  running mean and variance): never differentiated, kept in float32 or wider (as under mixed
  precision), and compared after the call where the other inputs' gradients are;
  ``gradcheck_eps``: the central difference's step;
* ``examples``: fixed cases the backends run besides the drawn ones (their ``meta`` may hold the
  ``kernel_scales`` they are held to); ``fused_relu_of``: a fused op's unfused spec;
* ``kernel_tol``/``torch_tol`` per dtype (``strategies.KERNEL_TOL``/``TORCH_TOL``) and
  ``kernel_scales``/``torch_scales(case, dtype)``: the atol multiplier of the output and of each
  input's gradient (the last repeats), about the square root of the terms in each sum.

The checks (``tests/ops/test_op_gradcheck.py``, ``test_op_vs_torch.py``, ``test_op_backends.py``,
``tests/kernels/cuda/test_cuda_emulated.py``, ``tests/kernels/cuda/test_gpu.py`` and the op
section of ``benchmarks/gpu_check.py``) parametrize over spec x backend x dtype. A new op needs
its implementations, one entry here, and its docs.

This module imports neither PyTorch nor numba nor CuPy: ``benchmarks/gpu_check.py`` imports it
on a GPU machine (``tests/`` on ``sys.path``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from strategies import KERNEL_TOL, TORCH_TOL, conv_arrays, conv_geometries, distinct_values, pool_geometries

import minitorch_alex.nn.functional as F


@dataclass
class Case:
    """One input of an op: ``arrays`` (float64 NumPy arrays, None for an absent optional input
    such as a bias), ``params`` (the public call's keyword arguments) and ``meta`` (what the
    tolerance scales need to know and the call does not take)."""

    arrays: list
    params: dict
    meta: dict = field(default_factory=dict)


def _ones(case, dtype):
    return (1.0,)


@dataclass(frozen=True)
class OpSpec:
    name: str
    call: Callable
    cases: Any  # a hypothesis strategy of Case
    op: str | None = None
    kernel_params: Callable = dict  # params -> the implementation classes' forward keywords
    gradcheck: Any = None  # a strategy of Case in the finite-difference domain, or None
    gradcheck_note: str = ""
    torch: Callable | None = None
    kernel_tol: dict = field(default_factory=lambda: KERNEL_TOL)
    kernel_scales: Callable = _ones
    torch_tol: dict = field(default_factory=lambda: TORCH_TOL)
    torch_scales: Callable = _ones
    # fixed cases every backend runs besides the drawn ones (paths a draw rarely takes, e.g. Winograd)
    examples: tuple = ()
    # a fused op's unfused spec: where rounding may move an output across the ReLU's kink (float32
    # and below), a kernel is compared with relu(unfused) and differentiated at its own output
    fused_relu_of: str | None = None
    # is the reference code, run in float16 (on CuPy), within float16's tolerance of float64? Not
    # where it sums many terms or raises to a power in half precision (convolution, LRN, softmax)
    reference_float16: bool = True
    state: tuple = ()
    gradcheck_eps: float = 1e-6

    def __repr__(self):  # the test ids
        return self.name

    def run(self, tensors, params):
        """The public call on ``tensors`` (None where the case has no array)."""
        return self.call(*tensors, **params)


def seeds():
    return st.integers(0, 2**16)


# ----- convolution ----------------------------------------------------------------------------------
def conv_case(geo, bias, seed):
    """A conv2d Case of a ``strategies.conv_geometries`` draw (standard normal values from ``seed``)."""
    x, w, b = conv_arrays(geo, bias, np.random.default_rng(seed))
    params = dict(stride=geo["stride"], padding=geo["padding"], groups=geo["groups"])
    if geo.get("dilation", (1, 1)) != (1, 1):
        params["dilation"] = geo["dilation"]
    return Case([x, w, b], params, dict(geo=geo))


def _conv_cases(bias=None, **bounds):
    return st.builds(conv_case, conv_geometries(**bounds), st.booleans() if bias is None else bias, seeds())


def _out_hw(geo):
    return [(s + 2 * p - d * (k - 1) - 1) // st_ + 1
            for s, k, st_, p, d in zip((geo["h"], geo["w"]), geo["k"], geo["stride"], geo["padding"],
                                       geo.get("dilation", (1, 1)))]


# Winograd F(5x5, 3x3)'s float32 error (see tests/kernels/cpu/test_cpu_kernels.py's ATOL_FACTOR)
LOOSE = {np.float32: 5.0, np.float64: 1.0}


def _conv_kernel_scales(case, dtype):
    geo = case.meta["geo"]
    loose = LOOSE[np.dtype(dtype).type]
    taps = np.sqrt(case.arrays[1][0].size)
    area = np.sqrt(geo["n"] * np.prod(_out_hw(geo)))  # the terms of each weight or bias gradient sum
    return (taps * loose, taps * loose, area * loose, area)


def _conv_torch_scales(case, dtype):
    geo = case.meta["geo"]
    taps = np.sqrt(case.arrays[1][0].size)
    area = geo["n"] * np.prod(_out_hw(geo))  # terms in each weight-gradient sum, per input tap
    return (taps, taps, taps * np.sqrt(area), np.sqrt(area))


def _torch_conv(x, w, b, stride, padding, groups, dilation=1):
    import torch

    return torch.nn.functional.conv2d(x, w, b, stride, padding, dilation, groups)


# ----- linear ---------------------------------------------------------------------------------------
def _linear_case(n, fin, fout, bias, seed):
    rng = np.random.default_rng(seed)
    return Case([rng.standard_normal((n, fin)), rng.standard_normal((fout, fin)),
                 rng.standard_normal(fout) if bias else None], {}, dict(n=n, fin=fin, fout=fout))


def _linear_cases(n, fin, fout, bias=None):
    return st.builds(_linear_case, st.integers(1, n), st.integers(1, fin), st.integers(1, fout), st.booleans() if bias is None else bias,
                     seeds())


# a fused op is one node only with a bias: without, the public call is the two ops (their own specs)
FUSED_BIAS = st.just(True)


def _linear_scales(case, dtype):
    m = case.meta
    return (np.sqrt(m["fin"]), np.sqrt(m["fout"]), np.sqrt(m["n"]))


def _torch_linear(x, w, b):
    import torch

    return torch.nn.functional.linear(x, w, b)


def _torch_relu_of(fn):
    def twin(*args, **params):
        import torch

        return torch.relu(fn(*args, **params))

    return twin


# ----- max-pool -------------------------------------------------------------------------------------
def _pool_case(geo, seed):
    x = distinct_values(np.random.default_rng(seed), geo["shape"])  # no ties: one winner in every dtype
    params = dict(kernel_size=geo["k"], stride=geo["stride"], padding=geo["padding"])
    if geo["dilation"] != (1, 1):
        params["dilation"] = geo["dilation"]
    return Case([x], params, dict(geo=geo))


def _torch_pool(x, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    import torch

    return torch.nn.functional.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)


# ----- local response normalisation -----------------------------------------------------------------
def _lrn_case(size, groups, c_per_group, hw, alpha, beta, k, seed):
    x = np.random.default_rng(seed).standard_normal((2, groups * c_per_group, *hw)) * 3
    return Case([x], dict(size=size, alpha=alpha, beta=beta, k=k, groups=groups))


def _torch_lrn(x, size, alpha, beta, k, groups):
    """PyTorch averages over the window: its alpha is the paper's times ``size``; a grouped LRN is
    PyTorch's on each group of channels."""
    import torch

    parts = x.split(x.shape[1] // groups, dim=1)
    return torch.cat([torch.nn.functional.local_response_norm(p, size, alpha=alpha * size, beta=beta, k=k)
                      for p in parts], 1)


# ----- relu, softmax, cross-entropy -----------------------------------------------------------------
def _shapes(max_side, max_dims, min_dims=1):
    return st.lists(st.integers(1, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def _distinct_case(shape, seed):
    return Case([distinct_values(np.random.default_rng(seed), shape)], {})


def _torch_relu(x):
    import torch

    return torch.relu(x)


@st.composite
def _softmax_cases(draw, max_side, max_dims, scale, axes=None):
    shape = draw(_shapes(max_side, max_dims))
    axis = draw(st.sampled_from(axes or range(-len(shape), len(shape))))
    x = np.random.default_rng(draw(seeds())).standard_normal(shape) * scale
    return Case([x], dict(axis=axis))


def _torch_softmax(x, axis):
    import torch

    return torch.softmax(x, dim=axis)


def _torch_log_softmax(x, axis):
    import torch

    return torch.log_softmax(x, dim=axis)


def _cross_entropy_case(n, c, scale, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) * scale
    return Case([logits], dict(target=rng.integers(0, c, n)), dict(scale=scale))


def _torch_cross_entropy(z, target):
    import torch

    return torch.nn.functional.cross_entropy(z, torch.from_numpy(target))


# ----- dropout --------------------------------------------------------------------------------------
def _dropout_case(shape, p, inverted, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    keep = rng.random(shape) >= p  # a boolean keep-mask, which the kernels take
    return Case([x], dict(p=p, mask=keep, inverted=inverted, training=True))


def _dropout_scale(p, inverted):
    return 1.0 / (1.0 - p) if inverted and p < 1.0 else 1.0  # as F.dropout computes it


def _dropout_kernel_params(params):
    return dict(mask=params["mask"], scale=_dropout_scale(params["p"], params["inverted"]))


def _torch_dropout_given_mask(x, p, mask, inverted, training):
    """PyTorch's dropout draws its own mask: its arithmetic with ours (keep, scaled by 1/(1-p)
    when inverted)."""
    import torch

    return x * (torch.from_numpy(mask).to(x.dtype) * _dropout_scale(p, inverted)) if training else x


def _dropout_eval_case(shape, p, inverted, seed):
    return Case([np.random.default_rng(seed).standard_normal(shape)], dict(p=p, inverted=inverted, training=False))


def _torch_dropout_eval(x, p, inverted, training):
    """PyTorch's inverted dropout is the identity at test time; the paper's scales by 1 - p."""
    import torch

    return torch.nn.functional.dropout(x, p, training=False) if inverted else x * (1 - p)


# ----- batch normalisation ---------------------------------------------------------------------------
@st.composite
def _batch_norm_cases(draw, max_side=4):
    """x (N, C, *) with per-channel scales and offsets, weight, bias, running mean and variance (the
    op's state), in training or evaluation, with a momentum. Every channel's values have a spread
    of at least 0.3: where a batch's variance nears eps the input gradient is a difference of
    nearly equal terms (for two values per channel it is proportional to eps / variance), and in
    float32 two correct implementations then differ by 2e-4 of it (seen at a spread of 0.05)."""
    rank = draw(st.sampled_from([2, 3, 4]))
    training = draw(st.booleans())
    shape = (draw(st.integers(2 if rank == 2 else 1, 4)), draw(st.integers(1, 5))) + tuple(
        draw(st.integers(1, max_side)) for _ in range(rank - 2))
    if training and np.prod(shape) // shape[1] < 2:
        shape = (shape[0] + 1,) + shape[1:]  # a channel of one value has no variance
    rng = np.random.default_rng(draw(seeds()))
    c, per_channel = shape[1], (1, shape[1]) + (1,) * (rank - 2)
    z = rng.standard_normal(shape)
    axes = (0,) + tuple(range(2, rank))
    z = z - z.mean(axis=axes, keepdims=True)
    z = z / np.maximum(z.std(axis=axes, keepdims=True), 1e-3) * np.maximum(z.std(axis=axes, keepdims=True), 0.3)
    x = z * rng.uniform(1, 3, c).reshape(per_channel) + rng.uniform(-2, 2, c).reshape(per_channel)
    arrays = [x, rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(c), rng.uniform(0.5, 2, c)]
    return Case(arrays, dict(training=training, momentum=draw(st.sampled_from([0.1, 0.0, 0.5, 1.0]))))


def _batch_norm(x, weight, bias, running_mean, running_var, **params):
    """F.batch_norm with its arrays in the implementation classes' order (x, weight, bias, state)."""
    return F.batch_norm(x, running_mean, running_var, weight, bias, **params)


def _torch_batch_norm(x, weight, bias, running_mean, running_var, **params):
    import torch

    return torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, **params)


def _batch_norm_scales(case, dtype):
    """y, then gx, gweight, gbias (sums of m terms per channel), then the running statistics."""
    m = np.sqrt(case.arrays[0].size // case.arrays[0].shape[1])
    return (1.0, m, m, m, 1.0, 1.0)


def _examples():
    """Fixed cases: those of the earlier per-op backend table (held to 10 x KERNEL_TOL's atol, as
    there), then gpu_check's earlier shapes."""
    rng = np.random.default_rng(1)
    r = rng.standard_normal
    ten = dict(kernel_scales=(10.0,))
    conv = dict(stride=(2, 2), padding=(1, 1), groups=2)
    table = dict(
        conv2d=[Case([r((2, 4, 9, 9)), r((6, 2, 3, 3)), r(6)], conv, ten)],
        conv2d_relu=[Case([r((2, 4, 9, 9)), r((6, 2, 3, 3)), r(6)], conv, ten),
                     Case([r((2, 4, 7, 7)), r((6, 2, 3, 3)), r(6)], dict(stride=(1, 1), padding=(1, 1), groups=2),
                          dict(ten, note="3x3, stride 1: Winograd"))],
        max_pool2d=[Case([distinct_values(rng, (2, 3, 9, 9))], dict(kernel_size=(3, 3), stride=(2, 2), padding=(0, 0)),
                         ten)],
        local_response_norm=[Case([r((2, 6, 4, 4)) * 3], dict(size=5, alpha=0.1, beta=0.75, k=2.0, groups=2), ten)],
        relu=[Case([distinct_values(rng, (3, 7))], {}, ten)],
        linear=[Case([r((4, 7)), r((5, 7)), r(5)], {}, ten)],
        linear_relu=[Case([r((4, 7)), r((5, 7)), r(5)], {}, ten)],
        dropout=[Case([r((4, 9))], dict(p=0.5, mask=np.arange(36).reshape(4, 9) % 3 > 0, inverted=True, training=True),
                      ten)],
    )
    # the shapes benchmarks/gpu_check.py drew before it read the specs (more threads than one
    # block: launch geometry on a GPU), held to each spec's own scales
    n, g, c, h, o, k = 2, 2, 8, 15, 8, 5
    same = dict(stride=(1, 1), padding=(k // 2, k // 2), groups=g)
    strided = dict(stride=(2, 2), padding=(1, 1), groups=1)
    for name in ("conv2d", "conv2d_relu"):
        table[name].append(_conv_example([r((n, c, h, h)), r((o, c // g, k, k)), r(o)], same, "grouped, same size"))
    table["conv2d"].append(_conv_example([r((n, 3, h + 4, h + 4)), r((o, 3, 3, 3)), None], strided, "strided, no bias"))
    for name in ("linear", "linear_relu"):
        table[name].append(Case([r((n, 50)), r((30, 50)), r(30)], {}, dict(n=n, fin=50, fout=30)))
    table["max_pool2d"].append(Case([distinct_values(rng, (n, c, h, h))],
                                    dict(kernel_size=(3, 3), stride=(2, 2), padding=(0, 0)), {}))
    table["local_response_norm"].append(Case([r((n, c, h, h))], dict(size=5, alpha=0.1, beta=0.75, k=2.0, groups=g)))
    table["relu"].append(Case([distinct_values(rng, (n, 37))], {}))
    table["dropout"].append(Case([r((n, 37))], dict(p=0.5, mask=rng.random((n, 37)) < 0.5, inverted=True, training=True)))
    table["batch_norm"] = [Case([r((4, 3, 9, 9)) * 2 + 1, r(3), r(3), r(3), rng.uniform(0.5, 2, 3)],
                                dict(training=training, momentum=0.1)) for training in (True, False)]
    return {name: tuple(cases) for name, cases in table.items()}


def _conv_example(arrays, params, note):
    x, w = arrays[0], arrays[1]
    geo = dict(n=x.shape[0], h=x.shape[2], w=x.shape[3], k=w.shape[2:], stride=params["stride"], padding=params["padding"],
               dilation=params.get("dilation", (1, 1)))
    return Case(arrays, params, dict(geo=geo, note=note))


EXAMPLES = _examples()
SPECS = [
    OpSpec("conv2d", F.conv2d, _conv_cases(max_size=12, max_batch=4), op="Conv2d",
           gradcheck=_conv_cases(max_per_group=2, max_kernel=4, max_stride=3, max_size=8, max_batch=2),
           torch=_torch_conv, kernel_scales=_conv_kernel_scales, torch_scales=_conv_torch_scales,
           examples=EXAMPLES["conv2d"], reference_float16=False),
    OpSpec("conv2d_relu", F.conv2d_relu, _conv_cases(FUSED_BIAS, max_size=12, max_batch=4), op="Conv2dReLU",
           gradcheck_note="ReLU kinks: the reference is relu(conv2d) to the bit "
                          "(tests/ops/test_tensor_ops_gradcheck.py::test_fused_relu_references_are_exactly_the_two_checked_ops)",
           torch=_torch_relu_of(_torch_conv), kernel_scales=_conv_kernel_scales, torch_scales=_conv_torch_scales,
           examples=EXAMPLES["conv2d_relu"], fused_relu_of="conv2d", reference_float16=False),
    OpSpec("linear", F.linear, _linear_cases(8, 20, 20), op="Linear", gradcheck=_linear_cases(6, 7, 7),
           torch=_torch_linear, kernel_scales=_linear_scales, torch_scales=_linear_scales, examples=EXAMPLES["linear"]),
    OpSpec("linear_relu", F.linear_relu, _linear_cases(8, 20, 20, FUSED_BIAS), op="LinearReLU",
           gradcheck_note="ReLU kinks: the reference is relu(linear) to the bit "
                          "(tests/ops/test_tensor_ops_gradcheck.py::test_fused_relu_references_are_exactly_the_two_checked_ops)",
           torch=_torch_relu_of(_torch_linear), kernel_scales=_linear_scales, torch_scales=_linear_scales,
           examples=EXAMPLES["linear_relu"], fused_relu_of="linear"),
    OpSpec("max_pool2d", F.max_pool2d, st.builds(_pool_case, pool_geometries(), seeds()), op="MaxPool2d",
           gradcheck=st.builds(_pool_case, pool_geometries(max_size=9, max_batch=2, max_channels=3), seeds()),
           torch=_torch_pool, kernel_scales=lambda case, dtype: (1.0, 4.0), examples=EXAMPLES["max_pool2d"]),
    # gradient step 1e-5, not 1e-6: a channel's outputs all move with each input (its mean and variance),
    # so the loss's rounding over 1e-6 reached 1e-8 of a 3e-7 gradient; at 1e-5 rounding is 10x
    # smaller, truncation ~1e-10
    OpSpec("batch_norm", _batch_norm, _batch_norm_cases(max_side=6), op="BatchNorm", state=(3, 4),
           kernel_params=lambda params: dict(params, eps=1e-5), gradcheck=_batch_norm_cases(), gradcheck_eps=1e-5,
           torch=_torch_batch_norm, kernel_scales=_batch_norm_scales, torch_scales=_batch_norm_scales,
           examples=EXAMPLES["batch_norm"]),
    OpSpec("local_response_norm", F.local_response_norm,
           st.builds(_lrn_case, st.integers(1, 8), st.sampled_from([1, 2]), st.integers(1, 6),
                     st.sampled_from([(3, 5), (4, 3)]), st.sampled_from([1e-4, 0.01, 0.3, 0.5]),
                     st.sampled_from([0.75, 0.5, 1.0, 1.3]), st.sampled_from([2.0, 1.0]), seeds()),
           op="LocalResponseNorm",
           # a large alpha makes the cross-channel term of the gradient matter; with the paper's
           # 1e-4 an implementation that forgot it would still pass
           gradcheck=st.builds(_lrn_case, st.integers(1, 7), st.sampled_from([1, 2]), st.integers(1, 6),
                               st.just((3, 3)), st.just(0.3), st.sampled_from([0.75, 0.5, 1.3]), st.just(2.0), seeds()),
           torch=_torch_lrn, kernel_scales=lambda case, dtype: (1.0, 10.0), examples=EXAMPLES["local_response_norm"],
           reference_float16=False),
    OpSpec("relu", F.relu, st.builds(_distinct_case, _shapes(6, 4), seeds()), op="ReLU",
           gradcheck=st.builds(_distinct_case, _shapes(5, 4), seeds()), torch=_torch_relu, examples=EXAMPLES["relu"]),
    OpSpec("dropout", F.dropout,
           st.builds(_dropout_case, _shapes(6, 4), st.sampled_from([0.0, 0.2, 0.3, 0.5]), st.booleans(), seeds()),
           op="Dropout", kernel_params=_dropout_kernel_params,
           gradcheck=st.builds(_dropout_case, _shapes(5, 4), st.sampled_from([0.2, 0.5]), st.booleans(), seeds()),
           torch=_torch_dropout_given_mask, examples=EXAMPLES["dropout"]),
    OpSpec("dropout_eval", F.dropout,
           st.builds(_dropout_eval_case, _shapes(6, 4), st.sampled_from([0.0, 0.2, 0.3, 0.5]), st.booleans(), seeds()),
           gradcheck=st.builds(_dropout_eval_case, _shapes(5, 4), st.sampled_from([0.2, 0.5]), st.booleans(), seeds()),
           # the paper's test-time scaling was held to rtol 1e-6 in float32, tighter than TORCH_TOL's
           torch=_torch_dropout_eval, torch_tol={np.float64: TORCH_TOL[np.float64], np.float32: dict(rtol=1e-6, atol=0.0)}),
    OpSpec("softmax", F.softmax, _softmax_cases(6, 3, 4.0), gradcheck=_softmax_cases(5, 3, 1.0),
           torch=_torch_softmax, reference_float16=False),
    OpSpec("log_softmax", F.log_softmax, _softmax_cases(6, 3, 4.0), gradcheck=_softmax_cases(5, 3, 1.0),
           torch=_torch_log_softmax, reference_float16=False),
    OpSpec("cross_entropy", F.cross_entropy,
           st.builds(_cross_entropy_case, st.integers(1, 16), st.integers(2, 20), st.sampled_from([1.0, 30.0]), seeds()),
           gradcheck=st.builds(_cross_entropy_case, st.integers(1, 6), st.integers(2, 8), st.just(3.0), seeds()),
           torch=_torch_cross_entropy, torch_scales=lambda case, dtype: (case.meta["scale"], 1.0),
           reference_float16=False),
]
# ----- issue 30: elementwise ops, pooling options, padding, losses with PyTorch's options ------------
def _normal_case(shape, seed, scale=1.0):
    return Case([np.random.default_rng(seed).standard_normal(shape) * scale], {})


def _away_from(values, points, gap=1e-3):
    """``values`` moved at least ``gap`` away from each of ``points`` (a kink of the op): a central
    difference of step 1e-6 never straddles one."""
    for p in points:
        near = np.abs(values - p) < gap
        values = np.where(near, p + np.where(values >= p, gap, -gap) * 2, values)
    return values


def _kinked_case(shape, seed, points=(0.0,), **params):
    return Case([_away_from(np.random.default_rng(seed).standard_normal(shape) * 2, points)], params)


def _positive_case(shape, seed):
    return Case([np.abs(np.random.default_rng(seed).standard_normal(shape)) + 0.1], {})


def _clamp_case(shape, seed, bounds):
    low, high = bounds
    return _kinked_case(shape, seed, tuple(b for b in (low, high) if b is not None), min=low, max=high)


CLAMP_BOUNDS = st.sampled_from([(-1.0, 1.0), (None, 1.0), (0.5, None), (-1.0, None), (0.5, 1.0)])


def _torch_method(name):
    def twin(x, **params):
        return getattr(x, name)(**params)

    return twin


def _torch_functional(name):
    def twin(*args, **params):
        import torch

        return getattr(torch.nn.functional, name)(*args, **params)

    return twin


def _pad_case(shape, pad, value, seed):
    return Case([np.random.default_rng(seed).standard_normal(shape)], dict(pad=pad[:2 * len(shape)], value=value))


def _avg_pool_case(geo, ceil_mode, count_include_pad, seed):
    x = np.random.default_rng(seed).standard_normal(geo["shape"])
    return Case([x], dict(kernel_size=geo["k"], stride=geo["stride"], padding=geo["padding"], ceil_mode=ceil_mode,
                          count_include_pad=count_include_pad))


def _pool_ceil_mode_case(geo, ceil_mode, seed):
    case = _pool_case(geo, seed)
    return Case(case.arrays, dict(case.params, ceil_mode=ceil_mode), case.meta)


def _dilated(case):
    return case.params.get("dilation", (1, 1)) != (1, 1)


def _dilated_windows_see_the_input(case):
    """Dilated and no window wholly in the padding. Such a window's maximum is -inf in both
    frameworks, but PyTorch records index H*W for it, one past its channel's plane, and sends its
    gradient to the first pixel of the next channel (torch 2.13 CPU: x (1, 2, 1, 2), kernel (1, 2),
    padding (0, 1), dilation (1, 3): indices [2, 2], channel 0's gradient lands on channel 1);
    ours sends it nowhere."""
    import minitorch_alex as mt

    probe = F.max_pool2d(mt.tensor(np.zeros((1, 1) + case.arrays[0].shape[2:])), **case.params).numpy()
    return _dilated(case) and bool(np.isfinite(probe).all())


def _adaptive_case(shape, out, seed):
    return Case([np.random.default_rng(seed).standard_normal(shape)], dict(output_size=out))


@st.composite
def _loss_options_cases(draw, max_n, max_c, weighted=None):
    n, c = draw(st.integers(1, max_n)), draw(st.integers(2, max_c))
    rng = np.random.default_rng(draw(seeds()))
    ignore_index = draw(st.sampled_from([-100, 0]))
    target = rng.integers(0, c, n)
    target[rng.random(n) < draw(st.sampled_from([0.0, 0.3]))] = ignore_index
    if (target == ignore_index).all():  # the mean of nothing is nan, as PyTorch's: not a gradient check
        target[0] = 1
    weighted = draw(st.booleans()) if weighted is None else weighted
    params = dict(target=target, weight=rng.uniform(0.2, 2.0, c) if weighted else None,
                  reduction=draw(st.sampled_from(["mean", "sum", "none"])), ignore_index=ignore_index)
    return Case([rng.standard_normal((n, c)) * 2], params)


@st.composite
def _cross_entropy_options_cases(draw, max_n, max_c):
    case = draw(_loss_options_cases(max_n, max_c))
    return Case(case.arrays, dict(case.params, label_smoothing=draw(st.sampled_from([0.0, 0.1, 0.5]))))


def _torch_loss(name):
    def twin(x, target, weight=None, **params):
        import torch

        return getattr(torch.nn.functional, name)(x, torch.from_numpy(target),
                                                  None if weight is None else torch.from_numpy(weight).to(x.dtype), **params)

    return twin


def _mse_case(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    return Case([rng.standard_normal(shape), rng.standard_normal(shape)], dict(reduction=reduction))


SPECS += [
    OpSpec("sigmoid", F.sigmoid, st.builds(_normal_case, _shapes(6, 4), seeds(), st.just(4.0)),
           gradcheck=st.builds(_normal_case, _shapes(5, 3), seeds()), torch=_torch_method("sigmoid")),
    OpSpec("tanh", F.tanh, st.builds(_normal_case, _shapes(6, 4), seeds(), st.just(3.0)),
           gradcheck=st.builds(_normal_case, _shapes(5, 3), seeds()), torch=_torch_method("tanh")),
    OpSpec("leaky_relu", F.leaky_relu, st.builds(_kinked_case, _shapes(6, 4), seeds(), negative_slope=st.sampled_from([0.01, 0.2])),
           gradcheck=st.builds(_kinked_case, _shapes(5, 3), seeds(), negative_slope=st.sampled_from([0.01, 0.2])),
           torch=_torch_functional("leaky_relu")),
    OpSpec("sqrt", lambda x: x.sqrt(), st.builds(_positive_case, _shapes(6, 4), seeds()),
           gradcheck=st.builds(_positive_case, _shapes(5, 3), seeds()), torch=_torch_method("sqrt")),
    OpSpec("abs", lambda x: x.abs(), st.builds(_kinked_case, _shapes(6, 4), seeds()),
           gradcheck=st.builds(_kinked_case, _shapes(5, 3), seeds()), torch=_torch_method("abs")),
    OpSpec("clamp", lambda x, **p: x.clamp(**p),
           st.builds(_clamp_case, _shapes(6, 4), seeds(), CLAMP_BOUNDS),
           gradcheck=st.builds(_clamp_case, _shapes(5, 3), seeds(), CLAMP_BOUNDS),
           torch=_torch_method("clamp")),
    OpSpec("clone", lambda x: x.clone(), st.builds(_normal_case, _shapes(6, 4), seeds()),
           gradcheck=st.builds(_normal_case, _shapes(4, 3), seeds()), torch=_torch_method("clone")),
    OpSpec("pad", F.pad, st.builds(_pad_case, _shapes(5, 4, 2), st.lists(st.integers(0, 3), min_size=8, max_size=8).map(tuple),
                                   st.sampled_from([0.0, -1.5]), seeds()),
           gradcheck=st.builds(_pad_case, _shapes(4, 3, 2), st.lists(st.integers(0, 2), min_size=6, max_size=6).map(tuple),
                               st.just(0.0), seeds()),
           torch=_torch_functional("pad")),
    # ceil_mode is -inf padding before the unchanged max_pool2d (whose kernels max_pool2d's spec checks): the
    # kernels never see ceil_mode, so this spec names no hot op
    OpSpec("max_pool2d_ceil", F.max_pool2d, st.builds(_pool_ceil_mode_case, pool_geometries(), st.just(True), seeds()),
           gradcheck=st.builds(_pool_ceil_mode_case, pool_geometries(max_size=9, max_batch=2, max_channels=3), st.just(True),
                               seeds()),
           torch=_torch_pool),
    # dilation: the numba and CUDA kernels take none, dispatch.REQUIRES sends such calls to the reference
    # (tests/core/test_dispatch.py), so these specs name no hot op; every draw has some axis dilated
    OpSpec("conv2d_dilated", F.conv2d, _conv_cases(max_size=12, max_batch=3, max_dilation=3).filter(_dilated),
           gradcheck=_conv_cases(max_per_group=2, max_kernel=3, max_stride=2, max_size=8, max_batch=2,
                                 max_dilation=3).filter(_dilated),
           torch=_torch_conv, torch_scales=_conv_torch_scales, reference_float16=False),
    OpSpec("max_pool2d_dilated", F.max_pool2d,
           st.builds(_pool_ceil_mode_case, pool_geometries(max_dilation=3), st.booleans(), seeds())
           .filter(_dilated_windows_see_the_input),
           gradcheck=st.builds(_pool_ceil_mode_case, pool_geometries(max_size=9, max_batch=2, max_channels=2,
                                                                      max_dilation=3), st.booleans(), seeds())
           .filter(_dilated_windows_see_the_input),
           torch=_torch_pool),
    OpSpec("avg_pool2d", F.avg_pool2d,
           st.builds(_avg_pool_case, pool_geometries(), st.booleans(), st.booleans(), seeds()),
           gradcheck=st.builds(_avg_pool_case, pool_geometries(max_size=8, max_batch=2, max_channels=2), st.booleans(),
                               st.booleans(), seeds()),
           torch=_torch_functional("avg_pool2d")),
    OpSpec("adaptive_avg_pool2d", F.adaptive_avg_pool2d,
           st.builds(_adaptive_case, st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
                     st.tuples(st.integers(1, 5), st.integers(1, 5)), seeds()),
           gradcheck=st.builds(_adaptive_case, st.tuples(st.just(1), st.integers(1, 2), st.integers(1, 7), st.integers(1, 7)),
                               st.tuples(st.integers(1, 4), st.integers(1, 4)), seeds()),
           torch=_torch_functional("adaptive_avg_pool2d")),
    OpSpec("cross_entropy_options", F.cross_entropy, _cross_entropy_options_cases(12, 8),
           gradcheck=_cross_entropy_options_cases(5, 5), torch=_torch_loss("cross_entropy"), reference_float16=False),
    OpSpec("nll_loss", F.nll_loss, _loss_options_cases(12, 8), gradcheck=_loss_options_cases(5, 5),
           torch=_torch_loss("nll_loss")),
    OpSpec("mse_loss", F.mse_loss, st.builds(_mse_case, _shapes(5, 3), st.sampled_from(["mean", "sum", "none"]), seeds()),
           gradcheck=st.builds(_mse_case, _shapes(4, 3), st.sampled_from(["mean", "sum", "none"]), seeds()),
           torch=_torch_functional("mse_loss")),
]


BY_NAME = {spec.name: spec for spec in SPECS}
assert len(BY_NAME) == len(SPECS), "two specs of one name"


def specs(where=None):
    """The specs for which ``where(spec)`` holds (all by default)."""
    return [s for s in SPECS if where is None or where(s)]


def hot(spec):
    """Has the op numba and CUDA forms (an entry of ``dispatch.TABLE``)?"""
    return spec.op is not None


def backends_of(spec):
    """The backends that implement ``spec``'s op: ('reference', 'numba', 'cuda') for a hot op."""
    from minitorch_alex import dispatch

    return tuple(dispatch.TABLE[spec.op]) if hot(spec) else ("reference",)


def kernel_scales(spec, case, dtype):
    """The atol multipliers a backend is held to on ``case``: the example's own, else the spec's."""
    return case.meta.get("kernel_scales") or spec.kernel_scales(case, dtype)


def scale_list(scales, n):
    """The atol multiplier of the output and of each of ``n`` input gradients (the last repeats)."""
    scales = list(scales)
    return scales + [scales[-1]] * (n + 1 - len(scales))


# ----- running a case ---------------------------------------------------------------------------------
def draw(strategy, count, seed):
    """``count`` cases of ``strategy`` drawn outside a test (benchmarks/gpu_check.py), reproducibly
    from ``seed``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded

    drawn = []

    @seeded(seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(case):
        drawn.append(case)

    collect()
    return drawn


def array_dtype(dtype, i, state=()):
    """The dtype of the case's array ``i`` in a run in ``dtype``: state in float32 or wider (a
    16-bit input keeps float32 running statistics, as under mixed precision)."""
    return np.promote_types(dtype, np.float32) if i in state else np.dtype(dtype)


def cast_arrays(spec, case, dtype):
    """The case's arrays in ``dtype`` (new arrays: state is updated in place), for calling an
    implementation class directly; trailing absent ones (a bias: the class's default) dropped."""
    arrays = list(case.arrays)
    while arrays and arrays[-1] is None:
        arrays.pop()
    return [np.array(a, dtype=array_dtype(dtype, i, spec.state)) for i, a in enumerate(arrays)]


def differentiable(spec, case):
    """Positions of the inputs that get a gradient: present and not state."""
    return [i for i, a in enumerate(case.arrays) if a is not None and i not in spec.state]


def tensors(case, dtype, device="cpu", state=()):
    """The case's arrays as Tensors of ``dtype`` on ``device`` (new arrays), requiring grad but for
    the ``state`` positions (None stays None)."""
    import minitorch_alex as mt

    return [mt.tensor(np.array(a, dtype=array_dtype(dtype, i, state)), requires_grad=i not in state, device=device)
            if a is not None else None for i, a in enumerate(case.arrays)]


def upstream(spec, case, dtype, seed):
    """A standard normal upstream gradient of the op's output shape, in ``dtype``."""
    import minitorch_alex as mt

    with mt.no_grad(), mt.config.using(backend="reference"):
        shape = spec.run(tensors(case, dtype, state=spec.state), case.params).shape
    return np.asarray(np.random.default_rng(seed).standard_normal(shape), dtype=dtype)


def run(spec, case, dtype, gy, backend="reference", device="cpu"):
    """(output, per input its gradient (None for an absent input; a state input's value after the
    call), the backend the output's node recorded), NumPy arrays, of the public call under
    ``backend`` on ``device``."""
    import minitorch_alex as mt

    with mt.config.using(backend=backend):
        ts = tensors(case, dtype, device, spec.state)
        y = spec.run(ts, case.params)
        node = y._node
        ran = getattr(node, "backend", None)  # read before backward releases the node
        y.backward(mt.tensor(np.asarray(gy, dtype=dtype), device=device))
    return y.numpy(), [after_call(t, i, spec.state) for i, t in enumerate(ts)], ran


def after_call(t, i, state):
    """What is compared of input ``i`` after a call and its backward: its gradient, or a state
    input's value."""
    if t is None:
        return None
    return t.numpy() if i in state else t.grad.numpy()


def torch_compare(spec, case, dtype, seed):
    """``spec`` on ``case`` in ``dtype`` against its PyTorch twin: output, then each input's gradient
    for a standard normal upstream gradient (``spec.torch_tol`` with ``spec.torch_scales``)."""
    import torch
    from strategies import assert_close

    import minitorch_alex as mt

    ours = tensors(case, dtype, state=spec.state)
    theirs = [torch.tensor(np.array(a, dtype=array_dtype(dtype, i, spec.state)), requires_grad=i not in spec.state)
              if a is not None else None for i, a in enumerate(case.arrays)]
    y, yt = spec.run(ours, case.params), spec.torch(*theirs, **case.params)
    scales = scale_list(spec.torch_scales(case, dtype), len(ours))
    assert_close(y.numpy(), yt.detach().numpy(), dtype, spec.torch_tol, scales[0], err_msg="forward")
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    y.backward(mt.tensor(g))
    yt.backward(torch.from_numpy(g))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a is not None:
            want = b.detach().numpy() if i in spec.state else b.grad.detach().numpy()
            assert_close(after_call(a, i, spec.state), want, dtype, spec.torch_tol, scales[i + 1],
                         err_msg=f"{'value after the call' if i in spec.state else 'gradient'} of input {i}")
