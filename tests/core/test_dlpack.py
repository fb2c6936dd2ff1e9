"""Zero-copy exchange: Tensor.__dlpack__ / __dlpack_device__, mt.from_dlpack, __cuda_array_interface__."""
import subprocess
import sys

import numpy as np
import pytest

import minitorch_alex as mt


def _cupy():
    try:
        import cupy

        return cupy if cupy.cuda.is_available() else None
    except Exception:
        return None


def test_numpy_exchange_shares_memory_both_ways():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = mt.from_dlpack(a)
    assert t.device == "cpu" and t.shape == (3, 4) and t.dtype == np.float32
    assert np.shares_memory(t.data, a)
    a[0, 0] = 42.0
    assert t.numpy()[0, 0] == 42.0
    back = np.from_dlpack(t)
    assert t.__dlpack_device__() == (1, 0)
    assert np.shares_memory(back, a)
    strided = mt.from_dlpack(a.T)  # non-contiguous views keep their strides
    np.testing.assert_array_equal(strided.numpy(), a.T)
    assert np.shares_memory(strided.data, a)
    assert mt.from_dlpack(a, device="cpu:1").device == "cpu:1"
    with pytest.raises(TypeError, match="expected an object with __dlpack__"):
        mt.from_dlpack([1, 2])


def test_torch_exchange_shares_memory_both_ways():
    torch = pytest.importorskip("torch")
    src = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    t = mt.from_dlpack(src)
    assert t.dtype == np.float64 and t.shape == (2, 3)
    src[1, 2] = -1.0
    assert t.numpy()[1, 2] == -1.0
    y = (t * 2.0).sum()  # a framework tensor like any other
    assert y.item() == pytest.approx(2 * (0 + 1 + 2 + 3 + 4 - 1))
    ours = mt.tensor(np.ones((4,), np.float32), requires_grad=True)
    view = torch.from_dlpack(ours)
    view += 1  # the same memory
    np.testing.assert_array_equal(ours.numpy(), np.full(4, 2.0, np.float32))
    with pytest.raises((RuntimeError, BufferError)):  # torch refuses to export what needs grad
        mt.from_dlpack(torch.ones(2, requires_grad=True))
    assert mt.from_dlpack(torch.ones(2, requires_grad=True).detach()).shape == (2,)


def test_cpu_tensors_have_no_cuda_array_interface_and_the_package_never_imports_torch():
    assert not hasattr(mt.tensor([1.0]), "__cuda_array_interface__")
    code = ("import numpy as np, sys, minitorch_alex as mt; t = mt.from_dlpack(np.zeros(3)); np.from_dlpack(t); "
            "import minitorch_alex.onnx; assert 'torch' not in sys.modules, 'torch imported'")
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.skipif(_cupy() is None, reason="needs a GPU and CuPy")
def test_cuda_tensors_exchange_with_cupy_and_torch_without_copies():
    cupy = _cupy()
    g = cupy.arange(8, dtype=cupy.float32)
    t = mt.from_dlpack(g)
    assert t.device == "cuda:0" and t.data.data.ptr == g.data.ptr
    assert t.__dlpack_device__() == (2, 0)
    assert t.__cuda_array_interface__["data"][0] == g.data.ptr
    assert cupy.from_dlpack(t).data.ptr == g.data.ptr
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        tt = torch.from_dlpack(t)
        assert tt.data_ptr() == g.data.ptr and tt.is_cuda
        assert mt.from_dlpack(tt).data.data.ptr == g.data.ptr
