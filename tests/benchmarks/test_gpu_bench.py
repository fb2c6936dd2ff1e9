"""benchmarks/bench_gpu.py without a GPU: one failing mode is reported in its cell while the
others still run, and every time comes from CUDA events (a fake CuPy here)."""
import importlib.util
import os
import types

import cupy_api
import pytest
from paths import ROOT


@pytest.fixture
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", os.path.join(ROOT, "benchmarks", "bench_gpu.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_cupy(elapsed_ms):
    """Events and device facts as CuPy v14.2.0 takes them (cupy/cuda/stream.pyx, runtime.pyx);
    tests/gpu/test_cupy_fakes.py holds them to the installed CuPy."""
    class Event:
        def record(self, stream=None):
            pass

        def synchronize(self):
            pass

    runtime = types.SimpleNamespace(getDeviceProperties=lambda device: {"name": b"Fake GPU"}, runtimeGetVersion=lambda: 13000)
    cuda = types.SimpleNamespace(Event=Event, get_elapsed_time=lambda start_event, end_event: elapsed_ms, runtime=runtime)
    return types.SimpleNamespace(cuda=cuda, __version__="14.2.0")


def test_timed_uses_cuda_events(bench):
    calls = []
    assert bench.timed(fake_cupy(500.0), lambda: calls.append(1), steps=5, warmup=2) == pytest.approx(0.1)
    assert len(calls) == 7


def test_one_failing_mode_does_not_lose_the_table(bench, monkeypatch, tmp_path):
    cp = fake_cupy(1.0)

    def ours(cp_, args, mode):
        if mode == "tf32":
            raise MemoryError("out of memory allocating 1.2 GB")
        return 100.0 if mode == "fp32" else 150.0

    monkeypatch.setattr(bench, "require_gpu", lambda: cp)
    monkeypatch.setattr(bench, "ours_train", ours)
    monkeypatch.setattr(bench, "torch_train", lambda args, mode: 120.0)
    monkeypatch.setattr(bench, "ours_layers", lambda cp_, args: [("conv1", 1.0, 2.0)])
    monkeypatch.setattr(bench, "loader_rate", lambda cp_, args: (_ for _ in ()).throw(RuntimeError("no store")))
    out = tmp_path / "r.md"
    text = bench.main(["--quick", "--out", str(out)])
    assert out.read_text() == text
    assert "| float32 | 100.0 | 120.0 | 0.83x |" in text
    assert "| TF32 | failed (MemoryError: out of memory allocating 1.2 GB) | 120.0 | - |" in text
    assert "| mixed precision (fp16) | 150.0 | 120.0 | 1.25x |" in text
    assert "| conv1 | 1.000 | 2.000 |" in text and "failed (RuntimeError: no store)" in text


# held to the installed CuPy (tests/gpu/test_cupy_fakes.py holds the suite's other fakes)
def test_the_benchmark_fake_follows_cupy():
    cupy = cupy_api.installed_cupy()
    assert cupy_api.fake_vs_real(fake_cupy(1.0), cupy) == []
