"""Bad environment variables (issue 26, Low #9): a bad MINITORCH_ALEX_* value is one line and
exit status 2 from the scripts, not an import-time traceback; a thread count that is not a
positive integer is ignored with a warning, and one above the CPU count is capped, as --workers."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREAD_VARS = ("MINITORCH_ALEX_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")


def _run(args, **env):
    full = {k: v for k, v in os.environ.items() if k not in THREAD_VARS and not k.startswith("MINITORCH_ALEX_")}
    full.update(PYTHONPATH=ROOT, **env)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full, cwd=ROOT, timeout=300)


BACKENDS = "expected one of ('auto', 'reference', 'numba', 'cuda')"


@pytest.mark.parametrize("script, var, value, expected", [
    ("train_imagenet.py", "MINITORCH_ALEX_BACKEND", "turbo", BACKENDS),
    ("train_imagenet.py", "MINITORCH_ALEX_TF32", "yes", "expected 0 or 1"),
    ("train_imagenet.py", "MINITORCH_ALEX_RETAIN_MEMORY", "2", "expected 0 or 1"),
    ("prepare_data.py", "MINITORCH_ALEX_BACKEND", "turbo", BACKENDS),
    ("export_onnx.py", "MINITORCH_ALEX_TF32", "yes", "expected 0 or 1"),
    ("predict.py", "MINITORCH_ALEX_BACKEND", "turbo", BACKENDS),
])
def test_a_bad_setting_variable_is_one_line_from_the_scripts(script, var, value, expected):
    proc = _run([os.path.join("examples", script), "--help"], **{var: value})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: {var}={value!r}: {expected}"


CPUS = len(os.sched_getaffinity(0))
COUNT = "from minitorch_alex_kernels.cpu import parallel; print(parallel.get_num_threads())"


@pytest.mark.parametrize("env, threads, warning", [
    ({"MINITORCH_ALEX_NUM_THREADS": "100000"}, CPUS,
     f"warning: MINITORCH_ALEX_NUM_THREADS=100000 is more than the {CPUS} CPUs of this process; using {CPUS}"),
    ({"MINITORCH_ALEX_NUM_THREADS": "abc"}, CPUS,
     f"warning: ignoring MINITORCH_ALEX_NUM_THREADS='abc' (expected an integer in [1, {CPUS}], the CPUs of this process)"),
    ({"MINITORCH_ALEX_NUM_THREADS": "-3", "OMP_NUM_THREADS": "1"}, 1,
     f"warning: ignoring MINITORCH_ALEX_NUM_THREADS='-3' (expected an integer in [1, {CPUS}], the CPUs of this process)"),
    ({"OMP_NUM_THREADS": "0"}, CPUS,
     f"warning: ignoring OMP_NUM_THREADS='0' (expected an integer in [1, {CPUS}], the CPUs of this process)"),
])
def test_a_bad_thread_count_is_said_and_bounded(env, threads, warning):
    proc = _run(["-c", COUNT], **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(threads)]
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [warning]
