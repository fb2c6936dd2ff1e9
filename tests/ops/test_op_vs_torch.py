"""Every op of ``op_specs.SPECS`` that has a PyTorch twin, forward and backward against PyTorch CPU
(the oracle; never used by the package itself), float64 and float32, on hypothesis inputs; the
twin carries the convention translation (LRN's alpha, grouped LRN, dropout's mask and scale).
Run on the reference backend; ``test_op_backends.py`` checks the others against it."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_specs import SPECS, torch_compare
from strategies import DTYPES

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
pytestmark = pytest.mark.usefixtures("reference_backend")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("spec", [s for s in SPECS if s.torch is not None], ids=repr)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_op_matches_torch(spec, dtype, data, seed):
    torch_compare(spec, data.draw(spec.cases), dtype, seed)
