"""Every op of ``op_specs.SPECS`` that has a PyTorch twin, forward and backward against PyTorch CPU
(the oracle; never used by the package itself), float64 and float32, on hypothesis inputs; the
twin carries the convention translation (LRN's alpha, grouped LRN, dropout's mask and scale).
Run on the reference backend; ``test_op_backends.py`` checks the others against it."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_specs import SPECS, scale_list, tensors
from strategies import DTYPES, assert_close

import minitorch_alex as mt

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
pytestmark = pytest.mark.usefixtures("reference_backend")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("spec", [s for s in SPECS if s.torch is not None], ids=repr)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_op_matches_torch(spec, dtype, data, seed):
    case = data.draw(spec.cases)
    ours = tensors(case, dtype)
    theirs = [torch.tensor(np.asarray(a, dtype=dtype), requires_grad=True) if a is not None else None
              for a in case.arrays]
    y, yt = spec.run(ours, case.params), spec.torch(*theirs, **case.params)
    scales = scale_list(spec.torch_scales(case, dtype), len(ours))
    assert_close(y.numpy(), yt.detach().numpy(), dtype, spec.torch_tol, scales[0], err_msg="forward")
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    y.backward(mt.tensor(g))
    yt.backward(torch.from_numpy(g))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a is not None:
            assert_close(a.grad.numpy(), b.grad.detach().numpy(), dtype, spec.torch_tol, scales[i + 1],
                         err_msg=f"gradient of input {i}")
