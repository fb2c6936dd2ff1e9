"""CUDA kernels for the CuPy path, and the loader that builds them.

Each ``*.cu`` file beside this one holds a family of kernels written once as templates and
stamped out per storage type as ``extern "C"`` entry points named ``<kernel>_<suffix>``
(``_f32``, ``_f64``, ``_f16``, ``_bf16``; see ``common.cuh``). ``module(name)`` reads
``name.cu``, pastes ``common.cuh`` in place of its ``#include`` (so the source CuPy hashes for
its on-disk cache is the whole program: editing the header recompiles), and builds it with
``cupy.RawModule``. CuPy compiles once per source, options and GPU architecture and caches the
binary on disk (``~/.cupy/kernel_cache``); this module also keeps each built module in memory.

CuPy is imported on first use only: importing ``kernels.cuda`` (and reading or assembling the
sources, which the CPU-only tests do) works without CuPy or a GPU. The loader is ``loader.py``
(its names are re-exported here; a test that replaces one does it in ``loader``).

The ops live one per file, each as the class the dispatch table names (``conv.Conv2d``,
``conv.Conv2dReLU``, ``linear.Linear``, ``linear.LinearReLU``, ``pool.MaxPool2d``,
``lrn.LocalResponseNorm``, ``activation.ReLU``, ``dropout.Dropout``, ``batchnorm.BatchNorm``) with ``forward(*arrays,
**params)`` / ``backward(gy)``, plus ``sgd.sgd_momentum_update_`` and mixed precision's
``amp.unscale``; the array-level functions they
are built from are re-exported here too. Shared launch helpers: ``_launch.py``; what the
convolution and linear classes share: ``gemm_layer.py``.
"""
from .activation import ReLU, relu_backward, relu_forward
from .amp import unscale
from .batchnorm import BatchNorm
from .conv import Conv2d, Conv2dReLU, col2im, conv2d_backward, conv2d_forward, im2col
from .dropout import Dropout, dropout_apply
from .linear import Linear, LinearReLU, bias_act_rows_, linear_backward, linear_forward
from .loader import HEADER, HERE, OPTIONS, SOURCES, SUFFIX, cupy, function, kernel_names, module, set_tf32, source, suffix
from .lrn import LocalResponseNorm, lrn_backward, lrn_forward
from .pool import MaxPool2d, maxpool_backward, maxpool_forward
from .sgd import sgd_momentum_update_

__all__ = [
    "HEADER", "HERE", "OPTIONS", "SOURCES", "SUFFIX", "BatchNorm",
    "Conv2d", "Conv2dReLU", "Dropout", "Linear", "LinearReLU", "LocalResponseNorm",
    "MaxPool2d", "ReLU", "bias_act_rows_", "col2im", "conv2d_backward", "conv2d_forward", "cupy", "dropout_apply",
    "function", "im2col", "kernel_names", "linear_backward", "linear_forward", "lrn_backward", "lrn_forward",
    "maxpool_backward", "maxpool_forward", "module", "relu_backward", "relu_forward", "set_tf32",
    "sgd_momentum_update_", "source", "suffix", "unscale",
]
