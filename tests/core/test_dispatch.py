"""minitorch_alex/dispatch.py: the table follows from the manifest of hot ops, and the op of a
class is found by identity with its reference class, not by its module and name."""
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from paths import ROOT

from minitorch_alex import dispatch
from minitorch_alex.config import numba_available


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


def _homes(op):
    """The op's implementation in each home that can be imported here (numba needs numba; the CUDA
    classes import without CuPy)."""
    backends = [b for b in dispatch.BACKENDS if b != "numba" or numba_available()]
    return {b: dispatch.load(op, b) for b in backends}


def _parameters(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_the_three_homes_agree_on_each_ops_interface():
    """forward's parameters and defaults as the reference's (less those only the reference has:
    dispatch.REFERENCE_ONLY), backward(gy), needs_input_grad's default (``()``: not told), and no
    __init__ argument but the backend's settings (dispatch.OPTIONS)."""
    for op in dispatch.OPS:
        homes = _homes(op)
        reference = homes.pop("reference")
        if not isinstance(reference, type):  # the SGD update: a function
            for backend, impl in homes.items():
                assert _parameters(impl) == _parameters(reference), (op, backend)
            continue
        for backend, impl in homes.items():
            where = f"{op} ({backend})"
            shared = [p for p in _parameters(reference.forward) if p[0] not in dispatch.REFERENCE_ONLY.get(op, ())]
            assert _parameters(impl.forward) == shared, where
            assert [p[0] for p in _parameters(impl.backward)] == ["self", "gy"], where
            assert impl.needs_input_grad == reference.needs_input_grad == (), where
            init = _parameters(impl)  # the class's call: __init__ without self
            assert all(kind == inspect.Parameter.POSITIONAL_OR_KEYWORD and name in dispatch.OPTIONS.get(backend, ())
                       for name, kind, _ in init), (where, init)


@pytest.mark.skipif(not numba_available(), reason="numba is not installed")
def test_a_numba_kernel_keeps_nothing_when_no_gradient_is_wanted_and_everything_when_not_told():
    x = np.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    params = {"MaxPool2d": dict(kernel_size=(3, 3), stride=(2, 2), padding=(0, 0)),
              "LocalResponseNorm": dict(size=5, alpha=1e-4, beta=0.75, k=2.0, groups=1), "ReLU": {}}
    for op, kwargs in params.items():
        told_no = dispatch.load(op, "numba")()
        told_no.needs_input_grad = (False,)
        told_no.forward(x, **kwargs)
        assert vars(told_no) == {"needs_input_grad": (False,)}, op
        not_told = dispatch.load(op, "numba")()
        y = not_told.forward(x, **kwargs)
        assert not_told.backward(np.ones_like(y))[0].shape == x.shape, op


@pytest.mark.parametrize("call, op", [
    (lambda F, x, w: F.conv2d(x, w, dilation=2), "Conv2d"),
    (lambda F, x, w: F.conv2d_relu(x, w, w[:, 0, 0, 0], dilation=(1, 2)), "Conv2dReLU"),
    (lambda F, x, w: F.max_pool2d(x, 2, 1, dilation=2), "MaxPool2d"),
])
def test_a_call_with_a_reference_only_parameter_runs_the_reference(call, op):
    """Dilation: the kernels have none, so such a call runs the reference whatever the backend
    setting, and backward follows the node (the values: tests/op_specs.py's *_dilated specs). Without
    dilation the same call runs a kernel."""
    import minitorch_alex as mt
    import minitorch_alex.nn.functional as F

    assert dispatch.REFERENCE_ONLY[op] == ("dilation",)
    x = mt.tensor(np.random.default_rng(0).standard_normal((2, 4, 9, 9)).astype(np.float32), requires_grad=True)
    w = mt.tensor(np.random.default_rng(1).standard_normal((4, 4, 3, 3)).astype(np.float32))
    with mt.config.using(backend="auto"):
        y = call(F, x, w)
        ran = y._node.backend  # read before backward releases the node
        y.sum().backward()
    assert ran == "reference" and x.grad.shape == x.shape
    assert dispatch.backend_for(op, (x.data,), {}) == ("numba" if numba_available() else "reference")
