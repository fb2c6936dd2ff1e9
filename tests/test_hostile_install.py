"""A read-only install with an unwritable HOME, as in a usual container (issue 26, Medium #6):
numba has nowhere to put its cache ("no locator available"), and the kernels must still load
and run, with a one-line warning naming NUMBA_CACHE_DIR, never a failure."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = """
import numpy as np
from minitorch_alex_kernels.cpu.activation import relu_forward
x = np.array([-1.0, 2.0, -3.0, 4.0], np.float32)
print(relu_forward(x).tolist())
"""


def _read_only(path, stack):
    """Make ``path`` read-only even for root: a read-only bind mount over it (root), or
    permission bits (anyone else)."""
    if os.geteuid() != 0:
        for folder, _, files in os.walk(path):
            for name in files:
                os.chmod(os.path.join(folder, name), 0o444)
            os.chmod(folder, 0o555)
        return
    for args in (["mount", "--bind", str(path), str(path)], ["mount", "-o", "remount,ro,bind", str(path)]):
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"root cannot be kept from writing here without a read-only bind mount, and "
                        f"{' '.join(args[:3])} failed: {done.stderr.strip()}")
        if args[1] == "--bind":
            stack.append(path)


@pytest.fixture
def read_only_install(tmp_path):
    if not shutil.which("mount") and os.geteuid() == 0:
        pytest.skip("needs mount for a read-only bind mount as root (not installed here)")
    install, home = tmp_path / "site", tmp_path / "home"
    for package, name in (("minitorch_alex", "minitorch_alex"), ("kernels", "minitorch_alex_kernels")):  # as setup.py installs them
        shutil.copytree(os.path.join(ROOT, package), install / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    home.mkdir()
    mounted = []
    try:
        _read_only(install, mounted)
        _read_only(home, mounted)
        yield install, home
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
        if os.geteuid() != 0:
            for folder, _, _ in os.walk(tmp_path):
                os.chmod(folder, 0o755)


def test_kernels_run_from_a_read_only_install_with_an_unwritable_home(read_only_install, tmp_path):
    install, home = read_only_install
    assert not os.access(install, os.W_OK) or os.geteuid() == 0
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), PYTHONPATH=str(install), TMPDIR=str(tmp_path / "tmp"), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0.0, 2.0, 0.0, 4.0]"
    warnings = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert warnings[0].startswith("warning: numba cannot cache compiled kernels beside ")
    assert "NUMBA_CACHE_DIR" in warnings[0] and str(tmp_path / "tmp") in warnings[0]  # cached in a private folder
    assert os.listdir(tmp_path / "tmp")  # ... which holds the cache
