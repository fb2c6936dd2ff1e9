"""Without a GPU (CI): asking for 'cuda' fails with a clear reason, importing the GPU code does
not import CuPy, and the GPU benchmark explains itself. The missing/deviceless CuPy cases are
simulated, so they run whether or not CuPy is installed here."""
import importlib
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import minitorch_alex as mt

device_mod = importlib.import_module("minitorch_alex.device")  # (mt.device is the function)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setattr(device_mod, "_cupy", None)
    monkeypatch.setattr(device_mod, "_device_count", None)
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError


def fake_cupy_module(available, count):
    """The two calls that tell whether CuPy has a device (tests/test_cupy_fakes.py holds them to CuPy)."""
    cuda = types.SimpleNamespace(is_available=lambda: available,
                                 runtime=types.SimpleNamespace(getDeviceCount=lambda: count))
    return types.SimpleNamespace(cuda=cuda, ndarray=type("ndarray", (), {"__init__": lambda self, shape, dtype=float: None}))


def fake_cupy(monkeypatch, available, count=1):
    monkeypatch.setattr(device_mod, "_cupy", None)
    monkeypatch.setattr(device_mod, "_device_count", None)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy_module(available, count))


def test_cuda_without_cupy_says_to_install_it(no_cupy):
    with pytest.raises(RuntimeError, match="CuPy is not installed.*pip install"):
        mt.tensor(np.zeros(3), device="cuda:0")
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        mt.device("cuda").xp
    assert mt.device("cuda:1").type == "cuda"  # naming a device needs no GPU; using one does


def test_cuda_without_a_device_says_so(monkeypatch):
    fake_cupy(monkeypatch, available=False)
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        mt.tensor(np.zeros(3), device="cuda:0")
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        mt.models.alexnet(num_classes=10, devices="cuda:0")


def test_a_device_index_beyond_the_count_is_named(monkeypatch):
    fake_cupy(monkeypatch, available=True, count=1)
    with pytest.raises(RuntimeError, match=r"'cuda:3'.* 1 CUDA device"):
        mt.device("cuda:3").xp


def test_gpu_augmenter_without_cupy(no_cupy):
    from minitorch_alex.data import StoreSplit
    from minitorch_alex.data.gpu_augment import GPUAugmenter

    images = np.zeros((2, 8, 8, 3), np.uint8)
    split = StoreSplit(images=images, labels=np.zeros(2, np.int64), mean=np.zeros((8, 8, 3), np.float32),
                       eigvals=np.ones(3, np.float32), eigvecs=np.eye(3, dtype=np.float32))
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        GPUAugmenter(split, device="cuda:0")


def test_numpy_arrays_never_take_the_cuda_path():
    with mt.config.using(backend="auto"):
        assert mt.dispatch.backend_for("ReLU", (np.zeros(3, np.float32),)) != "cuda"


def test_importing_the_gpu_code_does_not_import_cupy():
    code = ("import sys, minitorch_alex, minitorch_alex.amp, minitorch_alex.data.gpu_augment, minitorch_alex_kernels.cuda; "
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cuda_sources_assemble_without_cupy():
    import minitorch_alex_kernels.cuda as kc

    for name in kc.SOURCES:
        text = kc.source(name)
        assert '#include "common.cuh"' not in text and "FOR_EACH_FLOAT" in text
        assert kc.kernel_names(name)
    assert kc.suffix(np.float16) == "f16"
    with pytest.raises(TypeError, match="no CUDA kernel for dtype int32"):
        kc.suffix(np.int32)


def test_bench_gpu_help_and_clear_failure_without_a_gpu(tmp_path):
    script = os.path.join(ROOT, "benchmarks", "bench_gpu.py")
    helped = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--quick" in helped.stdout and "batch 128" in helped.stdout
    has_gpu = subprocess.run([sys.executable, "-c", "import cupy, sys; sys.exit(0 if cupy.cuda.is_available() else 1)"],
                             capture_output=True).returncode == 0
    if has_gpu:
        pytest.skip("a GPU is present: the benchmark would run")
    out = tmp_path / "r.md"
    ran = subprocess.run([sys.executable, script, "--quick", "--out", str(out)], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 2 and not out.exists()
    assert "bench_gpu:" in ran.stderr and ("not installed" in ran.stderr or "no usable CUDA GPU" in ran.stderr)
