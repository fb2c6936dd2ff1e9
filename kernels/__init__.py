"""Hot loops of minitorch_alex, one sub-package per kind of device.

* ``kernels.cpu``: numba kernels on NumPy arrays: im2col/col2im gathers, Winograd F(5x5, 3x3)
  and F(4x4, 3x3) transforms and DFTs as GEMMs (products in the frequency domain) for convolution, fused LRN,
  max-pool with argmax, ReLU, dropout, the fused SGD update, and the thread pool that runs them
  next to a single-threaded BLAS.
  The 'numba' backend of ``minitorch_alex.dispatch``.
* ``kernels.cuda``: CUDA kernels (``kernels/cuda/*.cu``: im2col/col2im gathers, LRN, max-pool
  with argmax, dropout, bias+ReLU, the SGD update) for CuPy arrays, built by ``cupy.RawModule``
  on first use; GEMMs go to cuBLAS. The 'cuda' backend of ``minitorch_alex.dispatch`` (the
  reference code also runs unchanged on CuPy, with the 'reference' backend).

Each op has one file per backend (``kernels/cpu/<op>.py``, ``kernels/cuda/<op>.py``) holding a
class with the interface of ``minitorch_alex/dispatch.py``: ``forward(*arrays, **params)`` and
``backward(gy)``, the same names and arguments as the reference op in ``minitorch_alex/ops``.

This package never imports minitorch_alex: kernels see only arrays and plain numbers, so each one
can be tested and benchmarked on its own against the NumPy reference.
"""
