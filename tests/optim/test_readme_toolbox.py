"""The README's "Your own network" block, run as a user pastes it: it learns (chance: ln 2 = 0.69)."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_readmes_own_network_block_runs_and_learns():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("### Your own network", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    losses = [float(x) for x in re.findall(r"loss (\d+\.\d+)", run.stdout)]
    assert len(losses) == 3 and losses[-1] < 0.1 < 0.5 < losses[0], run.stdout
