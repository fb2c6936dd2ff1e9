"""The GEMM calls of the CUDA convolution and linear layers, checked with a recording stand-in for
CuPy (no GPU, no nvcc): every product is one 2-D ``matmul`` per channel group into a slice of one
preallocated output of the inputs' dtype (CuPy's 2-D path is the one that honours the compute type,
TF32 included, and keeps float16/bfloat16 inputs 16-bit; its 3-D batched path upcasts float16,
passes the data type as the compute type and rejects bfloat16), transposed operands are passed as
views (never copied), and ``tf32=`` reaches CuPy's float32 compute type before each GEMM.
"""
import types

import numpy as np
import pytest

import minitorch_alex_kernels.cuda as kc


class RecordingCupy(types.SimpleNamespace):
    """numpy, except that ``matmul`` records its operands (and the compute type in force) and
    writes zeros: only the calls are under test here."""

    def __init__(self, state):
        super().__init__(calls=[], state=state)

    def __getattr__(self, name):
        return getattr(np, name)

    def matmul(self, x1, x2, out=None):  # cupy.matmul(x1, x2, /, out=None, ...): held to it in test_cupy_fakes.py
        a, b = x1, x2
        self.calls.append(dict(a=a, b=b, out=out, tf32=self.state.get("tf32")))
        if out is None:  # (a call under test must give one; this keeps a wrong one running to the asserts)
            shape = np.matmul(np.empty(a.shape, np.float32), np.empty(b.shape, np.float32)).shape
            return np.zeros(shape, a.dtype)
        out[...] = 0
        return out


@pytest.fixture
def fake(monkeypatch):
    state = {}
    cp = RecordingCupy(state)
    monkeypatch.setattr(kc, "cupy", lambda: cp)
    monkeypatch.setattr(kc, "function", lambda src, kernel, dtype: (lambda grid, block, args: None))
    monkeypatch.setattr(kc, "set_tf32", lambda enabled: state.__setitem__("tf32", enabled))
    return cp


def _check_2d_into(calls, dtype):
    for c in calls:
        assert c["out"] is not None, "a GEMM without a preallocated out"
        assert c["a"].ndim == c["b"].ndim == c["out"].ndim == 2
        assert c["a"].dtype == c["b"].dtype == c["out"].dtype == np.dtype(dtype)
        assert c["out"].flags.c_contiguous


def _dtypes():
    out = [np.float32, np.float16]
    try:
        import ml_dtypes

        out.append(ml_dtypes.bfloat16)
    except ImportError:  # bfloat16 arrays need ml_dtypes
        pass
    return out


@pytest.mark.parametrize("dtype", _dtypes())
def test_grouped_conv_is_one_2d_gemm_per_group_into_preallocated_outputs(fake, dtype):
    n, c, h, w, o, groups, k = 2, 6, 7, 7, 8, 2, 3
    x = np.ones((n, c, h, w), dtype)
    weight = np.ones((o, c // groups, k, k), dtype)
    impl = kc.Conv2d()
    impl.needs_input_grad = (True, True, True)
    impl.forward(x, weight, np.zeros(o, dtype), stride=(1, 1), padding=(1, 1), groups=groups)
    kk, npix = (c // groups) * k * k, n * h * w
    fwd = fake.calls[:]
    assert len(fwd) == groups
    _check_2d_into(fwd, dtype)
    assert [c_["a"].shape for c_ in fwd] == [(o // groups, kk)] * groups
    assert [c_["b"].shape for c_ in fwd] == [(kk, npix)] * groups
    assert fwd[0]["out"].base is fwd[1]["out"].base is not None  # slices of one (G, O/G, N*P) buffer
    for g, call in enumerate(fwd):  # group g reads its own rows of the column matrix, uncopied
        assert np.shares_memory(call["b"], impl.col) and call["b"].shape[0] == kk

    fake.calls.clear()
    impl.backward(np.ones((n, o, h, w), dtype))
    bwd = fake.calls
    assert len(bwd) == 2 * groups  # dW per group, dcol per group
    _check_2d_into(bwd, dtype)
    gw_calls, gcol_calls = bwd[:groups], bwd[groups:]
    for call in gw_calls:  # dW_g = dY_g · col_gᵀ: col_gᵀ is a transposed view of the saved col
        assert call["b"].shape == (npix, kk) and call["b"].flags.f_contiguous and np.shares_memory(call["b"], impl.col)
        assert call["out"].shape == (o // groups, kk)
    for call in gcol_calls:  # dcol_g = W_gᵀ · dY_g: W_gᵀ a transposed view of the weight
        assert call["a"].shape == (kk, o // groups) and call["a"].flags.f_contiguous
        assert np.shares_memory(call["a"], weight)
        assert call["out"].shape == (kk, npix)


@pytest.mark.parametrize("dtype", _dtypes())
def test_linear_gemms_take_transposed_views(fake, dtype):
    x, weight, bias = np.ones((4, 5), dtype), np.ones((3, 5), dtype), np.zeros(3, dtype)
    impl = kc.LinearReLU()
    impl.needs_input_grad = (True, True, True)
    impl.forward(x, weight, bias)
    (fwd,) = fake.calls
    assert fwd["b"].shape == (5, 3) and np.shares_memory(fwd["b"], weight) and fwd["out"].shape == (4, 3)
    fake.calls.clear()
    impl.backward(np.ones((4, 3), dtype))
    gx, gw = fake.calls
    _check_2d_into([fwd, gx, gw], dtype)
    assert gx["out"].shape == (4, 5) and gw["out"].shape == (3, 5)
    assert gw["a"].shape == (3, 4) and gw["a"].flags.f_contiguous  # gyᵀ, a view


@pytest.mark.parametrize("tf32", [True, False])
def test_tf32_reaches_every_float32_gemm(fake, tf32):
    impl = kc.Conv2d(tf32=tf32)
    impl.needs_input_grad = (True, True)
    impl.forward(np.ones((1, 4, 5, 5), np.float32), np.ones((4, 2, 3, 3), np.float32), stride=(1, 1),
                 padding=(0, 0), groups=2)
    impl.backward(np.ones((1, 4, 3, 3), np.float32))
    assert len(fake.calls) == 6 and all(c["tf32"] is tf32 for c in fake.calls)


def test_no_tf32_setting_leaves_the_compute_type_alone(fake):
    for tf32, dtype in ((None, np.float32), (True, np.float16)):  # float16 has no TF32 to set
        kc.Linear(tf32=tf32).forward(np.ones((2, 3), dtype), np.ones((4, 3), dtype))
    assert [c["tf32"] for c in fake.calls] == [None, None]


def test_gemm_refuses_batched_or_mixed_operands(fake):
    from minitorch_alex_kernels.cuda import _launch

    with pytest.raises(ValueError, match="2-D"):
        _launch.gemm(np.ones((2, 3, 4)), np.ones((2, 4, 5)), np.empty((2, 3, 5)))
    with pytest.raises(ValueError, match="one dtype"):
        _launch.gemm(np.ones((3, 4), np.float16), np.ones((4, 5), np.float16), np.empty((3, 5), np.float32))
