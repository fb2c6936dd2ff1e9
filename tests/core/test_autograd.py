"""The engine: graph building, accumulation, deep graphs, no_grad, freeing, dtypes, devices."""
import gc
import weakref

import numpy as np
import pytest

import minitorch_alex as mt
import minitorch_alex.nn.functional as F


def test_tensor_factory_defaults_and_copies():
    a = np.arange(3.0)
    t = mt.tensor(a)
    a[0] = 99
    assert t.numpy()[0] == 0  # copied
    assert mt.tensor([1.5, 2.0]).dtype == np.float32  # Python floats: float32 like PyTorch
    assert mt.tensor([1, 2]).dtype == np.int64
    assert mt.tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype
    assert mt.tensor([1.0], dtype=mt.float64).dtype == np.float64
    assert str(mt.tensor([1.0]).device) == "cpu:0"
    assert mt.tensor([1.0], device="cpu:1").device == mt.device("cpu:1")


def test_gradient_accumulates_over_uses_and_calls():
    x = mt.tensor([2.0, 3.0], requires_grad=True)
    y = (x * x + x).sum()  # dy/dx = 2x + 1
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])
    (x * 2.0).sum().backward()  # a second backward adds to .grad
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 9.0])


def test_diamond_graph():
    x = mt.tensor(np.array([1.5]), requires_grad=True)
    a = x * 3.0
    b = a.exp()
    c = a * a
    (b + c).sum().backward()  # d/dx [e^{3x} + 9x^2] = 3 e^{3x} + 18 x
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp(4.5) + 27.0, rtol=1e-12)


def test_chain_of_10000_ops_backprops_without_recursion():
    x = mt.tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**10_000], rtol=1e-9)


def test_no_grad_records_no_graph():
    x = mt.tensor([1.0], requires_grad=True)
    with mt.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()

    @mt.no_grad()
    def f(t):
        return t * 3.0

    assert f(x).is_leaf
    assert mt.is_grad_enabled()


def test_intermediate_buffers_are_freed_after_backward():
    x = mt.tensor(np.ones((4, 4)), requires_grad=True)
    h = x.exp()
    node = h._node
    saved = weakref.ref(node.y)  # Exp saves its output
    y = (h * 2.0).sum()
    del h
    y.backward()
    gc.collect()
    assert saved() is None and not node.__dict__
    with pytest.raises(RuntimeError, match="already freed"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_retain_grad_on_non_leaf():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3.0).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])


def test_backward_with_explicit_gradient_and_shape_check():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    y.backward(mt.tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])
    with pytest.raises(RuntimeError, match="single-element"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        (x * 2.0).backward(mt.tensor([1.0, 2.0, 3.0]))


def test_detach_cuts_the_graph():
    x = mt.tensor([3.0], requires_grad=True)
    y = x * x.detach()  # the detached factor is a constant
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0])


def test_numpy_scalars_and_reflected_operators():
    x = mt.tensor([2.0], requires_grad=True)
    y = 1.0 - x + np.float32(2.0) * x / 4.0
    assert isinstance(y, mt.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-0.5])


def test_dtype_mixing_is_rejected():
    a = mt.tensor(np.ones(2, dtype=np.float32))
    b = mt.tensor(np.ones(2, dtype=np.float64))
    with pytest.raises(TypeError, match="float32 .input 0. and float64 .input 1."):
        a + b
    assert (a + 1.0).dtype == np.float32  # Python numbers adopt the tensor's dtype


def test_virtual_devices_refuse_to_mix_and_to_is_differentiable():
    a = mt.tensor([1.0, 2.0], device="cpu:0", requires_grad=True)
    b = mt.tensor([3.0, 4.0], device="cpu:1", requires_grad=True)
    with pytest.raises(RuntimeError, match=r"cpu:0 \(input 0\) and cpu:1 \(input 1\)"):
        a * b
    c = a.to("cpu:1") * b
    assert c.device == "cpu:1"
    c.sum().backward()
    assert a.grad.device == "cpu:0"
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 2.0])


def test_cuda_without_cupy_or_gpu_gives_a_clear_error():
    pytest.importorskip("numpy")
    try:
        import cupy  # noqa: F401

        has_gpu = cupy.cuda.is_available()
    except Exception:
        has_gpu = False
    if has_gpu:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="cuda"):
        mt.tensor([1.0], device="cuda:0")


def test_bad_device_names():
    with pytest.raises(ValueError, match="expected 'cpu', 'cpu:N' or 'cuda:N'"):
        mt.device("tpu")
    with pytest.raises(ValueError, match="non-negative integer"):
        mt.device("cpu:x")


def test_to_dtype_is_differentiable():
    x = mt.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x.to(mt.float64) * 2.0
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_requires_grad_only_for_floats():
    with pytest.raises(TypeError, match="floating-point"):
        mt.tensor([1, 2], requires_grad=True)


def test_indexing_with_boolean_mask_and_tensor_index():
    x = mt.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x[x > 2.0]
    np.testing.assert_array_equal(y.numpy(), [3.0, 4.0, 5.0])
    idx = mt.tensor([1, 1, 0])
    z = x[idx]
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1, 1], [2, 2, 2]])


def test_split_by_size_like_torch():
    parts = mt.split(mt.tensor(np.arange(7.0)), 3)
    assert [p.shape for p in parts] == [(3,), (3,), (1,)]
    with pytest.raises(ValueError, match="add up to"):
        mt.split(mt.tensor(np.arange(7.0)), [3, 3])


def test_matmul_shapes_and_errors():
    a, b = mt.tensor(np.ones((2, 3))), mt.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"inner dimensions differ: \(2, 3\) @ \(4, 5\)"):
        a @ b
    assert (mt.tensor(np.ones(3)) @ mt.tensor(np.ones((3, 4)))).shape == (4,)
    assert (mt.tensor(np.ones(3)) @ mt.tensor(np.ones(3))).shape == ()


def test_mean_and_backward_through_functional():
    x = mt.tensor(np.ones((2, 4)), requires_grad=True)
    F.relu(x).mean().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 4), 1 / 8))


def test_repr_names_the_op():
    x = mt.tensor([1.0], requires_grad=True)
    assert "grad_fn=Mul" in repr(x * 2.0)
    assert "requires_grad=True" in repr(x)


class _TwiceReLU:
    """A stand-in backend implementation of ReLU (plain class, the dispatch interface) that
    doubles its output, and records what the engine told it."""

    seen = []

    def forward(self, x):
        _TwiceReLU.seen.append(self.needs_input_grad)
        self.positive = x > 0
        return 2 * x * self.positive

    def backward(self, gy):
        return (2 * gy * self.positive,)


@pytest.fixture
def fake_numba_relu(monkeypatch):
    """Dispatch sends ReLU on NumPy float arrays to ``_TwiceReLU`` (as if it were the numba backend)."""
    from minitorch_alex import dispatch

    monkeypatch.setitem(dispatch.TABLE, "ReLU", {**dispatch.TABLE["ReLU"], "numba": f"{__name__}:_TwiceReLU"})
    monkeypatch.setattr(dispatch, "_loaded", {})
    monkeypatch.setattr(dispatch, "numba_available", lambda: True)
    _TwiceReLU.seen.clear()
    return _TwiceReLU


def test_dispatch_is_decided_once_per_call_and_backward_uses_that_implementation(fake_numba_relu):
    x = mt.tensor(np.array([-1.0, 2.0, 3.0]), requires_grad=True)
    with mt.config.using(backend="numba"):
        y = F.relu(x)
    assert y._node.backend == "numba" and isinstance(y._node.impl, fake_numba_relu)
    assert type(y._node).__name__ == "ReLU"  # the node is the reference class: grad_fn names stay
    np.testing.assert_array_equal(y.numpy(), [0.0, 4.0, 6.0])
    with mt.config.using(backend="reference"):  # switching now changes nothing for this graph
        y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 2.0, 2.0])
    with mt.config.using(backend="reference"):
        z = F.relu(x)
    assert z._node.backend == "reference" and "impl" not in z._node.__dict__
    np.testing.assert_array_equal(z.numpy(), [0.0, 2.0, 3.0])


def test_the_implementation_learns_which_gradients_are_wanted_before_forward(fake_numba_relu):
    x = mt.tensor(np.array([1.0, -2.0]), requires_grad=True)
    with mt.config.using(backend="numba"):
        F.relu(x)
        F.relu(mt.tensor(np.array([1.0])))
        with mt.no_grad():
            F.relu(x)
    assert fake_numba_relu.seen == [(True,), (False,), (False,)]
