"""A non-editable install must carry the CUDA sources the loader reads at run time: build the wheel
(offline, no build isolation) from a copy of the tree and list what it holds. The repository's
``kernels/`` installs as ``minitorch_alex_kernels`` (a top-level ``kernels`` is another project on
the package index), and a foreign ``kernels`` on the path never stands in for it."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


KERNELS = "minitorch_alex_kernels"
# imports the package, runs an op on the numba kernels and names the file its kernel class came from
RUN_AN_OP = """
import sys
import numpy as np
import minitorch_alex as mt
y = mt.nn.functional.relu(mt.tensor(np.array([-1.0, 2.0], np.float32)))
impl = mt.dispatch.load("ReLU", "numba")
print(y.numpy().tolist(), impl.__module__, sys.modules[impl.__module__].__file__, "kernels" in sys.modules)
"""


@pytest.fixture(scope="module")
def wheel_file(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("minitorch_alex", "kernels"):
        shutil.copytree(os.path.join(ROOT, name), src / name, ignore=ignore)
    for name in ("setup.py", "README.md", f"{KERNELS}.py"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr and "wheel" in proc.stderr:
        pytest.skip("this setuptools cannot build wheels offline (needs the wheel package)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.glob("minitorch_alex-*.whl")
    return path


@pytest.fixture(scope="module")
def wheel(wheel_file):
    with zipfile.ZipFile(wheel_file) as z:
        return set(z.namelist())


@pytest.fixture
def foreign_kernels(tmp_path):
    """A folder holding a top-level package ``kernels`` that fails loudly when imported."""
    (tmp_path / "foreign" / "kernels").mkdir(parents=True)
    (tmp_path / "foreign" / "kernels" / "__init__.py").write_text(
        "raise RuntimeError('the foreign package named kernels was imported')\n")
    return tmp_path / "foreign"


def _run_an_op(pythonpath, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    proc = subprocess.run([sys.executable, "-c", RUN_AN_OP], capture_output=True, text=True, env=env, cwd=str(cwd),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    values, module, path, foreign = proc.stdout.rsplit(maxsplit=3)
    return values, module, path, foreign


def test_the_wheel_installs_the_kernels_as_minitorch_alex_kernels_and_no_top_level_kernels(wheel):
    top = {name.split("/")[0] for name in wheel if "/" in name and ".dist-info/" not in name}
    assert top == {"minitorch_alex", KERNELS}, top
    assert f"{KERNELS}.py" not in wheel  # the source checkout's alias stays there
    assert f"{KERNELS}/cpu/activation.py" in wheel and f"{KERNELS}/blas_core.py" in wheel


def test_an_installed_package_runs_its_own_kernels_beside_a_foreign_kernels(wheel_file, foreign_kernels, tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(target), str(wheel_file)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")) == ["minitorch_alex", KERNELS]
    values, module, path, foreign = _run_an_op([foreign_kernels, target], cwd=tmp_path)
    assert values == "[0.0, 2.0]" and module == f"{KERNELS}.cpu.activation" and foreign == "False"
    assert path == str(target / KERNELS / "cpu" / "activation.py")


def test_a_source_checkout_runs_its_own_kernels_beside_a_foreign_kernels(foreign_kernels, tmp_path):
    """PYTHONPATH=the checkout, as the GPU machine runs it (no install): minitorch_alex_kernels.py
    maps the name onto the kernels/ folder beside it."""
    values, module, path, foreign = _run_an_op([foreign_kernels, ROOT], cwd=tmp_path)
    assert values == "[0.0, 2.0]" and module == f"{KERNELS}.cpu.activation" and foreign == "False"
    assert path == os.path.join(ROOT, "kernels", "cpu", "activation.py")


def test_the_wheel_ships_every_cuda_source_and_header(wheel):
    here = os.path.join(ROOT, "kernels", "cuda")
    sources = sorted(f for f in os.listdir(here) if f.endswith((".cu", ".cuh")))
    assert sources and "common.cuh" in sources
    missing = [f for f in sources if f"{KERNELS}/cuda/{f}" not in wheel]
    assert not missing, f"the wheel lacks {missing}"


def test_the_wheel_ships_the_op_modules(wheel):
    for name in ("__init__", "_launch", "conv", "linear", "pool", "lrn", "activation", "dropout", "sgd"):
        assert f"{KERNELS}/cuda/{name}.py" in wheel


def test_the_readmes_virtual_environment_block_runs(tmp_path):
    """The README's block, as typed, in a fresh folder: a .venv whose python is the one on the PATH after it."""
    import re

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        block = re.search(r"```bash\n(python3 -m venv \.venv[^\n]*)\n```", f.read()).group(1)
    command = block.split("#")[0].strip() + ' && python -c "import sys; print(sys.prefix)"'
    ran = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert os.path.realpath(ran.stdout.strip()) == os.path.realpath(tmp_path / ".venv")
