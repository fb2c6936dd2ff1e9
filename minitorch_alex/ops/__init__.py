"""Differentiable ops. Each file holds one family: a ``Function`` subclass per op (forward and
backward on raw arrays, written as readable NumPy that also runs on CuPy) and the functional
wrapper that validates arguments."""
