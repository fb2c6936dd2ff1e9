#!/usr/bin/env python
"""minitorch_alex against PyTorch on the same GPU, on the paper's AlexNet at batch 128.

    python benchmarks/bench_gpu.py                 # the full run, writes benchmarks/RESULTS_GPU.md
    python benchmarks/bench_gpu.py --quick         # a short smoke run (batch 16, few steps)

Measured, each after warm-up steps, with CUDA events recorded on the stream around the timed
region: the stream's wall time between the two events, idle gaps included (a step whose host
side cannot keep the GPU fed shows here as a lower rate); the host only waits for the end event:

* training images/s (forward, cross-entropy, backward, SGD update) of
  - minitorch_alex: float32, TF32 (``mt.config.using(tf32=True)``), mixed precision
    (``minitorch_alex.amp``, float16 with float32 master weights and loss scaling);
  - PyTorch with cuDNN (``cudnn.benchmark``): float32 (TF32 off), TF32, AMP (autocast float16 +
    GradScaler); the same network (groups, LRN within each tower with alpha converted, paper
    dropout) written with torch.nn, skipped if torch has no CUDA;
* minitorch_alex's per-layer forward and backward times (CUDA events), float32;
* the GPU input pipeline's images/s (``data.gpu_augment.GPUAugmenter``: uint8 store ->
  pinned memory -> async copy -> crop/flip/mean/PCA on the GPU) on an in-memory 256x256 store.

Each configuration runs in its own try: one that fails (say, out of memory) is reported with
its error in the table and the others still run. The table is printed and written (atomically)
with the GPU's name, versions and the command to ``--out``. Without CuPy or a CUDA GPU the script
stops at once with a message saying so (exit status 2).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128, help="training batch size (default 128, the paper's)")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per configuration")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (kernel compilation, cuDNN autotuning)")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--no-torch", action="store_true", help="measure minitorch_alex only")
    ap.add_argument("--quick", action="store_true", help="batch 16, 3 steps: checks that everything runs")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS_GPU.md"))
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.warmup = 16, 3, 1
    return args


def require_gpu(prog="bench_gpu"):
    """The cupy module, or exit with a clear message: this benchmark needs an NVIDIA GPU."""
    def fail(why):
        print(f"{prog}: {why}; the CPU benchmark is benchmarks/bench_cpu.py", file=sys.stderr)
        sys.exit(2)

    try:
        import cupy
    except ImportError:
        fail("CuPy is not installed, so there is no GPU to benchmark (pip install -e \".[gpu]\" on a machine "
             "with an NVIDIA GPU)")
    try:
        ok = cupy.cuda.is_available()
    except Exception:
        ok = False
    if not ok:
        fail("CuPy finds no usable CUDA GPU on this machine (no device or no driver)")
    return cupy


class GPUTimer:
    """Seconds of GPU time between ``start()`` and ``stop()``, from CUDA events recorded on the
    current stream (the host's clock would also count launch overhead and Python)."""

    def __init__(self, cp):
        self.cp = cp
        self.begin, self.end = cp.cuda.Event(), cp.cuda.Event()

    def start(self):
        self.begin.record()

    def stop(self):
        self.end.record()
        self.end.synchronize()
        return self.cp.cuda.get_elapsed_time(self.begin, self.end) / 1e3


def timed(cp, fn, steps, warmup):
    """Seconds per call of fn, by CUDA events around the ``steps`` timed calls."""
    for _ in range(warmup):
        fn()
    timer = GPUTimer(cp)
    timer.start()
    for _ in range(steps):
        fn()
    return timer.stop() / steps


def attempt(label, fn, *args):
    """fn(*args), or the error as a one-line string (the benchmark goes on with the next mode)."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 (reported in the table, never hidden)
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        print(f"bench_gpu: {label} failed: {message}", file=sys.stderr)
        return f"failed ({message[:120]})"


# ----- minitorch_alex ------------------------------------------------------------------------------
def ours_train(cp, args, mode):
    import numpy as np

    import minitorch_alex as mt
    import minitorch_alex.nn.functional as F
    from minitorch_alex import amp

    mt.manual_seed(0)
    model = mt.models.alexnet(num_classes=1000, devices=args.device)
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal((args.batch, 3, 224, 224), dtype=np.float32), device=args.device)
    y = rng.integers(0, 1000, args.batch)
    with tf32_mode(mode == "tf32"):
        if mode == "mixed":
            mp = amp.MixedPrecision(model, "float16")
            opt = mt.optim.SGD(mp.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

            def step():
                mp.backward(F.cross_entropy(mp.forward(x), y))
                mp.step(opt)
        else:
            opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

            def step():
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
        return args.batch / timed(cp, step, args.steps, args.warmup)


def tf32_mode(enabled):
    """A context with float32 GEMMs on TF32 (or not)."""
    import minitorch_alex as mt

    return mt.config.using(tf32=enabled)


def ours_layers(cp, args):
    """(name, forward ms, backward ms) of each AlexNet layer at the benchmark's batch, float32."""
    import numpy as np

    import minitorch_alex as mt
    import minitorch_alex.nn.functional as F

    n, dev = args.batch, args.device
    rng = np.random.default_rng(0)

    def t(*shape, grad=True):
        return mt.tensor(rng.standard_normal(shape, dtype=np.float32) * 0.1, requires_grad=grad, device=dev)

    cases = [
        ("conv1", lambda: (t(n, 3, 224, 224, grad=False), t(96, 3, 11, 11), t(96)), lambda x, w, b: F.conv2d(x, w, b, 4, 2)),
        ("lrn1", lambda: (t(n, 96, 55, 55),), lambda x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0, groups=2)),
        ("pool1", lambda: (t(n, 96, 55, 55),), lambda x: F.max_pool2d(x, 3, 2)),
        ("conv2", lambda: (t(n, 96, 27, 27), t(256, 48, 5, 5), t(256)), lambda x, w, b: F.conv2d(x, w, b, 1, 2, groups=2)),
        ("lrn2", lambda: (t(n, 256, 27, 27),), lambda x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0, groups=2)),
        ("pool2", lambda: (t(n, 256, 27, 27),), lambda x: F.max_pool2d(x, 3, 2)),
        ("conv3", lambda: (t(n, 256, 13, 13), t(384, 256, 3, 3), t(384)), lambda x, w, b: F.conv2d(x, w, b, 1, 1)),
        ("conv4", lambda: (t(n, 384, 13, 13), t(384, 192, 3, 3), t(384)), lambda x, w, b: F.conv2d(x, w, b, 1, 1, groups=2)),
        ("conv5", lambda: (t(n, 384, 13, 13), t(256, 192, 3, 3), t(256)), lambda x, w, b: F.conv2d(x, w, b, 1, 1, groups=2)),
        ("pool5", lambda: (t(n, 256, 13, 13),), lambda x: F.max_pool2d(x, 3, 2)),
        ("fc6", lambda: (t(n, 9216), t(4096, 9216), t(4096)), F.linear),
        ("fc7", lambda: (t(n, 4096), t(4096, 4096), t(4096)), F.linear),
        ("fc8", lambda: (t(n, 4096), t(1000, 4096), t(1000)), F.linear),
        ("relu (conv1 out)", lambda: (t(n, 96, 55, 55),), F.relu),
        ("dropout (fc6 out)", lambda: (t(n, 4096),), lambda x: F.dropout(x, 0.5)),
    ]
    rows = []
    for name, make, fn in cases:
        inputs = make()
        fwd = timed(cp, lambda: fn(*inputs), args.steps, args.warmup)
        holder = {}

        def backward():
            for i in inputs:
                i.grad = None
            holder["y"].backward(holder["g"])

        def prepare():
            holder["y"] = fn(*inputs)
            holder["g"] = mt.tensor(cp.ones(holder["y"].shape, dtype=cp.float32), device=dev)

        total, timer = 0.0, GPUTimer(cp)
        for k in range(args.warmup + args.steps):  # each backward needs a fresh graph: time it alone
            prepare()
            timer.start()
            backward()
            seconds = timer.stop()
            total += seconds if k >= args.warmup else 0.0
        rows.append((name, fwd * 1e3, total / args.steps * 1e3))
    return rows


def loader_rate(cp, args):
    import numpy as np

    from minitorch_alex.data import StoreSplit
    from minitorch_alex.data.gpu_augment import GPUAugmenter

    n = max(4 * args.batch, 64)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 256, 256, 3), dtype=np.uint8)
    split = StoreSplit(images=images, labels=rng.integers(0, 1000, n), mean=images.mean(0).astype(np.float32),
                       eigvals=np.array([0.2, 0.02, 0.005], np.float32), eigvecs=np.eye(3, dtype=np.float32))
    aug = GPUAugmenter(split, batch_size=args.batch, device=args.device)
    for _ in aug.batches(0):  # warm-up epoch
        pass
    timer = GPUTimer(cp)
    timer.start()
    for _ in aug.batches(1):
        pass
    return n / timer.stop()


# ----- PyTorch -------------------------------------------------------------------------------------
def torch_train(args, mode):
    """PyTorch's images/s for 'fp32', 'tf32' or 'amp' on the same network, or None without CUDA torch."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    nn = torch.nn
    dev = torch.device("cuda:" + args.device.split(":")[1])
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"

    class LRN2(nn.Module):  # the paper's LRN within each tower; torch's alpha is ours times size
        def __init__(self):
            super().__init__()
            self.lrn = nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)

        def forward(self, x):
            return torch.cat([self.lrn(h) for h in x.chunk(2, dim=1)], dim=1)

    model = nn.Sequential(
        nn.Conv2d(3, 96, 11, 4, 2), nn.ReLU(), LRN2(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, 1, 2, groups=2), nn.ReLU(), LRN2(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, 1, 1), nn.ReLU(), nn.Conv2d(384, 384, 3, 1, 1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, 1, 1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 1000)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, 224, 224, device=dev)
    y = torch.randint(0, 1000, (args.batch,), device=dev)
    scaler = torch.amp.GradScaler("cuda", enabled=mode == "amp")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=mode == "amp"):
            loss = nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(args.warmup):
        step()
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    for _ in range(args.steps):
        step()
    end.record()
    end.synchronize()
    return args.batch / (begin.elapsed_time(end) / 1e3 / args.steps)


# ----- report ----------------------------------------------------------------------------------------
def report(cp, args, ours, theirs, layers, loader):
    props = cp.cuda.runtime.getDeviceProperties(int(args.device.split(":")[1]))
    gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    lines = [
        f"# GPU benchmark: AlexNet training at batch {args.batch}", "",
        "| machine | |", "|---|---|", f"| GPU | {gpu} |", f"| CUDA runtime | {cp.cuda.runtime.runtimeGetVersion()} |",
        f"| CuPy | {cp.__version__} |", f"| PyTorch | {torch_version} |", f"| Python | {platform.python_version()} |",
        f"| command | `python benchmarks/bench_gpu.py {' '.join(sys.argv[1:])}` |", "",
        "## Training images/s", "", "| configuration | minitorch_alex | PyTorch (cuDNN) | ratio |", "|---|---|---|---|",
    ]
    def cell(v):
        return "-" if v is None else v if isinstance(v, str) else f"{v:.1f}"

    for label, ours_key, torch_key in (("float32", "fp32", "fp32"), ("TF32", "tf32", "tf32"),
                                       ("mixed precision (fp16)", "mixed", "amp")):
        a, b = ours.get(ours_key), theirs.get(torch_key)
        ratio = f"{a / b:.2f}x" if isinstance(a, float) and isinstance(b, float) else "-"
        lines.append(f"| {label} | {cell(a)} | {cell(b)} | {ratio} |")
    lines += ["", "Targets (issue #5): minitorch_alex float32 >= 0.8x PyTorch+cuDNN float32; mixed precision faster than float32.",
              "", "## minitorch_alex layers, float32 (ms)", "", "| layer | forward | backward |", "|---|---|---|"]
    if isinstance(layers, str):
        lines.append(f"| all | {layers} | |")
    else:
        lines += [f"| {name} | {f:.3f} | {b:.3f} |" for name, f, b in layers]
    rate = loader if isinstance(loader, str) else f"{loader:.0f} images/s"
    lines += ["", "## Input pipeline", "", f"GPUAugmenter (uint8 -> pinned -> async copy -> crop/flip/mean/PCA on the GPU): "
              f"{rate} at batch {args.batch}", ""]
    text = "\n".join(lines)
    print(text)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.out)  # a reader never sees half a table
    print(f"\nwritten to {args.out}")
    return text


def main(argv=None):
    args = parse_args(argv)
    cp = require_gpu()
    ours = {mode: attempt(f"minitorch_alex {mode}", ours_train, cp, args, mode) for mode in ("fp32", "tf32", "mixed")}
    theirs = {} if args.no_torch else {mode: attempt(f"PyTorch {mode}", torch_train, args, mode)
                                       for mode in ("fp32", "tf32", "amp")}
    layers = attempt("per-layer times", ours_layers, cp, args)
    loader = attempt("input pipeline", loader_rate, cp, args)
    return report(cp, args, ours, theirs, layers, loader)


if __name__ == "__main__":
    main()
