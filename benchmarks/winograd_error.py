"""Float32 error of each convolution algorithm against float64, on AlexNet's layers.

    python benchmarks/winograd_error.py            # prints the table, updates benchmarks/RESULTS.md
    python benchmarks/winograd_error.py --out -    # prints only

For conv1 (by its polyphase components), conv2 and conv3-5, at their real channel counts and map
sizes: the forward output, the input gradient and the weight gradient of each algorithm that
applies, computed in float32 from float32 data, against the same convolution done in float64
by im2col (whose float64 rounding is ~1e-16, nothing next to float32's). Weights are drawn at
the paper's scale (N(0, 0.01)), inputs and output gradients N(0, 1).

Two measures per tensor: the normwise relative error ||got - want|| / ||want||, and the largest
entrywise error over the largest entry, max |got - want| / max |want|.

'auto' takes F(5x5, 3x3) ('winograd5') for 3x3 layers and, through the polyphase split, for
conv1 in float32; F(4x4, 3x3) ('winograd4') is the previous choice, im2col the baseline every
framework's GEMM path has.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from results_file import add_out_argument, publish  # noqa: E402  (benchmarks/ is the script's folder)

from minitorch_alex_kernels.cpu import conv  # noqa: E402

SECTION = "## Float32 error of the convolution algorithms (issue #16)"
END = "<!-- end of winograd_error.py's table: a rerun replaces what is above, back to the heading -->"

# (name, C, H, O, k, stride, padding, groups, algorithms measured)
LAYERS = (("conv1", 3, 224, 96, 11, 4, 2, 1, ("im2col", "polyphase F(4x4)", "polyphase F(5x5)")),
          ("conv2", 96, 27, 256, 5, 1, 2, 2, ("im2col", "fourier")),
          ("conv3", 256, 13, 384, 3, 1, 1, 1, ("im2col", "winograd4", "winograd5")),
          ("conv4", 384, 13, 384, 3, 1, 1, 2, ("im2col", "winograd4", "winograd5")),
          ("conv5", 384, 13, 256, 3, 1, 1, 2, ("im2col", "winograd4", "winograd5")))


@contextlib.contextmanager
def polyphase_variant(variant):
    """The polyphase path with the Winograd variant ``variant`` for every dtype (float32 takes F(5x5)
    by itself; the older F(4x4) is measured this way)."""
    original = conv.winograd_for
    conv.winograd_for = lambda dtype: variant
    try:
        yield
    finally:
        conv.winograd_for = original


def run(x, w, gy, stride, padding, groups, algorithm):
    """(y, gx, gw) of conv2d with ``algorithm`` ('polyphase F(mxm)' picks the polyphase path's variant)."""
    variant = {"polyphase F(4x4)": "winograd4", "polyphase F(5x5)": "winograd5"}.get(algorithm)
    name = "polyphase" if variant else algorithm
    with polyphase_variant(variant) if variant else contextlib.nullcontext():
        saved = {}
        y = conv.conv2d_forward(x, w, None, stride, padding, groups, algorithm=name, saved=saved)
        gx, gw, _ = conv.conv2d_backward(x, w, gy, stride, padding, groups, need_bias=False, algorithm=name, saved=saved)
    return y, gx, gw


def errors(got, want):
    got = got.astype(np.float64)
    return (float(np.linalg.norm(got - want) / np.linalg.norm(want)),
            float(np.abs(got - want).max() / np.abs(want).max()))


def measure(batch, seed):
    rows = []
    for name, c, h, o, k, s, p, g, algorithms in LAYERS:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, c, h, h))
        w = rng.standard_normal((o, c // g, k, k)) * 0.01
        oh = (h + 2 * p - k) // s + 1
        gy = rng.standard_normal((batch, o, oh, oh))
        want = run(x, w, gy, (s, s), (p, p), g, "im2col")
        x32, w32, gy32 = x.astype(np.float32), w.astype(np.float32), gy.astype(np.float32)
        for algorithm in algorithms:
            got = run(x32, w32, gy32, (s, s), (p, p), g, algorithm)
            rows.append((name, algorithm, [errors(a, b) for a, b in zip(got, want)]))
            print(f"{name:6s} {algorithm:18s} " + "  ".join(f"{t} {e[0]:.2e} / {e[1]:.2e}" for t, e in
                                                           zip(("y", "gx", "gw"), rows[-1][2])), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    add_out_argument(parser)
    args = parser.parse_args(argv)
    rows = measure(args.batch, args.seed)
    command = "python benchmarks/winograd_error.py" + (f" --batch {args.batch}" if args.batch != 4 else "")
    lines = [SECTION, "",
             f"`{command}` ({time.strftime('%Y-%m-%d')}): each algorithm in float32 against the same convolution "
             f"in float64 (im2col), at AlexNet's channel counts and map sizes, batch {args.batch}, weights "
             "N(0, 0.01), inputs and output gradients N(0, 1). Each cell: normwise relative error "
             "||got - want|| / ||want||, then max |got - want| / max |want|. Bold: what 'auto' trains with.", "",
             "| layer | algorithm | output y | input gradient | weight gradient |", "|---|---|---|---|---|"]
    auto = {"conv1": "polyphase F(5x5)", "conv2": "fourier", "conv3": "winograd5", "conv4": "winograd5",
            "conv5": "winograd5"}
    for name, algorithm, errs in rows:
        label = f"**{algorithm}**" if auto[name] == algorithm else algorithm
        cells = [f"{e[0]:.1e} / {e[1]:.1e}" for e in errs]
        lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n\n" + END + "\n"
    publish(args.out, SECTION, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
