"""kernels/blas_core.py: which OpenBLAS kernels a program asks for, decided before NumPy loads."""
import os
import subprocess
import sys

from minitorch_alex_kernels import blas_core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZEN5 = {"vendor": "AuthenticAMD", "family": 26, "flags": {"avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"}}


def test_the_hint_is_avx512_kernels_only_where_openblas_would_fall_back():
    assert blas_core.openblas_core_hint(ZEN5) == "SkylakeX"
    assert blas_core.openblas_core_hint(dict(ZEN5, family=25)) is None  # Zen 4: OpenBLAS knows it
    assert blas_core.openblas_core_hint(dict(ZEN5, flags={"avx2", "avx512f"})) is None  # no AVX-512BW/DQ/VL
    assert blas_core.openblas_core_hint(dict(ZEN5, vendor="GenuineIntel")) is None
    assert blas_core.openblas_core_hint({}) is None  # no /proc/cpuinfo


def test_cpu_info_reads_the_first_processor(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nflags\t\t: fpu avx2 avx512f\n\n"
                    "processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n")
    assert blas_core.cpu_info(str(path)) == {"vendor": "AuthenticAMD", "family": 26, "flags": {"fpu", "avx2", "avx512f"}}
    assert blas_core.cpu_info(str(tmp_path / "missing")) == {}
    path.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
                    "model name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: other\n")
    assert blas_core.cpu_info(str(path)) == {"vendor": "AuthenticAMD", "family": 25, "model": 17, "name": "AMD EPYC"}


def test_a_setting_of_ones_own_is_kept():
    env = {}
    assert blas_core.choose_openblas_core(env, ZEN5) == "SkylakeX" and env == {"OPENBLAS_CORETYPE": "SkylakeX"}
    env = {"OPENBLAS_CORETYPE": "Haswell"}
    assert blas_core.choose_openblas_core(env, ZEN5) is None and env == {"OPENBLAS_CORETYPE": "Haswell"}
    env = {}
    assert blas_core.choose_openblas_core(env, dict(ZEN5, family=25)) is None and env == {}


def test_the_module_loads_no_numpy_and_the_cli_sets_it_before_numpy():
    code = ("import sys; import minitorch_alex_kernels.blas_core as b; assert 'numpy' not in sys.modules; "
            "b.choose_openblas_core(info={'vendor': 'AuthenticAMD', 'family': 26, 'flags': set(b.AVX512)}); "
            "import os; print(os.environ.get('OPENBLAS_CORETYPE'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "SkylakeX", out.stderr
    # once NumPy is loaded it is too late: nothing is set
    late = code.replace("import sys;", "import sys, numpy;").replace("assert 'numpy' not in sys.modules; ", "")
    out = subprocess.run([sys.executable, "-c", late], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "None", out.stderr
    with open(os.path.join(ROOT, "examples", "train_imagenet.py")) as f:
        script = f.read()
    assert script.index("choose_openblas_core()") < script.index("from minitorch_alex.train import main")
