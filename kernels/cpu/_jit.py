"""The one place that says how CPU kernels are compiled.

* ``cache=True``: compiled machine code is stored next to the source (``__pycache__``), so only
  the very first run on a machine pays numba's compile time; later processes load it in
  milliseconds.
* ``nogil=True``: kernels release the GIL, so the threads of ``kernels.cpu.parallel`` (and the
  two towers of a split model) run them at the same time. Kernels are serial: the parallelism is
  in ``parallel.run_parallel``, which also keeps the BLAS from spinning threads of its own.
* ``error_model="numpy"``: a division by zero gives inf/nan instead of raising; the check that
  raising needs sits in every loop with a division and keeps it from vectorising.
* ``fastmath``: only the flags that let LLVM vectorise reductions and fuse multiply-adds
  ('reassoc', 'contract'). Never 'nnan'/'ninf': max-pool relies on -inf and NaN semantics.

A rule every kernel follows: inner loops run ``for q in range(m)`` over 1-D slices taken just
before the loop (``row = x[n, c, p0:p0 + m]``; ``row[q]``). numba wraps negative indices around
unless it can prove an index is non-negative, and a loop like ``for i in range(start, stop):
y[i] = ...`` or an index like ``x[n, c, p0 + q]`` carries that check into the loop body, which
stops LLVM from vectorising it (a ReLU written that way ran 4.6x slower than with slices).
"""
from __future__ import annotations

import numba

FASTMATH = {"reassoc", "contract"}


def kernel(fn):
    """``numba.njit`` with the project's settings."""
    return numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")(fn)


def inline(fn):
    """A helper inlined into its callers by numba itself (``inline='always'``), so arguments
    that are literals at the call site, e.g. a stride of 2, become constants in the caller's
    loops. A helper LLVM is left to inline may stay a call, and a call taking arrays inside a
    hot loop cost the LRN kernel 4x."""
    return numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy", inline="always")(fn)
