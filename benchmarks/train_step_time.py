"""Median time of one training step of the paper's AlexNet at batch B (default backend, freed memory
retained), for before/after comparisons of two checkouts in the same run, alternating:

    for r in 1 2 3 4; do for tree in OLD NEW; do PYTHONPATH=$tree python benchmarks/train_step_time.py 128; done; done

Prints seconds per step: the median of steps 3-5 (steps 1-2 warm the kernels and the allocator).
``--eval``: the evaluation forward instead (model.eval(), under no_grad), the median of passes 3-6.
``--blas-threads``: a second line, the CPU seconds the BLAS's own threads took over the measured
steps. It should be 0: the kernels run every GEMM on their own threads with the BLAS at one
thread, and OpenBLAS's threads, once woken, spin for up to ~0.1 s beside them (a GEMM that ran
on them before conv2's frequency products cost ~0.1 s of CPU a step; issue 31).
Works on checkouts from before mt.config (commit 64c8673) too.
"""
import os
import sys
import time


def thread_cpu_ticks():
    """{thread id: user + system CPU time in clock ticks} of this process's threads (Linux)."""
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        ticks[int(tid)] = int(fields[11]) + int(fields[12])
    return ticks


try:  # OpenBLAS's AVX-512 kernels where it would fall back to AVX2 (before NumPy loads it)
    try:
        from minitorch_alex_kernels.blas_core import choose_openblas_core
    except ImportError:  # a checkout from before issue 28 imports kernels/ as kernels
        from kernels.blas_core import choose_openblas_core

    choose_openblas_core()
except ImportError:  # a checkout from before kernels/blas_core.py
    pass

BLAS_THREADS = "--blas-threads" in sys.argv[1:]
before_blas = set(thread_cpu_ticks()) if BLAS_THREADS else set()

import numpy as np  # noqa: E402

if BLAS_THREADS:  # OpenBLAS starts its threads when it loads; one GEMM makes sure they exist
    np.ones((256, 256), np.float32) @ np.ones((256, 256), np.float32)
blas_threads = set(thread_cpu_ticks()) - before_blas

import minitorch_alex as mt  # noqa: E402
import minitorch_alex.nn.functional as F  # noqa: E402

args = [a for a in sys.argv[1:] if a not in ("--eval", "--blas-threads")]
B = int(args[0]) if args else 32
EVAL = "--eval" in sys.argv[1:]
if hasattr(mt, "config"):
    mt.config.set(retain_freed_memory=True)
else:  # before issue 13 importing the kernels set it
    from kernels.cpu import retain_freed_memory

    retain_freed_memory()
mt.manual_seed(0)
model = mt.models.alexnet(num_classes=1000)
opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
rng = np.random.default_rng(0)
x = mt.tensor(rng.standard_normal((B, 3, 224, 224)).astype(np.float32))
y = rng.integers(0, 1000, B)
times, ticks = [], {}
if EVAL:
    model.eval()
    for i in range(6):
        ticks = thread_cpu_ticks() if i == 2 else ticks
        t = time.perf_counter()
        with mt.no_grad():
            model(x).numpy()
        times.append(time.perf_counter() - t)
else:
    for i in range(5):
        ticks = thread_cpu_ticks() if i == 2 else ticks
        t = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t)
print(f"{np.median(times[2:]):.4f}")
if BLAS_THREADS:
    after = thread_cpu_ticks()
    spent = sum(after.get(tid, ticks[tid]) - ticks[tid] for tid in blas_threads if tid in ticks)
    print(f"BLAS threads: {spent / os.sysconf('SC_CLK_TCK'):.2f} s of CPU over the {len(times) - 2} measured passes")
