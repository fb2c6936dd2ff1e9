"""benchmarks/gpu_check.py on a machine without a GPU: it stops at once saying why, and its op
section (every CUDA op class against the reference, in float32, float16 and bfloat16) runs here
on the host-emulated kernels of tests/test_cuda_emulated.py, so the check itself is checked."""
import importlib.util
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from test_cuda_emulated import emulated, libraries  # noqa: F401 (fixtures: host builds of the .cu files)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
def test_the_op_section_passes_on_the_emulated_kernels(emulated, tmp_path, seed):  # noqa: F811
    check = load()
    cp = types.SimpleNamespace(asarray=np.asarray, asnumpy=np.asarray)
    report = check.Report(str(tmp_path / "r.md"))
    report.section("ops", check.ops_vs_reference, cp, seed)
    text = (tmp_path / "r.md").read_text()
    assert report.failures == [], text
    for op in ("conv grouped", "linear + relu", "max pool 3/2", "LRN", "dropout", "sgd update"):
        assert f"| {op} |" in text
    assert "| conv grouped | float16 |" in text


def test_a_failing_section_is_reported_and_the_next_runs(tmp_path):
    check = load()
    report = check.Report(str(tmp_path / "r.md"))
    report.section("broken", lambda rep: 1 / 0)
    report.section("fine", lambda rep: rep.add("all good"))
    text = (tmp_path / "r.md").read_text()
    assert report.failures == ["broken"] and "ZeroDivisionError" in text and "all good" in text
