"""numba CPU kernels (see ``kernels/__init__.py``). Each function takes and returns NumPy arrays
(float32 or float64, C-contiguous) and matches the readable reference in ``minitorch_alex.ops``;
``tests/test_kernels.py`` checks each one against it. How they share the cores is in
``parallel.py``; why freed memory is kept, in ``memory.py``."""
from .activation import relu_backward, relu_forward
from .conv import conv2d_backward, conv2d_forward
from .dropout import dropout_apply
from .im2col import col2im_into, im2col_into, nchw_to_rows, nchw_to_rows_relu, rows_to_nchw
from .linear import linear_backward, linear_forward
from .lrn import lrn_backward, lrn_forward
from .memory import retain_freed_memory
from .parallel import get_num_threads, set_num_threads
from .pool import maxpool_backward, maxpool_forward
from .sgd import sgd_momentum_update_
from .workspace import clear_workspaces, workspace, workspace_bytes

retain_freed_memory()  # importing the fast kernels means training with them: see memory.py

__all__ = [
    "clear_workspaces", "col2im_into", "conv2d_backward", "conv2d_forward", "dropout_apply", "get_num_threads",
    "im2col_into", "linear_backward", "linear_forward", "lrn_backward", "lrn_forward", "maxpool_backward",
    "maxpool_forward", "nchw_to_rows", "nchw_to_rows_relu", "relu_backward", "relu_forward", "retain_freed_memory", "rows_to_nchw",
    "set_num_threads", "sgd_momentum_update_", "workspace", "workspace_bytes",
]
