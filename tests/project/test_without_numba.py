"""numba is optional (the reference backend runs everywhere): without it, the tests of the numba
backend and kernels skip, saying so, instead of failing (``mt.config.using(backend="numba")``
raises without numba, and ``kernels.cpu`` imports it). Run in a child pytest where ``import
numba`` fails, in it and in the processes it starts."""
import os
import subprocess
import sys

from paths import ROOT

# the tests that run numba kernels: every numba-parametrized op check, the kernels' own tests,
# and those elsewhere that load a kernel module
SELECTION = ["tests/ops", "tests/kernels/cpu", "tests/core/test_memory.py",
             "tests/distributed/test_distributed_cli.py::test_ranks_share_the_nodes_cores",
             "tests/hostile/test_hostile_env.py::test_a_bad_thread_count_is_said_and_bounded",
             "tests/hostile/test_hostile_install.py"]


def test_numba_tests_skip_with_the_reason_when_numba_is_missing(tmp_path):
    # in every Python started with this environment (the scripts the tests run too)
    (tmp_path / "sitecustomize.py").write_text('import sys\nsys.modules["numba"] = None  # import numba fails\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, str(tmp_path)])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
                           "-q", "-rs", "-k", "numba or workspace or scratch or polyphase or ranks_share or thread_count "
                           "or read_only", *SELECTION], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    # pytest's last line of stdout (stderr may end with a plugin's warning, e.g. pytest-benchmark's
    # about xdist under the suite's workers)
    summary = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0 and "skipped" in summary and "failed" not in summary, out[-4000:]
    assert "needs numba" in out and "could not import 'minitorch_alex_kernels.cpu'" in out, out[-4000:]  # the reasons
