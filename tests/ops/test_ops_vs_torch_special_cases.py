"""Against PyTorch CPU (the oracle; never used by the package itself), the cases a spec's drawn
inputs do not make (``test_op_vs_torch.py`` checks every op of ``op_specs.SPECS``): AlexNet's
overlapping pool windows, grouped LRN differing from ungrouped, cross-entropy on huge logits,
dropout given PyTorch's own mask, and the whole paper network forward and backward."""
import numpy as np
import pytest
from strategies import TORCH_TOL, assert_close, distinct_values

import minitorch_alex as mt
import minitorch_alex.nn.functional as F

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
pytestmark = pytest.mark.usefixtures("reference_backend")  # the reference code; test_op_backends.py checks the others



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


def test_max_pool2d_alexnet_overlapping_windows():
    rng = np.random.default_rng(0)
    x, xt = both(distinct_values(rng, (2, 3, 13, 13)), np.float64)
    y = F.max_pool2d(x, 3, 2)
    yt = torch.nn.functional.max_pool2d(xt, 3, 2)
    assert y.shape == (2, 3, 6, 6)
    close(y, yt, np.float64)


def test_lrn_groups_equals_torch_on_each_half():
    rng = np.random.default_rng(3)
    x, xt = both(rng.standard_normal((2, 8, 3, 3)) * 5, np.float64)
    y = F.local_response_norm(x, 5, alpha=0.1, groups=2)
    halves = [torch.nn.functional.local_response_norm(h, 5, alpha=0.5, beta=0.75, k=2.0) for h in xt.split(4, dim=1)]
    close(y, torch.cat(halves, 1), np.float64)
    ungrouped = F.local_response_norm(x, 5, alpha=0.1)
    assert not np.allclose(ungrouped.numpy(), y.numpy())  # the grouping changes the result


def test_cross_entropy_is_stable_for_huge_logits():
    z = mt.tensor(np.array([[1000.0, 0.0, -1000.0]]), requires_grad=True)
    loss = F.cross_entropy(z, [2])
    assert np.isfinite(loss.item()) and abs(loss.item() - 2000.0) < 1e-9
    loss.backward()
    assert np.all(np.isfinite(z.grad.numpy()))


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
