"""The repository's one linter, configured in ruff.toml (pycodestyle, pyflakes, import order,
one annotation style, bugbear): the README's test command runs it."""
import shutil
import subprocess

import pytest
from paths import ROOT


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (pip install -e '.[dev]')")
def test_ruff_finds_nothing():
    proc = subprocess.run(["ruff", "check", "--no-cache", "--output-format", "concise", ROOT],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
