"""Differentiable ops, the reference implementation. Each file holds one family: a ``Function``
subclass per op (forward and backward on raw arrays, written as readable NumPy that also runs on
CuPy, with no backend branch) and the functional wrapper that validates arguments. Which
implementation runs a call (this one, or the numba or CUDA one of the same name) is decided in
``minitorch_alex/dispatch.py``."""
