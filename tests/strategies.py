"""What the op tests share: input builders, hypothesis strategies for the shapes of convolution
and pooling, and the tolerances of each kind of comparison (with the helper that applies them).

The strategies take the bounds each test file used before they were merged here, so every test
draws from the same ranges as it did."""
import numpy as np
from hypothesis import strategies as st

DTYPES = [np.float32, np.float64]
dtypes = st.sampled_from(DTYPES)

# an implementation against the reference (same algorithm or another one): rounding of the sums only
KERNEL_TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}
# against PyTorch (other summation orders, other libraries)
TORCH_TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}


def assert_close(actual, expected, dtype, tol, scale=1.0, err_msg=""):
    """``actual`` equals ``expected`` to ``tol[dtype]``'s rtol and to its atol times ``scale``
    (about the square root of the number of terms in each sum, for sums of random values)."""
    dtype = np.dtype(dtype).type
    np.testing.assert_allclose(actual, expected, rtol=tol[dtype]["rtol"], atol=tol[dtype]["atol"] * scale,
                               err_msg=err_msg)


def distinct_values(rng, shape, margin=0.001):
    """float64 values of ``shape`` in about [-2, 2], pairwise at least 0.6 * spacing apart
    (spacing = min(0.05, 4 / size)) and at least ``margin`` away from 0: no ReLU kinks and no
    max-pool ties within a finite-difference step (1e-6)."""
    n = int(np.prod(shape))
    spacing = min(0.05, 4.0 / n)
    margin = min(margin, spacing / 4)
    grid = (np.arange(n) - n / 2 + 0.5) * spacing  # symmetric about 0, never 0 itself
    values = rng.permutation(grid) + rng.uniform(-0.2, 0.2, n) * spacing  # jitter keeps spacing >= 0.6 * spacing
    values[np.abs(values) < margin] += np.sign(values[np.abs(values) < margin]) * margin
    return values.reshape(shape)


def _dilations(draw, max_dilation):
    """(dh, dw), each in 1..max_dilation; (1, 1) without a draw when max_dilation is 1 (so the
    draws of the undilated strategies are what they were)."""
    return (1, 1) if max_dilation == 1 else (draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation)))


@st.composite
def conv_geometries(draw, max_groups=3, max_per_group=3, max_kernel=5, max_stride=4, max_size=11, max_batch=4,
                    max_dilation=1):
    """A convolution's shapes, stride, padding, groups and dilation: dict(n, cin, cout, h, w, k,
    stride, padding, groups, dilation), with cin and cout multiples of groups and the (dilated)
    kernel fitting the padded input."""
    groups = draw(st.integers(1, max_groups))
    cin, cout = groups * draw(st.integers(1, max_per_group)), groups * draw(st.integers(1, max_per_group))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = _dilations(draw, max_dilation)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    h = draw(st.integers(max(1, span_h - 2 * ph), max(max_size, span_h)))
    w = draw(st.integers(max(1, span_w - 2 * pw), max(max_size, span_w)))
    n = draw(st.integers(1, max_batch))
    return dict(n=n, cin=cin, cout=cout, h=h, w=w, k=(kh, kw), stride=(sh, sw), padding=(ph, pw), groups=groups,
                dilation=(dh, dw))


def conv_arrays(geo, bias, rng, dtype=np.float64):
    """x, weight and bias (or None) of standard normal values for a ``conv_geometries`` draw."""
    x = rng.standard_normal((geo["n"], geo["cin"], geo["h"], geo["w"])).astype(dtype)
    w = rng.standard_normal((geo["cout"], geo["cin"] // geo["groups"], *geo["k"])).astype(dtype)
    return x, w, rng.standard_normal(geo["cout"]).astype(dtype) if bias else None


@st.composite
def pool_geometries(draw, max_size=12, max_batch=3, max_channels=4, max_dilation=1):
    """A max-pool's input shape, kernel, stride, padding (at most half the kernel) and dilation:
    dict(shape, k, stride, padding, dilation)."""
    k = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2))
    dilation = _dilations(draw, max_dilation)
    span = [d * (kk - 1) + 1 for d, kk in zip(dilation, k)]
    h = draw(st.integers(max(1, span[0] - 2 * padding[0]), max(max_size, span[0])))
    w = draw(st.integers(max(1, span[1] - 2 * padding[1]), max(max_size, span[1])))
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), h, w)
    return dict(shape=shape, k=k, stride=stride, padding=padding, dilation=dilation)
