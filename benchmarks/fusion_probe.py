"""Would transforming, multiplying and inverse-transforming Winograd tiles block by block in cache pay?

    python benchmarks/fusion_probe.py              # prints and updates benchmarks/RESULTS.md
    python benchmarks/fusion_probe.py --out -      # prints only

Issue #31 proposed restructuring the Winograd convolutions (conv1 through its polyphase
components, conv3-5) so that a block of tiles small enough for the L2 cache is transformed,
multiplied and inverse-transformed before the next, the transformed data never leaving the cache.
Two things decide whether that can be faster than today's chunks of whole images (tens of MB of
transformed data per thread), and this script measures both on the machine it runs on:

1. **The GEMM rate at the block's width.** A block of N tiles makes each of the 49 per-position
   GEMMs of F(5x5, 3x3) a (Og x Cg) @ (Cg x N) product. For each layer's shape and N from 8 to
   1024, single-threaded: OpenBLAS through ``np.matmul`` (what the kernels call), and a
   register-blocked numba micro-kernel (4 rows x 32 columns of the product held while the
   reduction runs: the issue's other route, written here only to be measured). The 'tiles in L2'
   column is how many tiles' transformed input and output (49 (Cg + Og) values each) fit in one
   core's L2.
2. **The whole layer at each block size.** Every convolution's forward + backward at batch 128 on
   its training path (float32, fused ReLU, the forward's ``saved`` handed to the backward, conv1
   without an input gradient), with the per-thread chunk budget ``conv.WINOGRAD_TARGET_BYTES``
   set from 4 MB (about one L2's worth of tiles for conv1, less than one image of conv3-5: one
   image per chunk) to 96 MB. The budgets are run in alternating order, medians of 3.

Both only read the kernels; nothing in the library changes.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# benchmarks/ is the script's folder. conv_profile (first) chooses the OpenBLAS core before NumPy loads.
import conv_profile
import numba
import numpy as np
from results_file import add_out_argument, publish

SECTION = "## Transforms fused with the GEMM in cache-sized blocks, measured (issue #31)"
END = "<!-- end of fusion_probe.py's tables: a rerun replaces what is above, back to the heading -->"

# AlexNet's Winograd convolutions: conv_profile's layers but conv2 (the frequency path)
LAYERS = tuple(layer for layer in conv_profile.LAYERS if layer[0] != "conv2")
POSITIONS = 49  # F(5x5, 3x3): 7x7 transformed values per tile
WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
BUDGETS_MB = (4, 8, 16, 32, 48, 96)


def cache_bytes(level):
    """Size of the level-``level`` data (or unified) cache of CPU 0 from sysfs, or None."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return None
    for entry in entries:
        try:
            with open(os.path.join(base, entry, "level")) as f:
                if int(f.read()) != level:
                    continue
            with open(os.path.join(base, entry, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(base, entry, "size")) as f:
                text = f.read().strip()
        except OSError:
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    return None


@numba.njit(fastmath={"reassoc", "contract"}, nogil=True, cache=False)
def micro_kernel(u, v, m):
    """m = u @ v for u (O, K), v (K, N), O a multiple of 4: 4 rows x 32 columns of m accumulate in
    a small buffer LLVM keeps in vector registers while k runs, so each loaded v value feeds 4
    multiply-adds."""
    o_all, k_all, n_all = u.shape[0], u.shape[1], v.shape[1]
    acc = np.empty((4, 32), dtype=m.dtype)
    for o in range(0, o_all, 4):
        for t0 in range(0, n_all, 32):
            nt = min(32, n_all - t0)
            for i in range(4):
                for t in range(32):
                    acc[i, t] = 0
            c0, c1, c2, c3 = acc[0], acc[1], acc[2], acc[3]
            for k in range(k_all):
                a0, a1, a2, a3 = u[o, k], u[o + 1, k], u[o + 2, k], u[o + 3, k]
                vk = v[k, t0:t0 + nt]
                for t in range(nt):
                    x = vk[t]
                    c0[t] += a0 * x
                    c1[t] += a1 * x
                    c2[t] += a2 * x
                    c3[t] += a3 * x
            for i in range(4):
                dst, src = m[o + i, t0:t0 + nt], acc[i]
                for t in range(nt):
                    dst[t] = src[t]


def gemm_shape(c, o, stride, groups):
    """(Og, Cg, channels): a per-position GEMM's (Og x Cg) and the channels (C + O, all groups) whose
    transformed tiles a block holds; conv1's input is its 3 channels x 16 polyphase components."""
    c_in = c * stride * stride
    return o // groups, c_in // groups, c_in + o


def best_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_rates(repeats=7, seed=0):
    """{layer: [(N, BLAS GFLOP/s, micro-kernel GFLOP/s)]}, one thread, per-position GEMM shapes."""
    from minitorch_alex_kernels.cpu.parallel import single_threaded_blas

    rng = np.random.default_rng(seed)
    rows = {}
    with single_threaded_blas():
        for name, c, _h, o, _k, s, _p, g in LAYERS:
            og, cg, _ = gemm_shape(c, o, s, g)
            u = rng.standard_normal((og, cg), dtype=np.float32)
            rows[name] = []
            for n in WIDTHS:
                v = rng.standard_normal((cg, n), dtype=np.float32)
                m, ref = np.empty((og, n), np.float32), np.empty((og, n), np.float32)
                np.matmul(u, v, out=ref)
                micro_kernel(u, v, m)
                assert np.allclose(m, ref, rtol=1e-4, atol=1e-3), name  # the probe must compute the product
                flops = 2.0 * og * cg * n
                blas = flops / best_seconds(lambda: np.matmul(u, v, out=ref), repeats) / 1e9
                micro = flops / best_seconds(lambda: micro_kernel(u, v, m), repeats) / 1e9
                rows[name].append((n, blas, micro))
            print(name, " ".join(f"N={n}: {b:.0f}/{mk:.0f}" for n, b, mk in rows[name]), "GFLOP/s (BLAS/micro)",
                  flush=True)
    return rows


def budget_sweep(batch, repeats, seed=0):
    """{layer: {budget MB: (median s, images per chunk)}}: forward + backward per chunk budget."""
    from minitorch_alex_kernels.cpu import conv, polyphase, winograd5

    saved_budget, saved_min = conv.WINOGRAD_TARGET_BYTES, conv.WINOGRAD_MIN_TILES
    conv.WINOGRAD_MIN_TILES = 1 << 30  # the byte budget alone sets the chunk
    rows = {}
    try:
        for name, c, h, o, k, s, p, g in LAYERS:
            x, w, b = conv_profile.layer_arrays((name, c, h, o, k, s, p, g), batch, seed)
            if s > 1:
                _, cs, hs, _ = polyphase.phase_shape(x.shape, (k, k), (s, s), (p, p))
                tiles, channels = winograd5.tiles5(hs - 2) ** 2, cs + o
            else:
                tiles, channels = winograd5.tiles5(h) ** 2, c + o

            def step():
                saved = {}
                y = conv.conv2d_forward(x, w, b, (s, s), (p, p), g, relu=True, saved=saved)
                conv.conv2d_backward(x, w, np.ones_like(y), (s, s), (p, p), g, need_x=name != "conv1",
                                     relu_output=y, saved=saved)

            step()  # compile / load, fault the buffers in
            times = {mb: [] for mb in BUDGETS_MB}
            for r in range(repeats):
                for mb in (BUDGETS_MB if r % 2 == 0 else BUDGETS_MB[::-1]):
                    conv.WINOGRAD_TARGET_BYTES = mb << 20
                    t0 = time.perf_counter()
                    step()
                    times[mb].append(time.perf_counter() - t0)
            rows[name] = {}
            for mb in BUDGETS_MB:
                conv.WINOGRAD_TARGET_BYTES = mb << 20
                images = conv.winograd_plan(batch, tiles, channels, 4, POSITIONS)[0][1]
                rows[name][mb] = (float(np.median(times[mb])), images)
            print(name, " ".join(f"{mb} MB: {t * 1e3:.0f} ms ({i} img)" for mb, (t, i) in rows[name].items()),
                  flush=True)
    finally:
        conv.WINOGRAD_TARGET_BYTES, conv.WINOGRAD_MIN_TILES = saved_budget, saved_min
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    add_out_argument(parser)
    args = parser.parse_args(argv)
    from minitorch_alex_kernels.cpu import conv, retain_freed_memory
    from minitorch_alex_kernels.cpu.parallel import get_num_threads

    retain_freed_memory()  # as the trainer and bench_cpu.py run
    l2, l3 = cache_bytes(2), cache_bytes(3)
    rates = gemm_rates()
    sweep = budget_sweep(args.batch, args.repeats)
    command = "python benchmarks/fusion_probe.py" + (f" --batch {args.batch}" if args.batch != 128 else "")
    mib = (lambda b: f"{b / (1 << 20):g} MiB" if b else "unknown")
    lines = [SECTION, "",
             f"`{command}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, L2 {mib(l2)} per core, L3 "
             f"{mib(l3)}). What the script measures is in its docstring.", "",
             "**1. Per-position GEMM rate against the block's width** (one thread, GFLOP/s, BLAS / numba "
             "micro-kernel; 'tiles in L2': how many tiles' transformed input and output fit in one core's L2):", "",
             "| layer | GEMM (Og x Cg) | tiles in L2 | " + " | ".join(f"N={n}" for n in WIDTHS) + " |",
             "|---|---|---|" + "---|" * len(WIDTHS)]
    for name, c, _h, o, _k, s, _p, g in LAYERS:
        og, cg, channels = gemm_shape(c, o, s, g)
        fit = l2 // (POSITIONS * channels * 4) if l2 else "?"
        cells = " | ".join(f"{b:.0f} / {mk:.0f}" for _n, b, mk in rates[name])
        lines.append(f"| {name} | {og} x {cg} | {fit} | {cells} |")
    lines += ["", f"**2. Forward + backward at batch {args.batch} against the chunk budget** "
              f"(`conv.WINOGRAD_TARGET_BYTES` per thread, today {conv.WINOGRAD_TARGET_BYTES >> 20} MB; "
              f"{get_num_threads()} threads; ms, median of {args.repeats}, budgets alternated; images per chunk "
              "in brackets):", "",
              "| layer | " + " | ".join(f"{mb} MB" for mb in BUDGETS_MB) + " |", "|---|" + "---|" * len(BUDGETS_MB)]
    for name, by_budget in sweep.items():
        lines.append(f"| {name} | " + " | ".join(f"{t * 1e3:.0f} ({i})" for t, i in by_budget.values()) + " |")
    text = "\n".join(lines) + "\n\n" + END + "\n"
    publish(args.out, SECTION, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
