"""Each convolution algorithm of the numba backend (im2col, DFT products, Winograd F(4x4, 3x3) and
F(5x5, 3x3), polyphase) through the public API: against finite differences in float64, and
against PyTorch on AlexNet's three kinds of convolution layer at small sizes (``op_specs``'
conv2d spec: its PyTorch twin and tolerances), each on the path 'auto' takes for it."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from needs import needs_numba
from op_specs import BY_NAME, conv_case, torch_compare
from strategies import dtypes

import minitorch_alex as mt
import minitorch_alex.nn.functional as F

pytestmark = needs_numba
conv_kernels = pytest.importorskip("minitorch_alex_kernels.cpu.conv")
RTOL = 1e-6  # the project's bar for single ops


def t64(a):
    return mt.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


@pytest.mark.parametrize("algorithm, k, stride, padding", [("im2col", 5, 3, 1), ("fourier", 5, 1, 2), ("winograd4", 3, 1, 1),
                                                           ("winograd5", 3, 1, 1), ("polyphase", 5, 2, 1)])
def test_conv2d_gradcheck_on_each_algorithm_of_the_numba_backend(algorithm, k, stride, padding):
    """Each path checked against finite differences, not only against the reference. In float64
    'auto' takes F(4x4, 3x3) for 3x3 layers (``winograd_for``); F(5x5, 3x3), float32's, is put in
    its place for its own check."""
    choose = conv_kernels.choose_algorithm
    auto = choose((k, k), (stride, stride), (padding, padding), dtype=np.float64)
    assert auto == ("winograd4" if algorithm == "winograd5" else algorithm)
    rng = np.random.default_rng(k + stride)
    x, w, b = t64(rng.standard_normal((2, 4, 7, 6))), t64(rng.standard_normal((4, 2, k, k))), t64(rng.standard_normal(4))
    with mt.config.using(backend="numba"), pytest.MonkeyPatch.context() as patch:
        if algorithm != auto:
            patch.setattr(conv_kernels, "choose_algorithm", lambda *geometry: algorithm)
        report = mt.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, groups=2), [x, w, b],
                              rtol=RTOL)
    assert report.ok and report.checked > 0


# geometries that make the numba backend's 'auto' take each of its convolution algorithms
CONV_ALGORITHM_CASES = [("polyphase", (11, 11), 4, 2, 23), ("fourier", (5, 5), 1, 2, 11),
                        ("winograd5", (3, 3), 1, 1, 13), ("im2col", (3, 3), 2, 1, 9)]


@pytest.mark.parametrize("algorithm, k, stride, padding, size", CONV_ALGORITHM_CASES, ids=[c[0] for c in CONV_ALGORITHM_CASES])
@given(groups=st.integers(1, 2), bias=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_matches_torch_with_each_algorithm_of_the_numba_backend(algorithm, k, stride, padding, size, groups, bias,
                                                                       dtype, seed):
    """AlexNet's three kinds of convolution layer, at small sizes, each on the path it trains with,
    and a strided layer that takes im2col."""
    pytest.importorskip("torch")
    assert conv_kernels.choose_algorithm(k, (stride, stride), (padding, padding)) == algorithm
    geo = dict(n=3, cin=2 * groups, cout=3 * groups, h=size, w=size, k=k, stride=(stride, stride),
               padding=(padding, padding), groups=groups)
    with mt.config.using(backend="numba"):
        torch_compare(BY_NAME["conv2d"], conv_case(geo, bias, seed), dtype, seed)
