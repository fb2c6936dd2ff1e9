"""How the CPU kernels use the cores: one pool of Python threads, serial nogil kernels, and a
BLAS that runs single-threaded while they do.

Why not numba's ``parallel=True`` plus OpenBLAS's own threads? Because the two thread pools
take turns inside every layer (im2col, GEMM, copy, GEMM, col2im, ...) and each pool's threads
spin for a while after finishing (OpenBLAS for ~2^28 cycles, OpenMP for its spin count), so
every numba loop after a GEMM, and every GEMM after a numba loop, shares its cores with
spinning threads of the other pool. On 2 cores that made convolution layers up to 2x slower.

Here every op splits its work (images, chunks of images, or ranges of elements) into tasks and
runs them on ``get_num_threads()`` threads: the calling thread plus a pool of workers that
sleep on a lock when idle. Each task calls serial numba kernels (compiled ``nogil``) and NumPy
GEMMs on its own slice; during ``run_parallel`` the BLAS is switched to one thread
(``single_threaded_blas``), so nothing spins and each core does one task at a time.

The thread count: ``set_num_threads``, or the first of the environment variables
MINITORCH_ALEX_NUM_THREADS, NUMBA_NUM_THREADS, OMP_NUM_THREADS (at most the CPUs; a value that is
not a positive integer is ignored with a warning), else the CPUs this process may run on.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

THREAD_VARS = ("MINITORCH_ALEX_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")  # the first one set wins


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _default_threads():
    """The first of ``THREAD_VARS`` that is set, capped at the CPU count, else the CPU count. A
    value that is not a positive integer is ignored and one that exceeds the CPUs is capped, each
    with a one-line warning (100000 threads ran 2 minutes before "can't start new thread")."""
    cpus = _cpus()
    for var in THREAD_VARS:
        value = os.environ.get(var, "").strip()
        if not value:
            continue
        if not value.isdigit() or int(value) < 1:
            sys.stderr.write(f"warning: ignoring {var}={value!r} (expected an integer in [1, {cpus}], the CPUs "
                             "of this process)\n")
            continue
        if int(value) > cpus:
            sys.stderr.write(f"warning: {var}={value} is more than the {cpus} CPUs of this process; using {cpus}\n")
            return cpus
        return int(value)
    return cpus


_threads = _default_threads()
_pool = None
_pool_lock = threading.Lock()
_inside = threading.local()  # set while a thread runs a task: nested calls then run serially


def get_num_threads() -> int:
    return _threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (the calling one included) from now on."""
    global _threads, _pool
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    with _pool_lock:
        if _pool is not None and n != _threads:
            _pool.shutdown(wait=True)
            _pool = None
        _threads = n


def limit_threads(n: int) -> None:
    """Use ``n`` threads in our pool and in the BLAS outside ``run_parallel`` (a data-parallel
    rank sharing its node's cores with the other ranks there)."""
    set_num_threads(n)
    if blas_controllable():
        _blas.set(n)


def _workers():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_threads - 1, thread_name_prefix="minitorch_alex")
        return _pool


# ----- the BLAS's own threads -----------------------------------------------------------------------
class _OpenBLAS:
    """``openblas_set_num_threads`` / ``get`` of the OpenBLAS that NumPy loaded, found by name
    among the process's shared libraries (NumPy's wheels ship it as scipy_openblas64_)."""

    SUFFIXES = ("", "64_", "_64")
    PREFIXES = ("openblas", "scipy_openblas")

    def __init__(self):
        self.set = self.get = None
        try:
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
        except OSError:
            return
        for path in sorted(paths):
            if not os.path.exists(path):
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in self.PREFIXES:
                for suffix in self.SUFFIXES:
                    setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                    getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                    if setter is not None and getter is not None:
                        setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                        self.set, self.get = setter, getter
                        return


_blas = None
_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = None


def blas_controllable() -> bool:
    """True when the BLAS's thread count can be switched at run time (NumPy's OpenBLAS)."""
    global _blas
    if _blas is None:
        import numpy  # noqa: F401  (make sure the BLAS is loaded before looking for it)

        _blas = _OpenBLAS()
    return _blas.set is not None


@contextlib.contextmanager
def single_threaded_blas():
    """The BLAS uses one thread inside this block (our threads supply the parallelism).
    Nested and concurrent blocks share one switch; the last to leave restores the setting."""
    global _blas_users, _blas_saved
    if not blas_controllable():
        yield
        return
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = _blas.get()
            _blas.set(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas.set(_blas_saved)


# ----- running tasks --------------------------------------------------------------------------------
def run_parallel(fn, items, uses_blas=False):
    """``[fn(item) for item in items]``, computed on up to ``get_num_threads()`` threads.

    Items are handed out one at a time as threads become free (so uneven items balance). The
    calling thread works too. ``uses_blas``: the tasks call GEMMs; they then run in parallel only
    if the BLAS can be made single-threaded meanwhile (else serially, and the BLAS's own threads
    do the work). Exceptions in a task are re-raised here.
    """
    items = list(items)
    threads = min(_threads, len(items))
    if threads <= 1 or getattr(_inside, "active", False) or (uses_blas and not blas_controllable()):
        return [fn(item) for item in items]
    results = [None] * len(items)
    next_index = iter(range(len(items)))
    take_lock = threading.Lock()

    def work():
        _inside.active = True
        try:
            while True:
                with take_lock:
                    i = next(next_index, None)
                if i is None:
                    return
                results[i] = fn(items[i])
        finally:
            _inside.active = False

    with single_threaded_blas():
        futures = [_workers().submit(work) for _ in range(threads - 1)]
        try:
            work()
        finally:
            for f in futures:
                f.result()  # waits, and re-raises a worker's exception
    return results


def run_parallel_accumulate(fn, items, new_accumulator, uses_blas=False):
    """Sum-style reductions that give the same bits on every run: ``fn(item, acc)`` adds each
    item's contribution into ``acc``.

    The items are cut into one contiguous run per thread, each run is summed in order into its
    own ``new_accumulator()``, and the accumulators come back in run order for the caller to add
    up in that order. (Accumulating per *thread* instead would depend on which thread happened
    to take which item, so two runs with the same seed would differ in the last bits and
    ``--resume`` could not be exact.) The result depends only on ``get_num_threads()``.
    """
    items = list(items)
    if not items:
        return [new_accumulator()]

    def run(bounds):
        acc = new_accumulator()
        for item in items[bounds[0]:bounds[1]]:
            fn(item, acc)
        return acc

    return run_parallel(run, split_range(len(items), _threads), uses_blas=uses_blas)


def split_range(total, parts):
    """``parts`` (start, stop) ranges covering 0 ... total-1 as evenly as possible (no empty ones)."""
    parts = max(1, min(parts, total))
    bounds = [total * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


MIN_ELEMENTS_PER_TASK = 1 << 16  # below this a thread hand-off costs more than it saves


def elementwise_ranges(count, cost_per_item=1):
    """Ranges of 0 ... count-1 for an elementwise pass: one per thread, or a single range when
    the whole pass (count * cost_per_item elements) is too small to be worth splitting."""
    parts = max(1, min(get_num_threads(), count * cost_per_item // MIN_ELEMENTS_PER_TASK))
    return split_range(count, parts)
