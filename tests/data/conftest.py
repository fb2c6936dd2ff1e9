"""Fixtures for the data-pipeline tests.

The helpers live in data_helpers.py (a unique name, so it cannot clash with
other test folders); this folder is put on sys.path so test modules can
import it whatever pytest import mode is used.
"""

import os
import sys

import pytest
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from data_helpers import make_odd_files, save  # noqa: E402


@pytest.fixture
def odd_tree(tmp_path):
    """ImageFolder tree: train/odd holds all odd files, train/plain and
    val/* hold ordinary images."""
    root = tmp_path / "odd"
    info = make_odd_files(root / "train" / "odd")
    for split, n in (("train", 3), ("val", 2)):
        for cls, colour in (("odd", (0, 0, 255)), ("plain", (0, 255, 0))):
            for i in range(n):
                save(Image.new("RGB", (50, 40), colour), str(root / split / cls / f"p{i}.png"))
    return str(root), info
