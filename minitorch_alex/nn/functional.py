"""The functional API (``import minitorch_alex.nn.functional as F``): ops on Tensors."""
from ..ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from ..ops.conv import conv2d, conv2d_relu
from ..ops.dropout import dropout
from ..ops.linear import linear, linear_relu
from ..ops.loss import cross_entropy
from ..ops.lrn import local_response_norm
from ..ops.pool import max_pool2d
from ..ops.shape import concat, flatten, split

__all__ = [
    "concat", "conv2d", "conv2d_relu", "cross_entropy", "dropout", "flatten", "leaky_relu", "linear", "linear_relu",
    "local_response_norm", "log_softmax", "max_pool2d", "relu", "sigmoid", "softmax", "split", "tanh",
]
