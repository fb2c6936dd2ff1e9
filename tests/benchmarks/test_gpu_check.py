"""benchmarks/gpu_check.py on a machine without a GPU: it stops at once saying why, and its op
section (every CUDA op class of tests/op_specs.py against the reference, in float32, float16 and
bfloat16) runs here
on the host-emulated kernels (tests/cuda_emulation.py), so the check itself is checked."""
import importlib.util
import os
import shutil
import subprocess
import sys
import types

import cupy_api
import numpy as np
import op_specs
import pytest
from paths import ROOT

SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.py")
SEEDS = int(os.environ.get("GPU_CHECK_SEEDS", "3"))


def load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cupy_it_fails_fast_with_the_reason(tmp_path):
    code = ("import sys; sys.modules['cupy'] = None; sys.argv = ['gpu_check.py', '--out', sys.argv[1]]; "
            f"import runpy; runpy.run_path({SCRIPT!r}, run_name='__main__')")
    ran = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.md")], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert ran.returncode == 2
    assert "CuPy is not installed" in ran.stderr and not (tmp_path / "r.md").exists()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="the emulated kernels need nvcc on the PATH")
@pytest.mark.parametrize("seed", range(SEEDS))
def test_the_op_section_passes_on_the_emulated_kernels(emulated, tmp_path, seed):
    check = load()
    cp = types.SimpleNamespace(asarray=np.asarray, asnumpy=np.asarray)
    report = check.Report(str(tmp_path / "r.md"))
    report.section("ops", check.ops_vs_reference, cp, seed)
    text = (tmp_path / "r.md").read_text()
    assert report.failures == [], text
    for spec in op_specs.SPECS:  # every op with a CUDA form, in every dtype
        for dtype in ("float32", "float16", "bfloat16") if op_specs.hot(spec) else ():
            assert f"| {spec.name} | {dtype} |" in text
    for op in ("sgd update", "amp unscale (+ inf flag set)"):
        assert f"| {op} |" in text


def test_a_failing_section_is_reported_and_the_next_runs(tmp_path):
    check = load()
    report = check.Report(str(tmp_path / "r.md"))
    report.section("broken", lambda rep: 1 / 0)
    report.section("fine", lambda rep: rep.add("all good"))
    text = (tmp_path / "r.md").read_text()
    assert report.failures == ["broken"] and "ZeroDivisionError" in text and "all good" in text


# -- the CPU dry run: the staged harness and the new sections on a fake CuPy -----------------------

class HostArray(np.ndarray):
    """A NumPy array that passes for a CuPy one: ``.data.ptr`` and the CUDA array interface."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0])

    @property
    def __cuda_array_interface__(self):
        return {"data": (self.__array_interface__["data"][0], False), "shape": self.shape, "version": 3}


def fake_gpu():
    """The CuPy calls of the peer-copy and NCCL sections on host memory, streams synchronous; the
    copy is a real memmove between the addresses given (parameters as CuPy 14.2's: test_cupy_fakes)."""
    import ctypes

    from fake_nccl import FakeNccl

    class Stream:
        def __init__(self, null=False, non_blocking=False):
            self.ptr = 1

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def wait_event(self, event):
            pass

        def synchronize(self):
            pass

    class Event:
        def __init__(self, block=False, disable_timing=False):
            self.done = True

        def record(self, stream=None):
            pass

    def host(a):
        return np.asarray(a).view(HostArray)

    current = Stream()
    runtime = types.SimpleNamespace(
        memcpyPeerAsync=lambda dst, dstDevice, src, srcDevice, size, stream: ctypes.memmove(dst, src, size),
        getDeviceCount=lambda: 1)
    nccl = FakeNccl({"barrier": __import__("threading").Barrier(1), "bufs": [None], "uids": [None]}, [])
    cuda = types.SimpleNamespace(Stream=Stream, Event=Event, Device=cupy_api.OneDevice, runtime=runtime, nccl=nccl,
                                 get_current_stream=lambda device_id=-1: current)
    return types.SimpleNamespace(
        cuda=cuda, float32=np.float32, asnumpy=lambda a, stream=None: np.array(a),
        zeros=lambda shape, dtype=float, order="C": host(np.zeros(shape, dtype)),
        empty=lambda shape, dtype=float, order="C": host(np.empty(shape, dtype)),
        arange=lambda *a, dtype=None: host(np.arange(*a, dtype=dtype)),
        ascontiguousarray=lambda a, dtype=None: host(np.ascontiguousarray(a)))


def test_the_dry_run_fake_follows_cupy():
    cupy = pytest.importorskip("cupy")
    problems = cupy_api.fake_vs_real(fake_gpu(), cupy, bookkeeping={"nccl"})
    assert problems == []


def test_the_peer_copy_section_runs_the_copy_code(tmp_path, monkeypatch):
    check = load()
    report = check.Report(str(tmp_path / "r.md"))
    report.section("peer copy", check.peer_copy, fake_gpu())
    assert report.failures == [], (tmp_path / "r.md").read_text()
    assert "values [20.0]" in (tmp_path / "r.md").read_text()
    device_mod = importlib.import_module("minitorch_alex.device")  # a copy that ignored the addresses fails

    monkeypatch.setattr(device_mod, "_peer_copy", lambda cupy, a, src, dst, streams: cupy.zeros(a.shape, a.dtype))
    report.section("peer copy, broken", check.peer_copy, fake_gpu())
    assert report.failures == ["peer copy, broken"]


def test_the_nccl_section_runs_ncclcomm_with_a_bytes_id(tmp_path):
    check = load()
    report = check.Report(str(tmp_path / "r.md"))
    report.section("nccl", check.nccl_check, fake_gpu())
    text = (tmp_path / "r.md").read_text()
    assert report.failures == [], text
    assert "allreduce + broadcast of 1000 floats equal" in text and "two ranks: skipped, one GPU" in text


def test_the_dry_run_runs_every_section_in_order_writes_each_and_keeps_the_caps(tmp_path, monkeypatch):
    """Every section of the real plan is called with the fake CuPy (and its own extra arguments);
    the report on disk holds each section's result before the next starts; a section that runs
    past its cap is stopped there and the rest still run; the total stays within the budget."""
    check = load()
    out = tmp_path / "RESULTS_GPU.md"
    cp, seen = fake_gpu(), []

    def stand_in(title, cap):
        def run(rep, *args):
            assert args[:1] == (cp,) or title.startswith("9."), f"{title} did not get the fake CuPy"
            if seen:  # the previous section is on disk already
                assert f"_{seen[-1]}: " in out.read_text()
            seen.append(title)
            rep.add(f"ran {title}")
            if title.startswith("3."):  # runs past its (shrunk) cap
                import time
                time.sleep(5)
        return run

    sections = [(title, stand_in(title, cap), 0.5 if title.startswith("3.") else cap, need)
                for title, fn, cap, need in check.SECTIONS]
    assert len(sections) == 9
    code = check.main(["--out", str(out), "--budget", "300"], cupy=cp, sections=sections)
    text = out.read_text()
    assert seen == [t for t, *_ in check.SECTIONS]
    assert code == 1 and "_3. NCCL: STOPPED (stopped at its 0.5 s cap) in 0.5 s" in text
    assert all(f"ran {t}" in text for t in seen) and "total " in text
    assert not list(tmp_path.glob(".gpu_check.*"))  # no temp file left


def test_sections_that_would_overrun_the_budget_are_skipped_with_the_reason(tmp_path):
    check = load()
    out = tmp_path / "r.md"
    calls = []
    sections = [("a", lambda rep, cp: calls.append("a"), 10, 1), ("b", lambda rep, cp: calls.append("b"), 10, 50)]
    assert check.main(["--out", str(out), "--budget", "20"], cupy=fake_gpu(), sections=sections) == 0
    assert calls == ["a"] and "## b" in out.read_text() and "it needs 50 s_" in out.read_text()


def test_out_is_required_unless_the_gpu_machines_out_folder_is_set(tmp_path, monkeypatch, capsys):
    check = load()
    monkeypatch.delenv("OUT", raising=False)
    with pytest.raises(SystemExit) as e:
        check.main([], cupy=fake_gpu(), sections=[])
    assert e.value.code == 2 and "--out" in capsys.readouterr().err
    monkeypatch.setenv("OUT", str(tmp_path))
    assert check.main([], cupy=fake_gpu(), sections=[]) == 0
    assert (tmp_path / "RESULTS_GPU.md").exists()
    with pytest.raises(SystemExit):
        check.main(["--out", str(tmp_path / "missing" / "r.md")], cupy=fake_gpu(), sections=[])
