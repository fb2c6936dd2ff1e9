"""Median time of one training step of the paper's AlexNet at batch B (default backend, freed memory
retained), for before/after comparisons of two checkouts in the same run, alternating:

    for r in 1 2 3 4; do for tree in OLD NEW; do PYTHONPATH=$tree python benchmarks/train_step_time.py 128; done; done

Prints seconds per step: the median of steps 3-5 (steps 1-2 warm the kernels and the allocator).
``--eval``: the evaluation forward instead (model.eval(), under no_grad), the median of passes 3-6.
Works on checkouts from before mt.config (commit 64c8673) too.
"""
import sys
import time

try:  # OpenBLAS's AVX-512 kernels where it would fall back to AVX2 (before NumPy loads it)
    try:
        from minitorch_alex_kernels.blas_core import choose_openblas_core
    except ImportError:  # a checkout from before issue 28 imports kernels/ as kernels
        from kernels.blas_core import choose_openblas_core

    choose_openblas_core()
except ImportError:  # a checkout from before kernels/blas_core.py
    pass

import numpy as np  # noqa: E402

import minitorch_alex as mt
import minitorch_alex.nn.functional as F

args = [a for a in sys.argv[1:] if a != "--eval"]
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
times = []
if EVAL:
    model.eval()
    for _ in range(6):
        t = time.perf_counter()
        with mt.no_grad():
            model(x).numpy()
        times.append(time.perf_counter() - t)
else:
    for _ in range(5):
        t = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t)
print(f"{np.median(times[2:]):.4f}")
