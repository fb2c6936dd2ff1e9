"""minitorch_alex/dispatch.py: the table follows from the manifest of hot ops, and the op of a
class is found by identity with its reference class, not by its module and name."""
import os
import subprocess
import sys

import numpy as np

from minitorch_alex import dispatch
from minitorch_alex.config import numba_available

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_op_of_the_manifest_has_its_three_homes():
    assert set(dispatch.TABLE) == set(dispatch.OPS)
    for op in dispatch.OPS:
        assert set(dispatch.TABLE[op]) == set(dispatch.BACKENDS)
        reference = dispatch.load(op, "reference")
        assert reference.__name__ == op
        if isinstance(reference, type):
            assert dispatch.op_of(reference) == op


def test_a_subclass_of_a_reference_class_runs_the_reference():
    """A subclass may change what the op computes: the kernels of its base would be wrong for it."""
    relu = dispatch.load("ReLU", "reference")

    class Leaky(relu):
        pass

    assert dispatch.op_of(Leaky) is None
    assert dispatch.select(Leaky, (np.zeros(3, np.float32),), {}) == ("reference", None)


def test_a_reference_class_defined_elsewhere_and_re_exported_still_dispatches():
    """The class the table names, defined in another module (as after moving it and re-exporting it
    from the old one): its calls still go to the kernels, not silently to the reference."""
    code = ("import numpy as np, minitorch_alex as mt; from minitorch_alex.ops.activation import ReLU; "
            "ReLU.__module__ = 'minitorch_alex.ops.somewhere_else'; "
            "print(mt.dispatch.select(ReLU, (np.zeros(3, np.float32),), {})[0])")
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("numba" if numba_available() else "reference")
