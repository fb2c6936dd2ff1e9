"""BatchNorm beyond the op's numerics (those: the ``batch_norm`` entry of tests/op_specs.py): the
layer's cumulative average against PyTorch's, its one-line errors, and the dispatched class."""
import numpy as np
import pytest
import torch

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex.ops.batchnorm import BatchNorm


def test_layer_matches_torch_over_steps_with_cumulative_momentum_then_in_eval():
    """BatchNorm2d(momentum=None) keeps the cumulative average of the batches' statistics."""
    rng = np.random.default_rng(5)
    ours, theirs = mt.nn.BatchNorm2d(3, momentum=None, dtype=np.float64), torch.nn.BatchNorm2d(3, momentum=None).double()
    for step in range(3):
        x = rng.standard_normal((4, 3, 2, 2)) * (step + 1)
        ours(mt.tensor(x))
        theirs(torch.from_numpy(x))
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-12, err_msg=name)
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(ours.eval()(mt.tensor(x)).numpy(), theirs.eval()(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-12)


def test_bad_inputs_are_one_line_errors():
    x = mt.tensor(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected input of rank 4, got shape \(2, 3\)"):
        mt.nn.BatchNorm2d(3)(mt.tensor(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"expected running_mean a Tensor \(3,\) float32"):
        F.batch_norm(x, mt.tensor(np.zeros(4, np.float32)), mt.tensor(np.ones(3, np.float32)), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        mt.nn.BatchNorm1d(3)(mt.tensor(np.zeros((1, 3), np.float32)))


def test_the_reference_class_is_the_dispatched_op():
    assert mt.dispatch.op_of(BatchNorm) == "BatchNorm"
