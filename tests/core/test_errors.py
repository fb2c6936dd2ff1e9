"""Bad input gets an error that names what was expected and what was given."""
import numpy as np
import pytest

import minitorch_alex as mt
import minitorch_alex.nn.functional as F


def x4(*shape, dtype=np.float32):
    return mt.tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: F.conv2d(x4(3, 8, 8), x4(4, 3, 3, 3)), ValueError, r"expected input of rank 4 \(N, C, H, W\), got shape \(3, 8, 8\)"),
        (lambda: F.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3)), ValueError, r"expected weight of rank 4 .*got shape \(4, 3, 3\)"),
        (lambda: F.conv2d(x4(1, 3, 8, 8), x4(4, 2, 3, 3)), ValueError, r"input has 3 channels but weight expects 2"),
        (lambda: F.conv2d(x4(1, 6, 8, 8), x4(4, 2, 3, 3), groups=2), ValueError,
         r"input has 6 channels but weight expects 4 \(in_channels/groups=2 x groups=2\)"),
        (lambda: F.conv2d(x4(1, 3, 8, 8), x4(4, 1, 3, 3), groups=3), ValueError,
         r"groups=3 must divide both in_channels \(3\) and out_channels \(4\)"),
        (lambda: F.conv2d(x4(1, 3, 8, 8), x4(4, 3, 11, 11), padding=1), ValueError, r"kernel 11x11 is larger than the padded input 10x10"),
        (lambda: F.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), stride=0), ValueError, r"stride >= 1"),
        (lambda: F.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), stride=(1, 2, 3)), TypeError, r"stride must be an int or a pair"),
        (lambda: F.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3), x4(5)), ValueError, r"expected bias of shape \(4,\), got \(5,\)"),
        (lambda: F.conv2d(x4(1, 3, 8, 8), x4(4, 3, 3, 3, dtype=np.float64)), TypeError, r"float32 \(input 0\) and float64 \(input 1\)"),
        (lambda: F.conv2d(mt.tensor(np.zeros((1, 3, 8, 8), np.int64)), x4(4, 3, 3, 3)), TypeError,
         r"expected a floating-point input, got dtype int64"),
        (lambda: F.max_pool2d(x4(1, 1, 2, 2), 3), ValueError, r"kernel 3x3 is larger than the padded input 2x2"),
        (lambda: F.max_pool2d(x4(1, 1, 8, 8), 3, padding=2), ValueError, r"padding must be between 0 and half the kernel size"),
        (lambda: F.max_pool2d(x4(8, 8), 2), ValueError, r"expected input of rank 4"),
        (lambda: F.local_response_norm(x4(1, 6, 2, 2), groups=4), ValueError, r"dividing the 6 channels, got 4"),
        (lambda: F.local_response_norm(x4(1, 6, 2, 2), k=0.0), ValueError, r"expected k > 0"),
        (lambda: F.linear(x4(2, 5), x4(3, 4)), ValueError, r"input has 5 features but weight of shape \(3, 4\)"),
        (lambda: F.linear(x4(2, 5, 1), x4(3, 5)), ValueError, r"expected input of rank 2 \(N, in_features\), got shape \(2, 5, 1\)"),
        (lambda: F.cross_entropy(x4(2, 3), [0, 3]), ValueError, r"target values must lie in \[0, 3\), got values in \[0, 3\]"),
        (lambda: F.cross_entropy(x4(2, 3), [0, 1, 2]), ValueError, r"expected target of shape \(2,\) for logits \(2, 3\), got \(3,\)"),
        (lambda: F.cross_entropy(x4(2, 3), np.array([0.0, 1.0])), TypeError, r"expected integer class indices"),
        (lambda: F.cross_entropy(x4(6), [0]), ValueError, r"expected logits of rank 2 \(N, C\), got shape \(6,\)"),
        (lambda: F.dropout(x4(2, 2), p=1.5), ValueError, r"p must be a probability in \[0, 1\], got 1.5"),
        (lambda: F.dropout(x4(2, 2), mask=np.ones(3)), ValueError, r"mask must have the input's shape \(2, 2\), got \(3,\)"),
        (lambda: x4(2, 3).reshape(4, 2), ValueError, r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)"),
        (lambda: x4(2, 3) + np.ones(3), TypeError, r"expected a Tensor or a Python number, got ndarray"),
        (lambda: mt.concat([x4(2, 3), x4(3, 3)], axis=1), ValueError, r"input 1 has shape \(3, 3\), incompatible with \(2, 3\)"),
        (lambda: x4(2, 3).sum(axis=2), ValueError, r"axis 2 is out of range for a tensor with 2 dimensions"),
    ],
)
def test_bad_input_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_gradcheck_refuses_float32_and_reports_the_worst_entry():
    x = mt.tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="must be float64"):
        mt.gradcheck(lambda x: x * 2.0, [x])

    class WrongGrad(mt.Function):  # claims d(x^2)/dx = x
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return (g * self.x,)

    x = mt.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    report = mt.gradcheck(WrongGrad.apply, [x], raise_exception=False)
    assert not report.ok and report.worst["input"] == 0 and report.max_rel_error > 0.4
    assert "FAILED" in str(report) and "index" in str(report)
    assert mt.gradcheck(lambda x: x * x, [x], samples=2).checked == 2
