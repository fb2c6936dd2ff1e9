"""numba CPU kernels (see ``kernels/__init__.py``). Each function takes and returns NumPy arrays
(float32 or float64, C-contiguous) and matches the readable reference in ``minitorch_alex.ops``;
``tests/kernels/cpu/test_cpu_kernels.py`` checks each one against it. Each op's file also holds the op as a class
with the interface ``minitorch_alex.dispatch`` calls (``Conv2d``, ``Conv2dReLU``, ``Linear``,
``LinearReLU``, ``MaxPool2d``, ``LocalResponseNorm``, ``ReLU``, ``Dropout``, ``BatchNorm``; the SGD update is
the function ``sgd_momentum_update_``). How the kernels share the cores is in ``parallel.py``;
why freed memory may be kept, in ``memory.py`` (importing this package changes nothing: the
setting is applied explicitly, see ``mt.config``)."""
from .activation import ReLU, relu_backward, relu_forward
from .batchnorm import BatchNorm
from .conv import Conv2d, Conv2dReLU, conv2d_backward, conv2d_forward
from .dropout import Dropout, dropout_apply
from .im2col import col2im_into, im2col_into, nchw_to_rows, nchw_to_rows_relu, rows_to_nchw
from .linear import Linear, LinearReLU, linear_backward, linear_forward
from .lrn import LocalResponseNorm, lrn_backward, lrn_forward
from .memory import retain_freed_memory, retaining
from .parallel import get_num_threads, set_num_threads
from .pool import MaxPool2d, maxpool_backward, maxpool_forward
from .sgd import sgd_momentum_update_
from .workspace import clear_workspaces, workspace, workspace_bytes

__all__ = [
    "BatchNorm", "Conv2d", "Conv2dReLU", "Dropout", "Linear", "LinearReLU", "LocalResponseNorm", "MaxPool2d", "ReLU",
    "clear_workspaces", "col2im_into", "conv2d_backward", "conv2d_forward", "dropout_apply", "get_num_threads",
    "im2col_into", "linear_backward", "linear_forward", "lrn_backward", "lrn_forward", "maxpool_backward",
    "maxpool_forward", "nchw_to_rows", "nchw_to_rows_relu", "relu_backward", "relu_forward",
    "retain_freed_memory", "retaining", "rows_to_nchw", "set_num_threads", "sgd_momentum_update_", "workspace",
    "workspace_bytes",
]
