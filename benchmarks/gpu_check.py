#!/usr/bin/env python
"""The GPU check: everything the CPU could not prove, in one command and one report file.

    python benchmarks/gpu_check.py                      # writes benchmarks/RESULTS_GPU.md
    python benchmarks/gpu_check.py --out report.md --bench-steps 5

For a machine with one NVIDIA GPU, CuPy (CUDA 12 or 13 build) and PyTorch installed, and no
network. Sections, each in its own try (a failure is written into the report with its traceback
and the next section runs), with the report rewritten atomically after each one, so even a run
cut short leaves what it found:

1. ``cupy.show_config()`` and the GPU.
2. NVRTC: every ``kernels/cuda/*.cu`` built through ``cupy.RawModule`` (``kernels.cuda.module``)
   and every kernel the wrappers launch fetched from it.
3. Every CUDA op class (``kernels.cuda.Conv2d``, ...) forward and backward against the NumPy
   reference in float64, on random shapes, in float32, float16 and bfloat16 (if this CuPy has
   it), plus the fused SGD update and the TF32 switch.
4. A few AlexNet training steps on cuda:0 against the same steps on the CPU (same seed, same
   dropout masks).
5. The two-tower model on (cuda:0, cuda:0) and (cuda:0, cpu) against the single-device model.
6. The GPU tests (pytest), then the benchmark (``bench_gpu.py``: minitorch_alex vs
   PyTorch+cuDNN, fp32 / TF32 / mixed precision, batch 128, per-layer CUDA-event times; each
   mode in its own try).

Budget: under 8 minutes on an H100/H200 (``--budget`` seconds: the benchmark is skipped when
too little is left). Without CuPy or a GPU it stops at once, saying why (exit status 2).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

# relative error ||actual - reference|| / ||reference|| (Frobenius: a ReLU mask that flips at one
# value rounded across zero counts for its share, not as the whole error)
TOL = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 4e-2}


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", os.path.join(HERE, "bench_gpu.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_mode():
    """The NumPy reference backend for a block (``mt.config`` where it exists, else the older switch)."""
    import minitorch_alex as mt

    config = getattr(mt, "config", None)
    if config is not None and hasattr(config, "using"):
        return config.using(backend="reference")
    from minitorch_alex.backend import use_backend

    return use_backend("reference")


class Report:
    def __init__(self, path):
        self.path, self.lines, self.failures = path, [], []

    def add(self, *lines):
        self.lines.extend(lines)

    def section(self, title, fn, *args):
        start = time.perf_counter()
        self.add("", f"## {title}", "")
        try:
            fn(self, *args)
            status = "ok"
        except Exception:  # noqa: BLE001 (written into the report)
            status = "FAILED"
            self.failures.append(title)
            self.add("```", traceback.format_exc().rstrip(), "```")
        self.add("", f"_{title}: {status} in {time.perf_counter() - start:.1f} s_")
        self.write()
        print(f"gpu_check: {title}: {status}", flush=True)

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(self.lines) + "\n")
        os.replace(tmp, self.path)


# ----- 1. configuration ----------------------------------------------------------------------------
def show_config(rep, cp):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cp.show_config()
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    rep.add(f"GPU 0: {name}, compute capability {props['major']}.{props['minor']}, "
            f"{props['totalGlobalMem'] / 2**30:.0f} GiB", "", "```", buf.getvalue().rstrip(), "```")


# ----- 2. NVRTC through RawModule ------------------------------------------------------------------
def nvrtc_build(rep, cp):
    import kernels.cuda as kc

    launched = set()
    for path in sorted(os.listdir(kc.HERE)):
        if path.endswith(".py"):
            with open(os.path.join(kc.HERE, path), encoding="utf-8") as f:
                launched |= set(re.findall(r'function\("(\w+)", "(\w+)"', f.read()))
    rep.add("| source | build (s) | kernels fetched |", "|---|---|---|")
    for name in kc.SOURCES:
        start = time.perf_counter()
        kc.module(name).compile()
        built = time.perf_counter() - start
        fetched = 0
        for source, kernel in sorted(launched):
            if source != name:
                continue
            for suffix in ("f32", "f64") if name == "sgd" else tuple(kc.SUFFIX.values()):
                kc.module(name).get_function(f"{kernel}_{suffix}")
                fetched += 1
        rep.add(f"| {name}.cu | {built:.2f} | {fetched} |")


# ----- 3. every op against the reference -----------------------------------------------------------
def _dtypes(cp):
    import numpy as np

    names = ["float32", "float16"]
    try:
        import ml_dtypes

        cp.asarray(np.zeros(2, ml_dtypes.bfloat16)) * 1  # CuPy >= 14 with ml_dtypes
        names.append("bfloat16")
    except Exception:  # noqa: BLE001 (bfloat16 not supported by this CuPy/NumPy)
        pass
    return names


def _op_cases(rng):
    """(label, class name, numpy inputs, params, reference on CPU tensors) on random shapes."""
    import minitorch_alex.nn.functional as F

    r = lambda *s: rng.standard_normal(s)  # noqa: E731
    n, g = int(rng.integers(1, 4)), 2
    c, h = g * int(rng.integers(2, 5)), int(rng.integers(7, 16))
    o = g * int(rng.integers(2, 6))
    k = int(rng.choice([3, 5]))
    conv = dict(stride=(1, 1), padding=(k // 2, k // 2), groups=g)
    keep = rng.random((n, 37)) < 0.5
    return [
        ("conv grouped", "Conv2d", [r(n, c, h, h), r(o, c // g, k, k), r(o)], conv,
         lambda x, w, b: F.conv2d(x, w, b, 1, k // 2, g)),
        ("conv strided, no bias", "Conv2d", [r(n, 3, h + 4, h + 4), r(o, 3, 3, 3)], dict(stride=(2, 2), padding=(1, 1), groups=1),
         lambda x, w: F.conv2d(x, w, None, 2, 1, 1)),
        ("conv + relu", "Conv2dReLU", [r(n, c, h, h), r(o, c // g, k, k), r(o)], conv,
         lambda x, w, b: F.conv2d(x, w, b, 1, k // 2, g)),  # fused ReLU: see ops_vs_reference
        ("linear", "Linear", [r(n, 50), r(30, 50), r(30)], {}, F.linear),
        ("linear + relu", "LinearReLU", [r(n, 50), r(30, 50), r(30)], {}, F.linear),
        ("max pool 3/2", "MaxPool2d", [r(n, c, h, h)], dict(kernel_size=(3, 3), stride=(2, 2), padding=(0, 0)),
         lambda x: F.max_pool2d(x, 3, 2)),
        ("LRN", "LocalResponseNorm", [r(n, c, h, h)], dict(size=5, alpha=0.1, beta=0.75, k=2.0, groups=g),
         lambda x: F.local_response_norm(x, 5, 0.1, 0.75, 2.0, groups=g)),
        ("relu", "ReLU", [r(n, 37)], {}, F.relu),
        ("dropout", "Dropout", [r(n, 37), keep], dict(scale=2.0), lambda x, m: x * mt_tensor(keep * 2.0)),
    ]


def mt_tensor(a, **kw):
    import minitorch_alex as mt

    return mt.tensor(a, **kw)


def _err(actual, expected):
    import numpy as np

    expected = np.asarray(expected, np.float64)
    return float(np.linalg.norm(np.asarray(actual, np.float64) - expected) / (np.linalg.norm(expected) + 1e-30))


def ops_vs_reference(rep, cp, seed=None):
    import numpy as np

    import kernels.cuda as kc

    seed = int(time.time()) % 10000 if seed is None else seed
    rng = np.random.default_rng(seed)
    rep.add(f"random shapes (seed {seed}); tolerance: ||error|| / ||reference|| <= {TOL}", "",
            "| op | dtype | shapes | forward | backward (worst input) |", "|---|---|---|---|---|")
    bad = []
    for dtype in _dtypes(cp):
        np_dtype = np.dtype(dtype) if dtype != "bfloat16" else np.dtype(__import__("ml_dtypes").bfloat16)
        for label, cls, inputs, params, ref in _op_cases(rng):
            diff = [a.dtype != bool for a in inputs]
            cast = [a.astype(np_dtype) if d else a for a, d in zip(inputs, diff)]
            impl = getattr(kc, cls)(tf32=False) if cls.startswith(("Conv", "Linear")) else getattr(kc, cls)()
            impl.needs_input_grad = tuple(diff)
            y = impl.forward(*[cp.asarray(a) for a in cast], **params)
            with reference_mode():
                ts = [mt_tensor(a.astype(np.float64), requires_grad=True) if d else a for a, d in zip(cast, diff)]
                y_ref = ref(*ts)
                gy = rng.standard_normal(y_ref.shape)
                gy_ref, expected = gy, y_ref.numpy()
                if cls.endswith("ReLU"):  # the derivative at the kernel's own output: a value rounded across
                    expected = np.maximum(expected, 0)  # zero flips the mask, which is not an error
                    gy_ref = gy * (np.asarray(cp.asnumpy(y), np.float64) > 0)
                y_ref.backward(gy_ref)
            grads = impl.backward(cp.asarray(gy.astype(np_dtype)))
            e_fwd = _err(cp.asnumpy(y), expected)
            e_bwd = max(_err(cp.asnumpy(g), t.grad.numpy()) for g, t, d in zip(grads, ts, diff) if d)
            ok = max(e_fwd, e_bwd) <= TOL[dtype]
            bad += [] if ok else [f"{label} {dtype}"]
            shapes = " ".join("x".join(map(str, a.shape)) for a in inputs)
            rep.add(f"| {label} | {dtype} | {shapes} | {e_fwd:.1e} | {e_bwd:.1e}{'' if ok else ' **FAIL**'} |")
    w, v, g = (rng.standard_normal(1000).astype(np.float32) for _ in range(3))
    dw, dv = cp.asarray(w.copy()), cp.asarray(v.copy())  # (copies: the update is in place)
    kc.sgd_momentum_update_(dw, dv, cp.asarray(g), 0.9, 5e-4, 0.01)
    v_ref = 0.9 * v - 5e-4 * 0.01 * w - 0.01 * g
    e = max(_err(cp.asnumpy(dv), v_ref), _err(cp.asnumpy(dw), w + v_ref))
    rep.add(f"| sgd update | float32 | 1000 | {e:.1e} | |")
    bad += [] if e <= TOL["float32"] else ["sgd"]
    if bad:
        raise AssertionError(f"ops outside tolerance: {bad}")


def tf32_switch(rep, cp):
    import numpy as np
    from cupy._core import _routines_linalg as linalg

    import kernels.cuda as kc

    kc.set_tf32(True)
    on = linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32
    kc.set_tf32(False)
    off = linalg.get_compute_type(np.float32) != linalg.COMPUTE_TYPE_TF32
    rep.add(f"kernels.cuda.set_tf32 reaches CuPy's float32 compute type: on {on}, off {off}")
    if not (on and off):
        raise AssertionError("the TF32 switch did not reach CuPy")


# ----- 4. AlexNet steps, GPU vs CPU ----------------------------------------------------------------
def _steps(model, x, y, steps, seed, device):
    import minitorch_alex as mt
    import minitorch_alex.nn.functional as F

    opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    losses = []
    for i in range(steps):
        mt.manual_seed(seed + i)  # the same dropout masks on both devices
        opt.zero_grad()
        loss = F.cross_entropy(model(mt_tensor(x, device=device)), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def alexnet_vs_cpu(rep, cp, steps=3, batch=8):
    import numpy as np

    import minitorch_alex as mt

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32), rng.integers(0, 10, batch)
    results = {}
    for dev in ("cpu", "cuda:0"):
        mt.manual_seed(1)
        model = mt.models.alexnet(num_classes=10, devices=dev)
        results[dev] = (_steps(model, x, y, steps, seed=7, device=dev), model.state_dict())
    (cpu_losses, cpu_state), (gpu_losses, gpu_state) = results["cpu"], results["cuda:0"]
    worst = max(_err(cp.asnumpy(v) if not isinstance(v, np.ndarray) else v, cpu_state[k]) for k, v in gpu_state.items())
    rep.add(f"batch {batch}, {steps} SGD steps, float32, dropout 0.5 (same masks)", "",
            f"losses CPU: {[round(v, 6) for v in cpu_losses]}", f"losses GPU: {[round(v, 6) for v in gpu_losses]}",
            f"worst relative parameter difference after the steps: {worst:.1e}")
    if max(abs(a - b) for a, b in zip(cpu_losses, gpu_losses)) > 1e-3 or worst > 1e-3:
        raise AssertionError("GPU training steps differ from the CPU's")


# ----- 5. two towers -------------------------------------------------------------------------------
def two_tower(rep, cp):
    import numpy as np

    import minitorch_alex as mt
    import minitorch_alex.nn.functional as F

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3, 224, 224)), np.array([1, 7])
    mt.manual_seed(3)
    single = mt.models.alexnet(num_classes=10, dtype=np.float64, dropout=0.0)
    loss_ref = F.cross_entropy(single(mt_tensor(x)), y)
    loss_ref.backward()
    grads_ref = {name: p.grad.numpy() for name, p in single.named_parameters()}
    for devices in (("cuda:0", "cuda:0"), ("cuda:0", "cpu")):
        mt.manual_seed(3)
        split = mt.models.alexnet(num_classes=10, devices=devices, dtype=np.float64, dropout=0.0)
        loss = F.cross_entropy(split(mt_tensor(x)), y)
        loss.backward()
        merged = {}
        for layer in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
            for kind in ("weight", "bias"):
                merged[f"{layer}.{kind}"] = np.concatenate(
                    [getattr(getattr(tw, layer), kind).grad.numpy() for tw in split.towers], axis=0)
        merged["fc8.weight"], merged["fc8.bias"] = split.fc8.weight.grad.numpy(), split.fc8.bias.grad.numpy()
        worst = max(_err(merged[k], v) for k, v in grads_ref.items())
        rep.add(f"{devices}: loss {loss.item():.10f} (single device {loss_ref.item():.10f}), worst gradient "
                f"difference {worst:.1e}, copies {split.traffic.copies}")
        if abs(loss.item() - loss_ref.item()) > 1e-9 or worst > 1e-8:
            raise AssertionError(f"two towers on {devices} differ from the single-device model")


# ----- 6. GPU tests and benchmark ------------------------------------------------------------------
def gpu_tests(rep, timeout):
    files = ["tests/test_gpu.py", "tests/test_gpu_augment.py", "tests/test_two_tower.py", "tests/test_cuda_nvrtc.py"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": ROOT})
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
    rep.add("`pytest -q " + " ".join(files) + "`", "", "```", *tail, "```")
    if proc.returncode != 0:
        raise AssertionError(f"pytest exited with {proc.returncode}")


def benchmark(rep, bench, steps, out):
    text = bench.main(["--steps", str(steps), "--warmup", "2", "--out", out])
    rep.add(*text.replace("# GPU benchmark", "### GPU benchmark").splitlines())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS_GPU.md"))
    ap.add_argument("--bench-steps", type=int, default=10, help="timed steps per benchmark mode")
    ap.add_argument("--budget", type=float, default=450, help="seconds; the benchmark needs 150 of them left")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    bench = load_bench()
    cp = bench.require_gpu("gpu_check")  # exits with the reason (status 2) without CuPy or a GPU
    rep = Report(args.out)
    rep.add("# GPU check", "", f"`python benchmarks/gpu_check.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
            f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    rep.section("1. CuPy configuration", show_config, cp)
    rep.section("2. NVRTC build through RawModule", nvrtc_build, cp)
    rep.section("3. Every CUDA op against the reference", ops_vs_reference, cp)
    rep.section("3b. TF32 switch", tf32_switch, cp)
    rep.section("4. AlexNet steps: GPU vs CPU", alexnet_vs_cpu, cp)
    rep.section("5. Two towers on (cuda:0, cuda:0) and (cuda:0, cpu)", two_tower, cp)
    left = args.budget - (time.perf_counter() - start)
    rep.section("6a. GPU tests", gpu_tests, max(30.0, min(180.0, left - 150)))
    left = args.budget - (time.perf_counter() - start)
    if left >= 150:
        rep.section("6b. Benchmark", benchmark, bench, args.bench_steps, args.out + ".bench.md")
    else:
        rep.add("", "## 6b. Benchmark", "", f"skipped: {left:.0f} s of the {args.budget:.0f} s budget left")
    rep.add("", f"total {time.perf_counter() - start:.0f} s; failed sections: {rep.failures or 'none'}")
    rep.write()
    print(f"gpu_check: report written to {args.out}")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
