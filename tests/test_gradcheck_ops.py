"""Finite-difference gradient checks, float64, central differences, for every op and layer.

Inputs come from hypothesis-chosen shapes and settings; values are spaced apart so no
finite-difference step crosses a ReLU kink or changes a max-pool winner, and dropout masks are
fixed. Every check runs on the reference backend (the code of minitorch_alex/ops) unless it
names another: ``test_backends.py`` compares the other backends with the reference.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import conv_arrays, conv_geometries, distinct_values, pool_geometries

import minitorch_alex as mt
import minitorch_alex.nn.functional as F

pytestmark = pytest.mark.usefixtures("reference_backend")
RTOL = 1e-6  # the project's bar for single ops


def t64(a, grad=True):
    return mt.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def check(fn, *inputs, samples=None):
    report = mt.gradcheck(fn, list(inputs), rtol=RTOL, samples=samples)
    assert report.ok and report.checked > 0


@given(geo=conv_geometries(max_per_group=2, max_kernel=4, max_stride=3, max_size=8, max_batch=2), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_conv2d_gradcheck(geo, bias, seed):
    x, w, b = (t64(a) if a is not None else None for a in conv_arrays(geo, bias, np.random.default_rng(seed)))
    kw = dict(stride=geo["stride"], padding=geo["padding"], groups=geo["groups"])
    if b is None:
        check(lambda x, w: F.conv2d(x, w, **kw), x, w)
    else:
        check(lambda x, w, b: F.conv2d(x, w, b, **kw), x, w, b)


@pytest.mark.parametrize("algorithm, k, stride, padding", [("im2col", 5, 3, 1), ("fourier", 5, 1, 2), ("winograd4", 3, 1, 1),
                                                           ("winograd5", 3, 1, 1), ("polyphase", 5, 2, 1)])
def test_conv2d_gradcheck_on_each_algorithm_of_the_numba_backend(algorithm, k, stride, padding):
    """The numba backend's convolution paths (im2col, DFT products, Winograd F(4x4, 3x3) and F(5x5, 3x3),
    polyphase) each checked against finite differences, not only against the reference. In float64
    'auto' takes F(4x4, 3x3) for 3x3 layers (``winograd_for``); F(5x5, 3x3), float32's, is put in
    its place for its own check."""
    from minitorch_alex_kernels.cpu import conv as conv_kernels

    choose = conv_kernels.choose_algorithm
    auto = choose((k, k), (stride, stride), (padding, padding), dtype=np.float64)
    assert auto == ("winograd4" if algorithm == "winograd5" else algorithm)
    rng = np.random.default_rng(k + stride)
    x, w, b = t64(rng.standard_normal((2, 4, 7, 6))), t64(rng.standard_normal((4, 2, k, k))), t64(rng.standard_normal(4))
    with mt.config.using(backend="numba"), pytest.MonkeyPatch.context() as patch:
        if algorithm != auto:
            patch.setattr(conv_kernels, "choose_algorithm", lambda *geometry: algorithm)
        check(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, groups=2), x, w, b)


@given(geo=pool_geometries(max_size=9, max_batch=2, max_channels=3), seed=st.integers(0, 2**16))
def test_max_pool2d_gradcheck(geo, seed):
    x = t64(distinct_values(np.random.default_rng(seed), geo["shape"]))
    check(lambda x: F.max_pool2d(x, geo["k"], geo["stride"], geo["padding"]), x)


@given(size=st.integers(1, 7), groups=st.sampled_from([1, 2]), c_per_group=st.integers(1, 6),
       beta=st.sampled_from([0.75, 0.5, 1.3]), seed=st.integers(0, 2**16))
def test_local_response_norm_gradcheck(size, groups, c_per_group, beta, seed):
    rng = np.random.default_rng(seed)
    x = t64(rng.standard_normal((2, groups * c_per_group, 3, 3)))
    # a large alpha makes the cross-channel term of the gradient matter; with the paper's 1e-4
    # an implementation that forgot it would still pass
    check(lambda x: F.local_response_norm(x, size, alpha=0.3, beta=beta, k=2.0, groups=groups), x)


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_lrn_gradcheck_catches_missing_cross_channel_term(monkeypatch, backend):
    """The check above can fail: drop the cross-channel part of the gradient and it does, on
    either backend (the numba one computes the gradient in a numba kernel)."""
    from minitorch_alex.ops import lrn

    def wrong_reference_backward(self, gy):
        return ((gy.reshape(self.a.shape) * self.scale ** -self.params[2]).reshape(gy.shape),)

    def wrong_kernel(x, gy, size, alpha, beta, k, groups):  # the diagonal term only
        return gy * (k + alpha * lrn.window_sum(x * x, size // 2, (size - 1) // 2)) ** -beta

    if backend == "reference":
        monkeypatch.setattr(lrn.LocalResponseNorm, "backward", wrong_reference_backward)
    else:
        from minitorch_alex_kernels.cpu import lrn as lrn_kernels

        monkeypatch.setattr(lrn_kernels, "lrn_backward", wrong_kernel)
    x = t64(np.random.default_rng(0).standard_normal((1, 4, 2, 2)))
    with mt.config.using(backend=backend), pytest.raises(mt.GradcheckError, match="worst entry"):
        mt.gradcheck(lambda x: F.local_response_norm(x, 3, alpha=0.3), [x])


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_relu_gradcheck(shape, seed):
    x = t64(distinct_values(np.random.default_rng(seed), tuple(shape)))
    check(F.relu, x)


@given(n=st.integers(1, 6), fin=st.integers(1, 7), fout=st.integers(1, 7), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_gradcheck(n, fin, fout, bias, seed):
    rng = np.random.default_rng(seed)
    x, w = t64(rng.standard_normal((n, fin))), t64(rng.standard_normal((fout, fin)))
    if bias:
        check(F.linear, x, w, t64(rng.standard_normal(fout)))
    else:
        check(F.linear, x, w)


@given(geo=conv_geometries(max_per_group=2, max_kernel=4, max_stride=3, max_size=8, max_batch=2),
       n=st.integers(1, 6), fin=st.integers(1, 7), fout=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_fused_relu_references_are_exactly_the_two_checked_ops(geo, n, fin, fout, seed):
    """The reference Conv2dReLU / LinearReLU (one node each) give the bits of relu(conv2d) and
    relu(linear), forward and backward, so the gradient checks of those ops cover them (a check
    of their own would trip on ReLU kinks)."""
    rng = np.random.default_rng(seed)
    kw = dict(stride=geo["stride"], padding=geo["padding"], groups=geo["groups"])
    cases = [(lambda x, w, b: F.conv2d_relu(x, w, b, **kw), lambda x, w, b: F.relu(F.conv2d(x, w, b, **kw)),
              conv_arrays(geo, True, rng), "Conv2dReLU"),
             (F.linear_relu, lambda x, w, b: F.relu(F.linear(x, w, b)),
              (rng.standard_normal((n, fin)), rng.standard_normal((fout, fin)), rng.standard_normal(fout)), "LinearReLU")]
    for fused, two_ops, arrays, name in cases:
        results = []
        for fn in (fused, two_ops):
            tensors = [t64(a) for a in arrays]
            y = fn(*tensors)
            results.append((type(y._node).__name__, y.numpy().copy()))
            y.backward(mt.tensor(np.random.default_rng(seed).standard_normal(y.shape)))
            results[-1] += tuple(t.grad.numpy() for t in tensors)
        assert results[0][0] == name and results[1][0] == "ReLU"
        for a, b in zip(results[0][1:], results[1][1:]):
            np.testing.assert_array_equal(a, b)


@given(n=st.integers(1, 6), c=st.integers(2, 8), seed=st.integers(0, 2**16))
def test_cross_entropy_gradcheck(n, c, seed):
    rng = np.random.default_rng(seed)
    logits, target = t64(rng.standard_normal((n, c)) * 3), rng.integers(0, c, n)
    check(lambda z: F.cross_entropy(z, target), logits)


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_softmax_and_log_softmax_gradcheck(shape, seed):
    x = t64(np.random.default_rng(seed).standard_normal(shape))
    check(lambda x: F.softmax(x, axis=-1), x)
    check(lambda x: F.log_softmax(x, axis=0), x)


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), p=st.sampled_from([0.2, 0.5]),
       inverted=st.booleans(), seed=st.integers(0, 2**16))
def test_dropout_gradcheck_with_fixed_mask(shape, p, inverted, seed):
    rng = np.random.default_rng(seed)
    x = t64(rng.standard_normal(shape))
    mask = rng.random(shape) >= p
    check(lambda x: F.dropout(x, p, training=True, mask=mask, inverted=inverted), x)
    check(lambda x: F.dropout(x, p, training=False, inverted=inverted), x)


# ----- tensor arithmetic, with broadcasting -------------------------------------------------------
def broadcastable_pair(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    other = [draw(st.sampled_from([n, 1])) for n in shape][draw(st.integers(0, len(shape) - 1)):]
    pair = [tuple(shape), tuple(other)]
    return pair if draw(st.booleans()) else pair[::-1]


@st.composite
def shape_pairs(draw):
    return broadcastable_pair(draw)


@given(shapes=shape_pairs(), op=st.sampled_from(["add", "sub", "mul", "div"]), seed=st.integers(0, 2**16))
def test_binary_arithmetic_gradcheck_with_broadcasting(shapes, op, seed):
    rng = np.random.default_rng(seed)
    a = t64(rng.standard_normal(shapes[0]))
    b = t64(rng.uniform(0.5, 2.0, shapes[1]) * rng.choice([-1, 1], shapes[1]))  # away from 0 for div
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    check(fn, a, b)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_unary_arithmetic_gradcheck(shape, seed):
    rng = np.random.default_rng(seed)
    x = t64(rng.uniform(0.5, 2.0, shape))
    check(lambda x: -x, x)
    check(lambda x: x**3 - 2.0 * x**0.5 + 1.0 / x, x)
    check(lambda x: x.exp(), x)
    check(lambda x: x.log(), x)
    check(lambda x: 3.0 - x, x)


@given(batch=st.lists(st.integers(1, 3), max_size=2), m=st.integers(1, 4), k=st.integers(1, 4), n=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_matmul_gradcheck(batch, m, k, n, seed):
    rng = np.random.default_rng(seed)
    a, b = t64(rng.standard_normal((*batch, m, k))), t64(rng.standard_normal((k, n)))
    check(lambda a, b: a @ b, a, b)
    v = t64(rng.standard_normal(k))
    check(lambda b, v: v @ b, b, v)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data())
def test_reductions_gradcheck(shape, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = t64(distinct_values(rng, tuple(shape)))
    axes = data.draw(st.sets(st.integers(0, len(shape) - 1)))
    axis = tuple(axes) if axes else None
    keepdims = data.draw(st.booleans())
    check(lambda x: x.sum(axis, keepdims), x)
    check(lambda x: x.mean(axis, keepdims), x)
    check(lambda x: x.max(axis, keepdims), x)


def test_max_splits_gradient_between_ties():
    x = mt.tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0.5, 0.5, 0])


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), seed=st.integers(0, 2**16))
def test_shape_ops_gradcheck(shape, seed):
    rng = np.random.default_rng(seed)
    x = t64(rng.standard_normal(shape))
    perm = tuple(rng.permutation(len(shape)))
    check(lambda x: x.reshape(-1, shape[-1]) * 1.5, x)
    check(lambda x: x.transpose(perm) * x.transpose(perm), x)
    check(lambda x: x[..., ::2] * 2.0, x)
    idx = rng.integers(0, shape[0], 5)  # advanced index with repeats: gradients must add
    check(lambda x: x[idx] * 1.0, x)
    check(lambda x: F.flatten(x, 1), x)


@given(sizes=st.lists(st.integers(1, 3), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_concat_and_split_gradcheck(sizes, seed):
    rng = np.random.default_rng(seed)
    parts = [t64(rng.standard_normal((2, s))) for s in sizes]
    check(lambda *ps: mt.concat(ps, axis=1) * mt.concat(ps, axis=1), *parts)
    x = t64(rng.standard_normal((sum(sizes), 2)))
    # use only some pieces: the others must get zero gradient
    check(lambda x: mt.split(x, sizes, axis=0)[0] * 2.0, x)
    check(lambda x: mt.concat(mt.split(x, sizes)[::-1]) ** 2, x)


# ----- layers -----------------------------------------------------------------------------------
def test_layers_gradcheck_in_a_small_network():
    """Every layer type, chained, float64, through the Module API (its parameters included)."""
    rng = np.random.default_rng(7)
    net = mt.nn.Sequential(
        mt.nn.Conv2d(4, 6, 3, stride=1, padding=1, groups=2), mt.nn.ReLU(),
        mt.nn.LocalResponseNorm(3, alpha=0.2, groups=2), mt.nn.MaxPool2d(3, 2),
        mt.nn.Flatten(), mt.nn.Dropout(0.5), mt.nn.Linear(6 * 2 * 2, 3),
    ).to(dtype=np.float64)
    net.eval()  # dropout off in eval; the fixed-mask training case is checked above
    x = t64(distinct_values(rng, (2, 4, 5, 5)) * 3)
    params = list(net.parameters())
    target = np.array([0, 2])
    report = mt.gradcheck(lambda x, *ps: F.cross_entropy(net(x), target), [x, *params], rtol=1e-5)
    assert report.ok
