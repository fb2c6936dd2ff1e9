"""Where the convolutions' time goes: GEMMs against everything else, measured inside the real kernels.

    python benchmarks/conv_profile.py                 # batch 128, prints and updates benchmarks/RESULTS.md
    python benchmarks/conv_profile.py --out -         # prints only

For each of AlexNet's convolutions, on the path it trains with (float32, fused ReLU, the forward's
``saved`` dict handed to the backward, as ``kernels.cpu.conv.Conv2dReLU`` runs it; conv1 without
an input gradient), the forward and the backward are timed, and so is every ``np.matmul`` the
kernels call (``kernels.cpu.conv`` and ``kernels.cpu.fourier``: the Winograd and im2col GEMMs,
the DFTs and the frequency products), by handing those two modules a NumPy whose ``matmul`` keeps
a clock. The GEMMs run in the threads of ``kernels.cpu.parallel``, so their summed time is divided
by the thread count to give wall time; the rest of each call is the transforms, gathers, scatters,
transposes and the framework's glue.

This is the profile behind issue #16's arithmetic: the GEMM column is what the layer would cost
if every transform were free, at the rate the BLAS really reaches on these shapes.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from results_file import add_out_argument, publish  # noqa: E402  (benchmarks/ is the script's folder)

from minitorch_alex_kernels.blas_core import choose_openblas_core  # noqa: E402

choose_openblas_core()  # before NumPy loads, as examples/train_imagenet.py does

import numpy as np  # noqa: E402

SECTION = "## Where the convolutions' time goes (issue #16)"
END = "<!-- end of conv_profile.py's table: a rerun replaces what is above, back to the heading -->"

# (name, C, H, O, k, stride, padding, groups), AlexNet's convolutions
LAYERS = (("conv1", 3, 224, 96, 11, 4, 2, 1), ("conv2", 96, 27, 256, 5, 1, 2, 2), ("conv3", 256, 13, 384, 3, 1, 1, 1),
          ("conv4", 384, 13, 384, 3, 1, 1, 2), ("conv5", 384, 13, 256, 3, 1, 1, 2))


class GemmClock:
    """A stand-in for the ``np`` of the kernel modules: everything is NumPy's, except that
    ``matmul`` adds its time to ``seconds`` (from any thread)."""

    def __init__(self, modules):
        self.seconds, self._lock, self._modules = 0.0, threading.Lock(), modules
        proxy = types.ModuleType("numpy")
        proxy.__getattr__ = lambda name: getattr(np, name)
        proxy.matmul = self._matmul
        self._proxy = proxy

    def _matmul(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return np.matmul(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds += elapsed

    def __enter__(self):
        for module in self._modules:
            module.np = self._proxy
        return self

    def __exit__(self, *exc):
        for module in self._modules:
            module.np = np


def layer_arrays(layer, batch, seed=0):
    """float32 x (batch, C, H, H), weight (O, C/G, k, k) ~ N(0, 0.01) and a zero bias (O,) for one
    entry of ``LAYERS``."""
    _name, c, h, o, k, _s, _p, g = layer
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c, h, h), dtype=np.float32)
    w = (rng.standard_normal((o, c // g, k, k)) * 0.01).astype(np.float32)
    return x, w, np.zeros(o, np.float32)


def profile(batch, repeats, seed=0):
    """{layer: (forward s, backward s, forward GEMM thread-s, backward GEMM thread-s, algorithm)},
    medians over ``repeats`` after one warm-up call."""
    from minitorch_alex_kernels.cpu import conv, fourier
    from minitorch_alex_kernels.cpu.parallel import get_num_threads

    rows = {}
    for name, c, h, o, k, s, p, g in LAYERS:
        x, w, b = layer_arrays((name, c, h, o, k, s, p, g), batch, seed)
        runs = []
        for i in range(repeats + 1):
            with GemmClock([conv, fourier]) as clock:
                saved = {}
                t0 = time.perf_counter()
                y = conv.conv2d_forward(x, w, b, (s, s), (p, p), g, relu=True, saved=saved)
                t1, gemm_fwd = time.perf_counter(), clock.seconds
                gy = np.ones_like(y)
                t2 = time.perf_counter()
                conv.conv2d_backward(x, w, gy, (s, s), (p, p), g, need_x=name != "conv1", relu_output=y, saved=saved)
                t3 = time.perf_counter()
            if i:
                runs.append((t1 - t0, t3 - t2, gemm_fwd, clock.seconds - gemm_fwd))
        rows[name] = tuple(float(v) for v in np.median(runs, axis=0)) + (conv.choose_algorithm((k, k), (s, s), (p, p)),)
        fwd, bwd, gf, gb, _ = rows[name]
        threads = get_num_threads()
        print(f"{name}: forward {fwd * 1e3:.0f} ms (GEMMs {gf / threads * 1e3:.0f}), backward {bwd * 1e3:.0f} ms "
              f"(GEMMs {gb / threads * 1e3:.0f})", flush=True)
    return rows, get_num_threads()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    add_out_argument(parser)
    args = parser.parse_args(argv)
    from minitorch_alex_kernels.cpu import retain_freed_memory

    retain_freed_memory()  # as the trainer and bench_cpu.py run
    rows, threads = profile(args.batch, args.repeats)
    command = "python benchmarks/conv_profile.py" + (f" --batch {args.batch}" if args.batch != 128 else "")
    lines = [SECTION, "",
             f"`{command}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {threads} threads): each "
             f"convolution's forward and backward at batch {args.batch} on its training path, and the time "
             "inside the `np.matmul` calls of `kernels/cpu/conv.py` and `kernels/cpu/fourier.py` (summed over "
             "the threads, divided by their number). 'GEMMs' is what the layer would take if every transform, "
             "gather, scatter and transpose were free, at the rate the BLAS reaches on these shapes; medians "
             f"of {args.repeats} calls after a warm-up. ms.", "",
             "| layer | algorithm | forward | of it GEMMs | backward | of it GEMMs | total | GEMMs | GEMM share |",
             "|---|---|---|---|---|---|---|---|---|"]
    sums = [0.0, 0.0]
    for name, (fwd, bwd, gf, gb, algorithm) in rows.items():
        gf, gb = gf / threads, gb / threads
        sums[0] += fwd + bwd
        sums[1] += gf + gb
        lines.append(f"| {name} | {algorithm} | {fwd * 1e3:.0f} | {gf * 1e3:.0f} | {bwd * 1e3:.0f} | {gb * 1e3:.0f} | "
                     f"{(fwd + bwd) * 1e3:.0f} | {(gf + gb) * 1e3:.0f} | {(gf + gb) / (fwd + bwd):.0%} |")
    lines.append(f"| all | | | | | | {sums[0] * 1e3:.0f} | {sums[1] * 1e3:.0f} | {sums[1] / sums[0]:.0%} |")
    text = "\n".join(lines) + "\n\n" + END + "\n"
    publish(args.out, SECTION, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
