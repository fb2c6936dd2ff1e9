"""The one place that says how CPU kernels are compiled.

* ``cache=True``: compiled machine code is stored next to the source (``__pycache__``), so only
  the very first run on a machine pays numba's compile time; later processes load it in
  milliseconds. Where numba finds no writable place (a read-only install with an unwritable
  HOME: "no locator available"), the cache goes to a private folder in the temporary directory,
  else is turned off, with a one-line warning naming ``NUMBA_CACHE_DIR``: never a failure.
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

import os
import stat
import sys
import tempfile

import numba

FASTMATH = {"reassoc", "contract"}
_cache = {"on": True}  # False once no writable cache folder was found (compile in every process)


def _private_folder():
    """A cache folder of this user's in the temporary directory: ``minitorch_alex-numba-<uid>``
    when it is ours (a real folder, owned by us, not writable by others), else a fresh one."""
    path = os.path.join(tempfile.gettempdir(), f"minitorch_alex-numba-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path)
        if (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022
                and os.access(path, os.W_OK)):
            return path
        return tempfile.mkdtemp(prefix="minitorch_alex-numba-")
    except OSError:
        return None


def _fall_back(source):
    """numba has nowhere to cache the kernel of ``source``: cache in a private folder, or not at all."""
    folder = _private_folder()
    where = f"caching them in {folder}" if folder else "compiling them in every process"
    sys.stderr.write(f"warning: numba cannot cache compiled kernels beside {os.path.dirname(source)} or under HOME "
                     f"(a read-only install?): {where}; set NUMBA_CACHE_DIR to a writable folder to choose\n")
    if folder:
        numba.config.CACHE_DIR = folder
    _cache["on"] = folder is not None


def _njit(fn, **options):
    if _cache["on"]:
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available for file ..."
            if "no locator available" not in str(exc):
                raise
            _fall_back(fn.__code__.co_filename)
    return numba.njit(cache=_cache["on"], **options)(fn)


def kernel(fn):
    """``numba.njit`` with the project's settings."""
    return _njit(fn, nogil=True, fastmath=FASTMATH, error_model="numpy")


def inline(fn):
    """A helper inlined into its callers by numba itself (``inline='always'``), so arguments
    that are literals at the call site, e.g. a stride of 2, become constants in the caller's
    loops. A helper LLVM is left to inline may stay a call, and a call taking arrays inside a
    hot loop cost the LRN kernel 4x."""
    return _njit(fn, nogil=True, fastmath=FASTMATH, error_model="numpy", inline="always")
