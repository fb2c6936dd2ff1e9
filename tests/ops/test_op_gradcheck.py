"""Every op of ``op_specs.SPECS`` against central differences, float64, relative error < 1e-6, on
hypothesis inputs drawn from its ``gradcheck`` strategy (the domain where a finite difference is
valid: values spaced apart, no ReLU kink or max-pool tie within a step, dropout masks fixed).
Run on the reference backend (the code of minitorch_alex/ops); ``test_op_backends.py`` compares
the other backends with it."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_specs import SPECS, differentiable, tensors

import minitorch_alex as mt

pytestmark = pytest.mark.usefixtures("reference_backend")
RTOL = 1e-6  # the project's bar for single ops


def check(fn, inputs, eps=1e-6):
    report = mt.gradcheck(fn, list(inputs), eps=eps, rtol=RTOL)
    assert report.ok and report.checked > 0


@pytest.mark.parametrize("spec", [s for s in SPECS if s.gradcheck is not None], ids=repr)
@given(data=st.data())
def test_op_gradcheck(spec, data):
    case = data.draw(spec.gradcheck)
    ts = tensors(case, np.float64, state=spec.state)
    present = differentiable(spec, case)

    def fn(*given_tensors):
        full = list(ts)
        for i, t in zip(present, given_tensors):
            full[i] = t
        return spec.run(full, case.params)

    check(fn, [ts[i] for i in present], spec.gradcheck_eps)


def test_every_spec_without_a_gradient_check_says_why():
    for spec in SPECS:
        assert spec.gradcheck is not None or spec.gradcheck_note, spec.name
