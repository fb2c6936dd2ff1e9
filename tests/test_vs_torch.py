"""Forward and backward against PyTorch CPU (the oracle; never used by the package itself),
float64 and float32, on hypothesis-generated configurations."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import TORCH_TOL, assert_close, conv_geometries, distinct_values, dtypes, pool_geometries

import minitorch_alex as mt
import minitorch_alex.nn.functional as F

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
pytestmark = pytest.mark.usefixtures("reference_backend")  # the reference code; test_backends.py checks the others



def both(a, dtype):
    """The same values as a minitorch tensor and a torch tensor, both requiring grad."""
    a = np.asarray(a, dtype=dtype)
    return mt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def backward_both(y_mt, y_t, rng):
    g = rng.standard_normal(y_mt.shape).astype(y_mt.dtype)
    y_mt.backward(mt.tensor(g))
    y_t.backward(torch.from_numpy(g))


def close(a_mt, a_t, dtype, scale=1.0):
    assert_close(a_mt.numpy(), a_t.detach().numpy(), dtype, TORCH_TOL, scale)


def check_conv2d_against_torch(n, cin, cout, h, w, k, stride, padding, groups, bias, dtype, rng):
    """conv2d's output and gradients against torch's on random inputs of these shapes."""
    x, xt = both(rng.standard_normal((n, cin, h, w)), dtype)
    wt_np = rng.standard_normal((cout, cin // groups, *k))
    W, Wt = both(wt_np, dtype)
    B, Bt = both(rng.standard_normal(cout), dtype) if bias else (None, None)
    y = F.conv2d(x, W, B, stride, padding, groups)
    yt = torch.nn.functional.conv2d(xt, Wt, Bt, stride, padding, 1, groups)
    scale = np.sqrt(wt_np[0].size)
    close(y, yt, dtype, scale)
    backward_both(y, yt, rng)
    area = n * y.shape[2] * y.shape[3]  # terms in each weight-gradient sum, per input tap
    close(x.grad, xt.grad, dtype, scale)
    close(W.grad, Wt.grad, dtype, scale * np.sqrt(area))
    if bias:
        close(B.grad, Bt.grad, dtype, np.sqrt(area))


@given(geo=conv_geometries(max_size=12, max_batch=3), bias=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_matches_torch(geo, bias, dtype, seed):
    g = geo
    check_conv2d_against_torch(g["n"], g["cin"], g["cout"], g["h"], g["w"], g["k"], g["stride"], g["padding"], g["groups"],
                               bias, dtype, np.random.default_rng(seed))


# geometries that make the numba backend's 'auto' take each of its convolution algorithms
CONV_ALGORITHM_CASES = [("polyphase", (11, 11), 4, 2, 23), ("fourier", (5, 5), 1, 2, 11),
                        ("winograd5", (3, 3), 1, 1, 13), ("im2col", (3, 3), 2, 1, 9)]


@pytest.mark.parametrize("algorithm, k, stride, padding, size", CONV_ALGORITHM_CASES, ids=[c[0] for c in CONV_ALGORITHM_CASES])
@given(groups=st.integers(1, 2), bias=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d_matches_torch_with_each_algorithm_of_the_numba_backend(algorithm, k, stride, padding, size, groups, bias,
                                                                       dtype, seed):
    """AlexNet's three kinds of convolution layer, at small sizes, each on the path it trains with,
    and a strided layer that takes im2col."""
    from minitorch_alex_kernels.cpu import conv as conv_kernels

    assert conv_kernels.choose_algorithm(k, (stride, stride), (padding, padding)) == algorithm
    with mt.config.using(backend="numba"):
        check_conv2d_against_torch(3, 2 * groups, 3 * groups, size, size, k, (stride, stride), (padding, padding), groups,
                                   bias, dtype, np.random.default_rng(seed))


@given(geo=pool_geometries(max_size=10), dtype=dtypes, seed=st.integers(0, 2**16))
def test_max_pool2d_matches_torch(geo, dtype, seed):
    shape, k, stride, padding = geo["shape"], geo["k"], geo["stride"], geo["padding"]
    rng = np.random.default_rng(seed)
    x, xt = both(distinct_values(rng, shape), dtype)
    y = F.max_pool2d(x, k, stride, padding)
    yt = torch.nn.functional.max_pool2d(xt, k, stride, padding)
    close(y, yt, dtype)
    backward_both(y, yt, rng)
    close(x.grad, xt.grad, dtype)


def test_max_pool2d_alexnet_overlapping_windows():
    rng = np.random.default_rng(0)
    x, xt = both(distinct_values(rng, (2, 3, 13, 13)), np.float64)
    y = F.max_pool2d(x, 3, 2)
    yt = torch.nn.functional.max_pool2d(xt, 3, 2)
    assert y.shape == (2, 3, 6, 6)
    close(y, yt, np.float64)


@given(size=st.integers(1, 8), c=st.integers(1, 12), alpha=st.sampled_from([1e-4, 0.01, 0.5]),
       beta=st.sampled_from([0.75, 0.5, 1.0]), k=st.sampled_from([2.0, 1.0]), dtype=dtypes, seed=st.integers(0, 2**16))
def test_local_response_norm_matches_torch_with_alpha_times_size(size, c, alpha, beta, k, dtype, seed):
    rng = np.random.default_rng(seed)
    x, xt = both(rng.standard_normal((2, c, 4, 3)) * 3, dtype)
    y = F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k)
    # PyTorch averages over the window: its alpha is ours times size
    yt = torch.nn.functional.local_response_norm(xt, size, alpha=alpha * size, beta=beta, k=k)
    close(y, yt, dtype)
    backward_both(y, yt, rng)
    close(x.grad, xt.grad, dtype)


def test_lrn_groups_equals_torch_on_each_half():
    rng = np.random.default_rng(3)
    x, xt = both(rng.standard_normal((2, 8, 3, 3)) * 5, np.float64)
    y = F.local_response_norm(x, 5, alpha=0.1, groups=2)
    halves = [torch.nn.functional.local_response_norm(h, 5, alpha=0.5, beta=0.75, k=2.0) for h in xt.split(4, dim=1)]
    close(y, torch.cat(halves, 1), np.float64)
    ungrouped = F.local_response_norm(x, 5, alpha=0.1)
    assert not np.allclose(ungrouped.numpy(), y.numpy())  # the grouping changes the result


@given(n=st.integers(1, 8), fin=st.integers(1, 20), fout=st.integers(1, 20), bias=st.booleans(), dtype=dtypes,
       seed=st.integers(0, 2**16))
def test_linear_matches_torch(n, fin, fout, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x, xt = both(rng.standard_normal((n, fin)), dtype)
    W, Wt = both(rng.standard_normal((fout, fin)), dtype)
    B, Bt = both(rng.standard_normal(fout), dtype) if bias else (None, None)
    y, yt = F.linear(x, W, B), torch.nn.functional.linear(xt, Wt, Bt)
    close(y, yt, dtype, np.sqrt(fin))
    backward_both(y, yt, rng)
    close(x.grad, xt.grad, dtype, np.sqrt(fout))
    close(W.grad, Wt.grad, dtype, np.sqrt(n))
    if bias:
        close(B.grad, Bt.grad, dtype, np.sqrt(n))


@given(n=st.integers(1, 16), c=st.integers(2, 20), scale=st.sampled_from([1.0, 30.0]), dtype=dtypes,
       seed=st.integers(0, 2**16))
def test_cross_entropy_matches_torch(n, c, scale, dtype, seed):
    rng = np.random.default_rng(seed)
    z, zt = both(rng.standard_normal((n, c)) * scale, dtype)
    target = rng.integers(0, c, n)
    loss = F.cross_entropy(z, target)
    loss_t = torch.nn.functional.cross_entropy(zt, torch.from_numpy(target))
    close(loss, loss_t, dtype, scale)
    loss.backward()
    loss_t.backward()
    close(z.grad, zt.grad, dtype)


def test_cross_entropy_is_stable_for_huge_logits():
    z = mt.tensor(np.array([[1000.0, 0.0, -1000.0]]), requires_grad=True)
    loss = F.cross_entropy(z, [2])
    assert np.isfinite(loss.item()) and abs(loss.item() - 2000.0) < 1e-9
    loss.backward()
    assert np.all(np.isfinite(z.grad.numpy()))


@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), dtype=dtypes, seed=st.integers(0, 2**16))
def test_softmax_log_softmax_relu_match_torch(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    for ours, theirs in [(F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)]:
        x, xt = both(rng.standard_normal(shape) * 4, dtype)
        y, yt = ours(x, axis=-1), theirs(xt, dim=-1)
        close(y, yt, dtype)
        backward_both(y, yt, rng)
        close(x.grad, xt.grad, dtype)
    x, xt = both(distinct_values(rng, tuple(shape)), dtype)
    y, yt = F.relu(x), torch.relu(xt)
    close(y, yt, dtype)
    backward_both(y, yt, rng)
    close(x.grad, xt.grad, dtype)


@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), p=st.sampled_from([0.0, 0.3, 0.5]), dtype=dtypes,
       seed=st.integers(0, 2**16))
def test_dropout_in_eval_matches_torch(shape, p, dtype, seed):
    rng = np.random.default_rng(seed)
    x, xt = both(rng.standard_normal(shape), dtype)
    y, yt = F.dropout(x, p, training=False), torch.nn.functional.dropout(xt, p, training=False)
    close(y, yt, dtype)
    backward_both(y, yt, rng)
    close(x.grad, xt.grad, dtype)
    # the paper's convention scales at test time instead
    np.testing.assert_allclose(F.dropout(x, p, training=False, inverted=False).numpy(), x.numpy() * (1 - p), rtol=1e-6)


def test_dropout_in_training_matches_torch_given_its_mask():
    rng = np.random.default_rng(5)
    x, xt = both(rng.standard_normal((50, 40)), np.float64)
    torch.manual_seed(0)
    yt = torch.nn.functional.dropout(xt, 0.5, training=True)
    mask = (yt != 0).numpy()
    y = F.dropout(x, 0.5, training=True, mask=mask)
    close(y, yt, np.float64)
    backward_both(y, yt, rng)
    close(x.grad, xt.grad, np.float64)


def test_alexnet_matches_torch_forward_and_backward():
    """The whole paper network, same weights, against the same network written in torch."""
    mt.manual_seed(0)
    model = mt.models.alexnet(num_classes=10, paper_dropout=False).to(dtype=np.float64)
    model.eval()
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((2, 3, 224, 224))
    target = np.array([1, 7])
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.state_dict().items()}
    tf = torch.nn.functional

    def torch_alexnet(x):
        x = tf.max_pool2d(_lrn2(tf.relu(tf.conv2d(x, p["conv1.weight"], p["conv1.bias"], 4, 2))), 3, 2)
        x = tf.max_pool2d(_lrn2(tf.relu(tf.conv2d(x, p["conv2.weight"], p["conv2.bias"], 1, 2, groups=2))), 3, 2)
        x = tf.relu(tf.conv2d(x, p["conv3.weight"], p["conv3.bias"], 1, 1))
        x = tf.relu(tf.conv2d(x, p["conv4.weight"], p["conv4.bias"], 1, 1, groups=2))
        x = tf.max_pool2d(tf.relu(tf.conv2d(x, p["conv5.weight"], p["conv5.bias"], 1, 1, groups=2)), 3, 2)
        x = tf.relu(tf.linear(x.flatten(1), p["fc6.weight"], p["fc6.bias"]))
        x = tf.relu(tf.linear(x, p["fc7.weight"], p["fc7.bias"]))
        return tf.linear(x, p["fc8.weight"], p["fc8.bias"])

    def _lrn2(x):  # LRN within each tower's half, paper alpha 1e-4 = torch alpha 5e-4
        return torch.cat([tf.local_response_norm(h, 5, alpha=5e-4, beta=0.75, k=2.0) for h in x.chunk(2, 1)], 1)

    loss = F.cross_entropy(model(mt.tensor(x_np)), target)
    loss_t = tf.cross_entropy(torch_alexnet(torch.tensor(x_np)), torch.from_numpy(target))
    np.testing.assert_allclose(loss.item(), loss_t.item(), rtol=1e-10)
    loss.backward()
    loss_t.backward()
    for name, param in model.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(), p[name].grad.numpy(), rtol=1e-7, atol=1e-12, err_msg=name)
