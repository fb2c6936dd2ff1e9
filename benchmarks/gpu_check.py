#!/usr/bin/env python
"""The GPU check: everything the CPU could not prove, in one command and one report file.

    python benchmarks/gpu_check.py --out $OUT/RESULTS_GPU.md        # on the lent GPU machine
    python benchmarks/gpu_check.py --out report.md --budget 600     # a longer run elsewhere

For a machine with one or more NVIDIA GPUs, CuPy (CUDA 12 or 13 build), PyTorch and no
network. Staged, most valuable first; each section runs in its own try with its own time cap
(a SIGALRM in this process, a subprocess timeout for the ones that run a command), and the
report is rewritten atomically after each one, so a run cut short, even by SIGKILL, leaves all
it found. A section that would start with less than its minimum left in ``--budget`` is listed
as skipped. The whole check, compiles included, is meant to fit in 6 minutes (``--budget 330``).

1. Device facts, ``cupy.show_config()``, and NVRTC: every ``kernels/cuda/*.cu`` built through
   ``cupy.RawModule`` and every kernel the wrappers launch fetched from it.
2. Every CUDA op class against the NumPy reference in float64 on random shapes, in float32,
   float16 and bfloat16 (if this CuPy has it); the fused SGD update; the TF32 switch.
3. NCCL: a one-rank communicator through ``NcclComm`` (the CuPy 14 unique id: bytes), its
   allreduce and broadcast; two ranks under ``mpiexec`` when there are two GPUs.
4. The peer-copy path on one GPU: ``device._peer_copy`` between two streams, ordered by events
   (a one-GPU machine never copies across towers otherwise).
5. AlexNet at batch 128: a few SGD steps on cuda:0 against the same steps on the CPU (same seed,
   same dropout masks).
6. The two-tower model on (cuda:0, cuda:0) and (cuda:0, cpu) against the single-device model.
7. The real trainer (``examples/train_imagenet.py``) on cuda:0, on ``--dummy`` and on the small
   built-in store: it runs, the loss falls, images/s and data time per step.
8. Speed against PyTorch + cuDNN (``bench_gpu.py``'s functions): float32, TF32 and float16 mixed
   precision, each mode in its own try and written as it is measured, then per-layer times.
9. The GPU tests (pytest), with what time is left.

Without CuPy or a GPU it stops at once, saying why (exit status 2). Exit status 1 when a section
failed, 0 otherwise.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.util
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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
    """The NumPy reference backend for a block."""
    import minitorch_alex as mt

    return mt.config.using(backend="reference")


class SectionTimeout(Exception):
    """A section ran past its cap (raised in it by SIGALRM)."""


@contextlib.contextmanager
def _alarm(seconds):
    """Raise SectionTimeout in this (main) thread after ``seconds``; nothing where no alarm can be set."""
    if not math.isfinite(seconds) or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SectionTimeout(f"stopped at its {seconds:g} s cap")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Report:
    """The report file, rewritten atomically after every section; the check's time budget.

    ``section(title, fn, *args, cap=s, need=s)`` runs ``fn(report, *args)`` for at most ``cap``
    seconds (and never past the budget), or skips it when less than ``need`` is left.
    ``report.seconds_left()`` inside a section: what its cap leaves (a subprocess's timeout)."""

    def __init__(self, path, budget=math.inf, clock=time.perf_counter):
        self.path, self.lines, self.failures, self.skipped = path, [], [], []
        self.budget, self.clock, self.began = budget, clock, clock()
        self._section_end = math.inf

    def add(self, *lines):
        self.lines.extend(lines)

    def budget_left(self):
        return self.budget - (self.clock() - self.began)

    def seconds_left(self):
        """Seconds until the running section's cap (or the budget's end)."""
        return min(self._section_end, self.began + self.budget) - self.clock()

    def section(self, title, fn, *args, cap=math.inf, need=0.0):
        left = self.budget_left()
        if left < need:
            self.skipped.append(title)
            self.add("", f"## {title}", "", f"_skipped: {max(left, 0):.0f} s of the {self.budget:.0f} s budget "
                     f"left, it needs {need:.0f} s_")
            self.write()
            print(f"gpu_check: {title}: skipped", flush=True)
            return
        cap = min(cap, left)
        start = self.clock()
        self._section_end = start + cap
        self.add("", f"## {title}", "")
        try:
            with _alarm(cap):
                fn(self, *args)
            status = "ok"
        except SectionTimeout as e:
            status = f"STOPPED ({e})"
            self.failures.append(title)
        except Exception:  # noqa: BLE001 (written into the report)
            status = "FAILED"
            self.failures.append(title)
            self.add("```", traceback.format_exc().rstrip(), "```")
        finally:
            self._section_end = math.inf
        self.add("", f"_{title}: {status} in {self.clock() - start:.1f} s (cap {cap:g} s)_")
        self.write()
        print(f"gpu_check: {title}: {status}", flush=True)

    def write(self):
        """The report so far, atomically: a reader (or a SIGKILL) never sees half a file."""
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".gpu_check.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("\n".join(self.lines) + "\n")
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# ----- 1. device facts and NVRTC ---------------------------------------------------------------------------
def show_config(rep, cp):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cp.show_config()
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    rep.add(f"GPU 0: {name}, compute capability {props['major']}.{props['minor']}, "
            f"{props['totalGlobalMem'] / 2**30:.0f} GiB", "", "```", buf.getvalue().rstrip(), "```")


def nvrtc_build(rep, cp):
    import minitorch_alex_kernels.cuda as kc

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


# ----- 2. every op against the reference -----------------------------------------------------------
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


def load_specs():
    """tests/op_specs.py: one declaration per op, the ops every check iterates (here: those with a
    CUDA form, ``dispatch.TABLE``), with their hypothesis cases and fixed examples."""
    tests = os.path.join(ROOT, "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import op_specs

    return op_specs


def _op_error(cp, kc, specs, spec, case, np_dtype, rng):
    """(forward, worst input gradient) relative errors of ``spec``'s CUDA class on ``case`` in
    ``np_dtype`` against the float64 reference on the same rounded values. A fused ReLU op is held
    to relu(unfused reference), differentiated where its own output is positive: a value rounded
    across zero flips the mask, which is not an error."""
    import numpy as np

    cast = specs.cast_arrays(spec, case, np_dtype)
    rounded = type(case)([a.astype(np.float64) for a in cast] + [None] * (len(case.arrays) - len(cast)), case.params)
    grad_of = specs.differentiable(spec, rounded)
    cls = getattr(kc, spec.op)
    impl = cls(tf32=False) if spec.op.startswith(("Conv", "Linear")) else cls()
    impl.needs_input_grad = (True,) * len(grad_of)
    on_device = [cp.asarray(a) for a in cast]
    y = impl.forward(*on_device, **spec.kernel_params(case.params))
    y_host = np.asarray(cp.asnumpy(y), np.float64)
    reference = specs.BY_NAME[spec.fused_relu_of] if spec.fused_relu_of else spec
    with reference_mode():
        ts = specs.tensors(rounded, np.float64, state=spec.state)
        y_ref = reference.run(ts, case.params)
        gy = rng.standard_normal(y_ref.shape)
        expected, gy_ref = y_ref.numpy(), gy.astype(np_dtype).astype(np.float64)
        if spec.fused_relu_of:
            expected, gy_ref = np.maximum(expected, 0), gy_ref * (y_host > 0)
        y_ref.backward(mt_tensor(gy_ref))
    grads = impl.backward(cp.asarray(gy.astype(np_dtype)))
    errors = [_err(cp.asnumpy(g), ts[i].grad.numpy()) for i, g in zip(grad_of, grads)]
    errors += [_err(cp.asnumpy(on_device[i]), ts[i].numpy()) for i in spec.state]  # state after the call
    return _err(y_host, expected), max(errors)


def mt_tensor(a, **kw):
    import minitorch_alex as mt

    return mt.tensor(a, **kw)


def _err(actual, expected):
    import numpy as np

    expected = np.asarray(expected, np.float64)
    return float(np.linalg.norm(np.asarray(actual, np.float64) - expected) / (np.linalg.norm(expected) + 1e-30))


def ops_vs_reference(rep, cp, seed=None, drawn=2):
    """Every op of tests/op_specs.py with a CUDA form, on its fixed examples and ``drawn`` cases
    of its hypothesis strategy (from ``seed``), in each dtype the GPU takes, against the float64
    reference on the CPU; then the fused SGD update and the mixed-precision unscale."""
    import numpy as np

    import minitorch_alex_kernels.cuda as kc

    specs = load_specs()
    seed = int(time.time()) % 10000 if seed is None else seed
    rng = np.random.default_rng(seed)
    rep.add(f"fixed examples and {drawn} drawn cases per op (seed {seed}); tolerance: ||error|| / ||reference|| <= {TOL}",
            "", "| op | dtype | shapes | forward | backward (worst input) |", "|---|---|---|---|---|")
    bad = []
    cases = {spec.name: list(spec.examples) + specs.draw(spec.cases, drawn, seed)
             for spec in specs.SPECS if specs.hot(spec)}
    for dtype in _dtypes(cp):
        np_dtype = np.dtype(dtype) if dtype != "bfloat16" else np.dtype(__import__("ml_dtypes").bfloat16)
        for spec in specs.SPECS:
            for case in cases.get(spec.name, ()):
                e_fwd, e_bwd = _op_error(cp, kc, specs, spec, case, np_dtype, rng)
                ok = max(e_fwd, e_bwd) <= TOL[dtype]
                bad += [] if ok else [f"{spec.name} {dtype}"]
                shapes = " ".join("x".join(map(str, a.shape)) for a in case.arrays if a is not None)
                rep.add(f"| {spec.name} | {dtype} | {shapes} | {e_fwd:.1e} | {e_bwd:.1e}{'' if ok else ' **FAIL**'} |")
    w, v, g = (rng.standard_normal(1000).astype(np.float32) for _ in range(3))
    dw, dv = cp.asarray(w.copy()), cp.asarray(v.copy())  # (copies: the update is in place)
    kc.sgd_momentum_update_(dw, dv, cp.asarray(g), 0.9, 5e-4, 0.01)
    v_ref = 0.9 * v - 5e-4 * 0.01 * w - 0.01 * g
    e = max(_err(cp.asnumpy(dv), v_ref), _err(cp.asnumpy(dw), w + v_ref))
    rep.add(f"| sgd update | float32 | 1000 | {e:.1e} | |")
    bad += [] if e <= TOL["float32"] else ["sgd"]
    g16 = (rng.standard_normal(1000) * 1000).astype(np.float16)
    found = cp.asarray(np.zeros(1, np.int32))
    e = _err(cp.asnumpy(kc.unscale(cp.asarray(g16), 1 / 1024, found)), g16.astype(np.float64) / 1024)
    g16[10] = np.inf
    kc.unscale(cp.asarray(g16), 1 / 1024, found)
    flagged = int(cp.asnumpy(found)[0]) == 1
    rep.add(f"| amp unscale (+ inf flag {'set' if flagged else '**not set**'}) | float16 | 1000 | {e:.1e} | |")
    bad += [] if e <= TOL["float32"] and flagged else ["amp unscale"]
    if bad:
        raise AssertionError(f"ops outside tolerance: {bad}")


def tf32_switch(rep, cp):
    import numpy as np
    from cupy._core import _routines_linalg as linalg

    import minitorch_alex_kernels.cuda as kc

    kc.set_tf32(True)
    on = linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32
    kc.set_tf32(False)
    off = linalg.get_compute_type(np.float32) != linalg.COMPUTE_TYPE_TF32
    rep.add(f"minitorch_alex_kernels.cuda.set_tf32 reaches CuPy's float32 compute type: on {on}, off {off}")
    if not (on and off):
        raise AssertionError("the TF32 switch did not reach CuPy")


# ----- 5. AlexNet steps, GPU vs CPU ----------------------------------------------------------------
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


def alexnet_vs_cpu(rep, cp, steps=2, batch=128):
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


# ----- 6. two towers -------------------------------------------------------------------------------
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


# ----- 3. NCCL ------------------------------------------------------------------------------------
class _OneRankWorld:
    """The MPI world of a single process, without mpi4py: rank 0 of 1."""
    rank, size, local_rank = 0, 1, 0

    def broadcast_(self, array, root=0):
        return array


def nccl_check(rep, cp):
    """A one-rank communicator through NcclComm (CuPy 14's bytes id), its allreduce and broadcast;
    with two GPUs, two ranks under mpiexec (tests/distributed/dist_scripts/nccl_two_ranks.py)."""
    import numpy as np

    import minitorch_alex.distributed as dist

    nccl = getattr(cp.cuda, "nccl", None) or importlib.import_module("cupy.cuda.nccl")
    comm = dist.NcclComm(_OneRankWorld(), device_id=0, cupy=cp, nccl=nccl)
    x = cp.arange(1000, dtype=cp.float32)
    comm.allreduce_(x)
    comm.broadcast_(x, 0)
    cp.cuda.get_current_stream().synchronize()
    ok = np.array_equal(cp.asnumpy(x), np.arange(1000, dtype=np.float32))
    rep.add(f"one rank on cuda:0: allreduce + broadcast of 1000 floats {'equal' if ok else '**differ**'}")
    if not ok:
        raise AssertionError("a one-rank NCCL allreduce changed the data")
    if cp.cuda.runtime.getDeviceCount() < 2:
        rep.add("two ranks: skipped, one GPU")
        return
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        raise AssertionError("two GPUs but no mpiexec on the PATH (pip install -e '.[dist]')")
    script = os.path.join(ROOT, "tests", "distributed", "dist_scripts", "nccl_two_ranks.py")
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, script], cwd=ROOT, capture_output=True, text=True,
                          timeout=max(rep.seconds_left() - 1, 1), env={**os.environ, "PYTHONPATH": ROOT})
    rep.add("two ranks (`mpiexec -n 2`):", "", "```", *(proc.stdout + proc.stderr).strip().splitlines()[-10:], "```")
    if proc.returncode != 0:
        raise AssertionError(f"two NCCL ranks exited with {proc.returncode}")


# ----- 4. the peer-copy path on one GPU -----------------------------------------------------------
def peer_copy(rep, cp):
    """``_peer_copy`` from one stream to another of cuda:0 (cudaMemcpyPeerAsync within a device is
    a device-to-device copy): the copy waits for the source stream's work, and later work on the
    source stream waits for the copy (it may reuse the memory)."""
    import numpy as np

    device_mod = importlib.import_module("minitorch_alex.device")  # (mt.device is the function)

    gpu = device_mod.Device("cuda:0")
    with cp.cuda.Device(0):
        src_stream, dst_stream = cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True)
        with src_stream:
            x = cp.zeros(1 << 24, cp.float32)
            for _ in range(20):  # ~1.3 GB of traffic queued on the source stream before the copy
                x += 1
        out = device_mod._peer_copy(cp, x, gpu, gpu, (src_stream, dst_stream))
        with src_stream:
            x[...] = -1  # after the copy's event: must not reach out
        dst_stream.synchronize()
        src_stream.synchronize()
    got = np.unique(cp.asnumpy(out))
    rep.add(f"16 M floats produced on one stream, copied on another: values {got.tolist()} (expected [20.0])")
    if got.tolist() != [20.0]:
        raise AssertionError("the peer copy did not wait for its producer, or was overwritten before it ran")


# ----- 7. the real trainer ---------------------------------------------------------------------------
def _train_cli(rep, out, *flags):
    """examples/train_imagenet.py on cuda:0 with ``flags``; (metrics rows, the data time per step)."""
    command = [sys.executable, os.path.join(ROOT, "examples", "train_imagenet.py"), "--device", "cuda:0",
               "--out", out, "--no-plots", "--no-progress", "--print-freq", "5", *flags]
    proc = subprocess.run(command, cwd=out, capture_output=True, text=True,
                          timeout=max(rep.seconds_left() / 2 - 1, 1), env={**os.environ, "PYTHONPATH": ROOT})
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    rep.add(f"`{' '.join(['train_imagenet.py', *command[3:]])}`", "", "```", *lines[-8:], "```")
    if proc.returncode != 0:
        raise AssertionError(f"train_imagenet.py exited with {proc.returncode}")
    rows = []
    for path in glob.glob(os.path.join(out, "**", "metrics.jsonl"), recursive=True):
        with open(path, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    data = [float(m) for m in re.findall(r"data ([0-9.]+) s", proc.stdout + proc.stderr)]
    return rows, (data[-1] if data else float("nan"))


def trainer_on_gpu(rep, cp):
    """The trainer as a user runs it on a GPU: --dummy (the step alone) and the built-in store (the
    input pipeline too, and a loss that falls over two short epochs)."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_train.") as tmp:
        os.makedirs(os.path.join(tmp, "dummy")), os.makedirs(os.path.join(tmp, "store"))
        rows, data = _train_cli(rep, os.path.join(tmp, "dummy"), "--dummy", "--epochs", "1", "--max-steps", "20")
        rate = rows[-1].get("images_per_s", float("nan")) if rows else float("nan")
        rep.add(f"--dummy: {rate:.0f} img/s over 20 steps of 128 (first steps included), data {data:.3f} s/step", "")
        rows, data = _train_cli(rep, os.path.join(tmp, "store"), "--data", "default", "--data-dir",
                                os.path.join(tmp, "data"), "--epochs", "2", "--max-steps", "12")
        losses = [r["train_loss"] for r in rows if "train_loss" in r]
        rate = rows[-1].get("images_per_s", float("nan")) if rows else float("nan")
        rep.add(f"built-in store: train loss per epoch {[round(v, 4) for v in losses]}, {rate:.0f} img/s, "
                f"data {data:.3f} s/step")
        if len(losses) < 2 or not losses[-1] < losses[0]:
            raise AssertionError("the training loss did not fall over two epochs on the built-in store")


# ----- 8. speed against PyTorch + cuDNN -------------------------------------------------------------
def speed(rep, cp, bench, steps):
    """Images/s per mode, each in its own try and written to the report as soon as it is measured;
    PyTorch's precision flags are set per mode by bench_gpu.torch_train (cuDNN's TF32 off in fp32,
    cudnn.benchmark on)."""
    args = bench.parse_args(["--steps", str(steps), "--warmup", "3"])
    rep.add(f"AlexNet (paper's two-group form), batch {args.batch}, {steps} timed steps after 3 warm-up; "
            "CUDA events around the timed steps (the stream's wall time)", "",
            "| mode | minitorch_alex img/s | PyTorch + cuDNN img/s | ratio |", "|---|---|---|---|")
    for ours_mode, torch_mode, label in (("fp32", "fp32", "float32"), ("tf32", "tf32", "TF32"),
                                         ("mixed", "amp", "float16 mixed precision")):
        ours = bench.attempt(f"minitorch_alex {ours_mode}", bench.ours_train, cp, args, ours_mode)
        rep.write()
        theirs = bench.attempt(f"PyTorch {torch_mode}", bench.torch_train, args, torch_mode)
        cells = [v if isinstance(v, str) else ("-" if v is None else f"{v:.1f}") for v in (ours, theirs)]
        ratio = f"{ours / theirs:.2f}x" if isinstance(ours, float) and isinstance(theirs, float) else "-"
        rep.add(f"| {label} | {cells[0]} | {cells[1]} | {ratio} |")
        rep.write()
    layers = bench.attempt("per-layer times", bench.ours_layers, cp, args)
    if isinstance(layers, list):
        rep.add("", "| layer (float32) | forward (ms) | backward (ms) |", "|---|---|---|",
                *[f"| {name} | {fwd:.3f} | {bwd:.3f} |" for name, fwd, bwd in layers])
    else:
        rep.add("", f"per-layer times: {layers}")


# ----- 9. the GPU tests ---------------------------------------------------------------------------
GPU_TEST_FILES = ["tests/gpu/test_gpu.py", "tests/distributed/test_distributed_nccl.py", "tests/gpu/test_gpu_augment.py",
                  "tests/models/test_two_tower.py", "tests/kernels/cuda/test_cuda_nvrtc.py", "tests/gpu/test_cupy_fakes.py"]


def gpu_tests(rep):
    # -o addopts=: one process, whatever pytest.ini asks (one GPU; the GPU machine may lack pytest-xdist)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", *GPU_TEST_FILES],
                          cwd=ROOT, capture_output=True, text=True, timeout=max(rep.seconds_left() - 1, 1),
                          env={**os.environ, "PYTHONPATH": ROOT})
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
    rep.add("`pytest -q " + " ".join(GPU_TEST_FILES) + "`", "", "```", *tail, "```")
    if proc.returncode != 0:
        raise AssertionError(f"pytest exited with {proc.returncode}")


def device_facts(rep, cp):
    show_config(rep, cp)
    rep.write()
    nvrtc_build(rep, cp)


def ops_and_tf32(rep, cp):
    ops_vs_reference(rep, cp)
    tf32_switch(rep, cp)


# (title, function, cap in seconds, seconds that must be left to start it); most valuable first.
# Measured caps are pending a GPU run; the sum of the expected times is ~4-5 minutes.
SECTIONS = [
    ("1. Device facts and NVRTC", device_facts, 60, 10),
    ("2. Every CUDA op against the reference", ops_and_tf32, 60, 10),
    ("3. NCCL", nccl_check, 40, 10),
    ("4. The peer-copy path on one GPU", peer_copy, 20, 5),
    ("5. AlexNet at batch 128: GPU vs CPU", alexnet_vs_cpu, 75, 30),
    ("6. Two towers on (cuda:0, cuda:0) and (cuda:0, cpu)", two_tower, 40, 15),
    ("7. The trainer on cuda:0", trainer_on_gpu, 90, 45),
    ("8. Speed against PyTorch + cuDNN", speed, 120, 60),
    ("9. The GPU tests", gpu_tests, 120, 30),
]


def default_out():
    """$OUT/RESULTS_GPU.md where the GPU machine's output folder is set, else None (--out required)."""
    out = os.environ.get("OUT")
    return os.path.join(out, "RESULTS_GPU.md") if out and os.path.isdir(out) else None


def main(argv=None, cupy=None, sections=None):
    """``cupy`` and ``sections`` are for the CPU dry run (tests/benchmarks/test_gpu_check.py): a fake CuPy and
    stand-ins for the sections."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = default_out()
    ap.add_argument("--out", default=default, required=default is None,
                    help="the report file (default: $OUT/RESULTS_GPU.md when $OUT is a folder)")
    ap.add_argument("--bench-steps", type=int, default=10, help="timed steps per benchmark mode (default 10)")
    ap.add_argument("--budget", type=float, default=330, help="seconds for the whole check (default 330: 5.5 min)")
    args = ap.parse_args(argv)
    if args.budget <= 0 or args.bench_steps < 1:
        ap.error(f"expected --budget > 0 and --bench-steps >= 1, got {args.budget} and {args.bench_steps}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        ap.error(f"--out: expected a file in an existing folder, got {args.out}")
    bench = load_bench()
    cp = cupy if cupy is not None else bench.require_gpu("gpu_check")  # exits (status 2) without CuPy or a GPU
    rep = Report(args.out, budget=args.budget)
    rep.add("# GPU check", "", f"`python benchmarks/gpu_check.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
            f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, budget {args.budget:.0f} s")
    rep.write()
    extra = {speed: (bench, args.bench_steps)}
    for title, fn, cap, need in sections if sections is not None else SECTIONS:
        rep.section(title, fn, *((cp,) if fn is not gpu_tests else ()), *extra.get(fn, ()), cap=cap, need=need)
    rep.add("", f"total {rep.clock() - rep.began:.0f} s; failed sections: {rep.failures or 'none'}; "
            f"skipped: {rep.skipped or 'none'}")
    rep.write()
    print(f"gpu_check: report written to {args.out}")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
