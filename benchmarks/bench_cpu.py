#!/usr/bin/env python
"""minitorch_alex against PyTorch on the CPU, side by side, on the paper's AlexNet.

    python benchmarks/bench_cpu.py            # the full run (about 11 minutes on 2 cores)
    python benchmarks/bench_cpu.py --quick    # a smoke run on tiny sizes (checks that it works)

Both frameworks run the same network (groups, LRN within each tower, dropout), the same batch
and the same number of threads (``--threads``, default: all cores): OMP/OpenBLAS/MKL/numba
threads are set in the environment of every measuring process, and torch.set_num_threads().

Every measurement runs in a fresh child process that imports only its own framework (so its
peak RSS, from ``getrusage``, is its own), and the two frameworks' children alternate:
round 1 runs minitorch_alex then PyTorch, round 2 the other way round, and so on, so a change in
machine load hits both. Times are medians over all rounds' repeats, after warm-up steps; the
first training step of each child (numba loading its cached kernels, PyTorch creating its oneDNN
primitives, first-touch page faults) is reported separately.

Measured: the full training step (forward, cross-entropy, backward, SGD update) at batch 16, 32
and 128; the evaluation forward pass; every layer's forward and backward (conv1-5, both LRNs,
the three max-pools, fc6-8, the SGD update); and the data loader's images/s from a packed store
(``minitorch_alex.data``). The table is printed and written with the machine, the BLAS, the
versions and the command to ``benchmarks/RESULTS.md`` (``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMEWORKS = ("minitorch_alex", "pytorch")

# what the issue asks for; each is checked in the table
TARGETS = {
    "train_speedup_b128": 2.5, "train_speedup_b128_floor": 2.0, "train_speedup_b32": 2.0,
    "conv_time_ratio": 0.8, "lrn_speedup": 5.0, "pool_speedup": 2.0, "loader_over_trainer": 5.0,
}
CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


# ================================================================================================
# The measuring child: one framework, one task.
# ================================================================================================
def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


class MinitorchSide:
    """The framework under test, driven the way a user trains with it."""

    def __init__(self, num_classes):
        import numpy as np

        import minitorch_alex as mt
        import minitorch_alex.nn.functional as F

        self.np, self.mt, self.F, self.num_classes = np, mt, F, num_classes
        mt.config.apply_retain_freed_memory()  # keep freed memory, as a training run (Trainer.fit) does
        self.backend = mt.backend.get_backend()

    def model(self):
        self.mt.manual_seed(0)
        return self.mt.models.alexnet(num_classes=self.num_classes)

    def batch(self, n):
        rng = self.np.random.default_rng(0)
        x = self.mt.tensor(rng.standard_normal((n, 3, 224, 224), dtype=self.np.float32))
        return x, rng.integers(0, self.num_classes, n)

    def train_step_fn(self, n):
        model = self.model()
        opt = self.mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x, y = self.batch(n)

        def step():
            opt.zero_grad()
            loss = self.F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        return step

    def eval_fn(self, n):
        model = self.model()
        model.eval()
        x, _ = self.batch(n)

        def forward():
            with self.mt.no_grad():
                return model(x).numpy()

        return forward

    def layers(self, n):
        """(name, make) pairs; make() returns (forward, backward, reset) closures for one layer."""
        np, mt, F = self.np, self.mt, self.F
        rng = np.random.default_rng(0)

        def tensor(shape, grad=True, scale=1.0):
            return mt.tensor((rng.standard_normal(shape) * scale).astype(np.float32), requires_grad=grad)

        def op_case(inputs, fn):
            state = {}

            def forward():
                state["y"] = fn(*inputs)
                if "gy" not in state:  # made once, outside the timed backward
                    state["gy"] = mt.tensor(np.ones(state["y"].shape, np.float32))

            def backward():
                state.pop("y").backward(state["gy"])

            def reset():
                for t in inputs:
                    t.grad = None

            return forward, backward, reset

        def conv(c, hw, o, k, s, p, g, grad_x=True):
            return lambda: op_case([tensor((n, c, hw, hw), grad_x), tensor((o, c // g, k, k), scale=0.01), tensor((o,))],
                                   lambda x, w, b: F.conv2d(x, w, b, s, p, g))

        def lrn(c, hw):
            return lambda: op_case([tensor((n, c, hw, hw))], lambda x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0, 2))

        def pool(c, hw):
            return lambda: op_case([tensor((n, c, hw, hw))], lambda x: F.max_pool2d(x, 3, 2))

        def fc(i, o):
            return lambda: op_case([tensor((n, i)), tensor((o, i), scale=0.01), tensor((o,))], F.linear)

        def relu(c, hw):
            return lambda: op_case([tensor((n, c, hw, hw))], F.relu)

        def sgd():
            model = self.model()
            opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            for p in model.parameters():
                p.grad = mt.tensor(np.full(p.shape, 1e-3, np.float32))
            return opt.step, lambda: None, lambda: None

        return _layer_table(conv, lrn, pool, fc, relu, sgd, self.num_classes)


class TorchSide:
    """PyTorch CPU running the same network, written the way a PyTorch user would."""

    def __init__(self, num_classes, threads):
        import numpy as np
        import torch

        torch.set_num_threads(threads)
        self.np, self.torch, self.num_classes = np, torch, num_classes
        self.tf = torch.nn.functional

    def _lrn2(self, x):  # the paper's LRN inside each tower; torch's alpha is ours times size
        return self.torch.cat([self.tf.local_response_norm(h, 5, alpha=5e-4, beta=0.75, k=2.0) for h in x.chunk(2, 1)], 1)

    def model(self):
        torch, tf, lrn2 = self.torch, self.tf, self._lrn2
        nn = torch.nn
        num_classes = self.num_classes

        class AlexNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(3, 96, 11, 4, 2), nn.Conv2d(96, 256, 5, 1, 2, groups=2)
                self.conv3, self.conv4 = nn.Conv2d(256, 384, 3, 1, 1), nn.Conv2d(384, 384, 3, 1, 1, groups=2)
                self.conv5 = nn.Conv2d(384, 256, 3, 1, 1, groups=2)
                self.fc6, self.fc7, self.fc8 = nn.Linear(9216, 4096), nn.Linear(4096, 4096), nn.Linear(4096, num_classes)

            def forward(self, x):
                x = tf.max_pool2d(lrn2(tf.relu(self.conv1(x))), 3, 2)
                x = tf.max_pool2d(lrn2(tf.relu(self.conv2(x))), 3, 2)
                x = tf.relu(self.conv4(tf.relu(self.conv3(x))))
                x = tf.max_pool2d(tf.relu(self.conv5(x)), 3, 2)
                x = tf.dropout(tf.relu(self.fc6(x.flatten(1))), 0.5, self.training)
                x = tf.dropout(tf.relu(self.fc7(x)), 0.5, self.training)
                return self.fc8(x)

        torch.manual_seed(0)
        return AlexNet()

    def batch(self, n):
        rng = self.np.random.default_rng(0)
        x = self.torch.from_numpy(rng.standard_normal((n, 3, 224, 224), dtype=self.np.float32))
        return x, self.torch.from_numpy(rng.integers(0, self.num_classes, n))

    def train_step_fn(self, n):
        model = self.model()
        opt = self.torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x, y = self.batch(n)

        def step():
            opt.zero_grad()
            loss = self.tf.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        return step

    def eval_fn(self, n):
        model = self.model()
        model.eval()
        x, _ = self.batch(n)

        def forward():
            with self.torch.no_grad():
                return model(x).numpy()

        return forward

    def layers(self, n):
        torch, tf, np = self.torch, self.tf, self.np
        rng = np.random.default_rng(0)

        def tensor(shape, grad=True, scale=1.0):
            return torch.tensor((rng.standard_normal(shape) * scale).astype(np.float32), requires_grad=grad)

        def op_case(inputs, fn):
            state = {}

            def forward():
                state["y"] = fn(*inputs)
                if "gy" not in state:  # made once, outside the timed backward
                    state["gy"] = torch.ones_like(state["y"])

            def backward():
                state.pop("y").backward(state["gy"])

            def reset():
                for t in inputs:
                    t.grad = None

            return forward, backward, reset

        def conv(c, hw, o, k, s, p, g, grad_x=True):
            return lambda: op_case([tensor((n, c, hw, hw), grad_x), tensor((o, c // g, k, k), scale=0.01), tensor((o,))],
                                   lambda x, w, b: tf.conv2d(x, w, b, s, p, 1, g))

        def lrn(c, hw):
            return lambda: op_case([tensor((n, c, hw, hw))], self._lrn2)

        def pool(c, hw):
            return lambda: op_case([tensor((n, c, hw, hw))], lambda x: tf.max_pool2d(x, 3, 2))

        def fc(i, o):
            return lambda: op_case([tensor((n, i)), tensor((o, i), scale=0.01), tensor((o,))], tf.linear)

        def relu(c, hw):
            return lambda: op_case([tensor((n, c, hw, hw))], tf.relu)

        def sgd():
            model = self.model()
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            for p in model.parameters():
                p.grad = torch.full_like(p, 1e-3)
            return opt.step, lambda: None, lambda: None

        return _layer_table(conv, lrn, pool, fc, relu, sgd, self.num_classes)


def _layer_table(conv, lrn, pool, fc, relu, sgd, num_classes):
    """AlexNet's layers at their training shapes, in network order (the same for both sides)."""
    return [
        ("conv1", conv(3, 224, 96, 11, 4, 2, 1, grad_x=False)),  # the images need no gradient
        ("relu1", relu(96, 55)),
        ("lrn1", lrn(96, 55)),
        ("pool1", pool(96, 55)),
        ("conv2", conv(96, 27, 256, 5, 1, 2, 2)),
        ("lrn2", lrn(256, 27)),
        ("pool2", pool(256, 27)),
        ("conv3", conv(256, 13, 384, 3, 1, 1, 1)),
        ("conv4", conv(384, 13, 384, 3, 1, 1, 2)),
        ("conv5", conv(384, 13, 256, 3, 1, 1, 2)),
        ("pool5", pool(256, 13)),
        ("fc6", fc(9216, 4096)),
        ("fc7", fc(4096, 4096)),
        ("fc8", fc(4096, num_classes)),
        ("sgd update", sgd),
    ]


def run_child(task):
    kind, framework, n = task["kind"], task["framework"], task["batch"]
    warmup, repeats = task["warmup"], task["repeats"]
    t_import, side = _timed(lambda: MinitorchSide(task["classes"]) if framework == "minitorch_alex"
                            else TorchSide(task["classes"], task["threads"]))
    result = {"import_s": t_import}
    if framework == "minitorch_alex":
        result["backend"] = side.backend
    if kind in ("train", "eval"):
        fn = side.train_step_fn(n) if kind == "train" else side.eval_fn(n)
        result["first_s"], _ = _timed(fn)
        for _ in range(warmup):
            fn()
        result["times"] = [_timed(fn)[0] for _ in range(repeats)]
    elif kind == "layers":
        result["layers"] = {}
        for name, make in side.layers(n):
            forward, backward, reset = make()
            fwd, bwd = [], []
            for i in range(warmup + repeats):
                tf_, _ = _timed(forward)
                tb, _ = _timed(backward)
                reset()
                if i >= warmup:
                    fwd.append(tf_)
                    bwd.append(tb)
            result["layers"][name] = {"fwd": fwd, "bwd": bwd}
            del forward, backward, reset
        if framework == "minitorch_alex":
            result["gemm"] = _gemm_floor(n, repeats)
    elif kind == "loader":
        result.update(_measure_loader(task))
    else:
        raise ValueError(f"unknown task kind {kind!r}")
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


# (name, C, H, O, k, stride, padding, groups) of AlexNet's convolutions
CONV_SHAPES = (("conv1", 3, 224, 96, 11, 4, 2, 1), ("conv2", 96, 27, 256, 5, 1, 2, 2),
               ("conv3", 256, 13, 384, 3, 1, 1, 1), ("conv4", 384, 13, 384, 3, 1, 1, 2),
               ("conv5", 384, 13, 256, 3, 1, 1, 2))


def _gemm_floor(n, repeats):
    """What plain BLAS can do here, for the profile under the layer table: NumPy's sgemm at
    2048^3, and for each convolution the time of the three GEMMs of an im2col convolution of the
    whole batch (forward, weight gradient, and input gradient except for conv1), timed on a
    chunk of up to 8 images with the BLAS's own threads and scaled to the batch. Also the
    direct-convolution FLOPs of each layer's forward + backward."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    b, c = a.copy(), np.empty_like(a)
    np.matmul(a, b, out=c)
    t = min(_timed(lambda: np.matmul(a, b, out=c))[0] for _ in range(max(3, repeats)))
    out["sgemm_2048_gflops"] = 2 * 2048**3 / t / 1e9
    for name, ch, hw, o, k, st, pad, g in CONV_SHAPES:
        oh = (hw + 2 * pad - k) // st + 1
        p, kg, og = oh * oh, ch // g * k * k, o // g
        nb = min(n, 8)
        w = rng.standard_normal((og, kg), dtype=np.float32)
        col = rng.standard_normal((kg, nb * p), dtype=np.float32)
        rows = rng.standard_normal((og, nb * p), dtype=np.float32)
        gw, gcol = np.empty((og, kg), np.float32), np.empty((kg, nb * p), np.float32)
        products = [lambda: np.matmul(w, col, out=rows), lambda: np.matmul(rows, col.T, out=gw)]
        if name != "conv1":  # the images need no gradient
            products.append(lambda: np.matmul(w.T, rows, out=gcol))
        for f in products:
            f()
        t = sum(min(_timed(f)[0] for _ in range(max(2, repeats))) for f in products)
        macs = n * o * kg * p  # one product, all groups, whole batch
        out[name] = {"gemm_s": t * g * n / nb, "flops": 2 * macs * len(products)}
    return out


def _measure_loader(task):
    """Images/s of minitorch_alex.data.DataLoader (train augmentation, ``workers`` processes)
    reading a packed store made once from synthetic JPEGs."""
    try:
        from minitorch_alex.data import DataLoader, open_store, prepare
    except ImportError as exc:  # the hook: the data package is missing
        return {"skipped": f"minitorch_alex.data has no loader ({exc})"}
    root = task["data_dir"]
    store_dir = os.path.join(root, f"store-{task['store_images']}")
    per_class = max(1, task["store_images"] // 10)
    prepare(os.path.join(root, f"src-{task['store_images']}"), store_dir, layout="synthetic", size=256,
            synthetic_options={"num_classes": 10, "train_per_class": per_class, "val_per_class": 1}, progress=False)
    store = open_store(store_dir)
    batches = task["loader_batches"]
    with DataLoader(store.train, batch_size=task["batch"], train=True, workers=task["workers"], seed=0,
                    drop_last=True) as loader:
        times, seen, epoch = [], 0, 0
        t_last = time.perf_counter()
        while seen < batches + 1:
            loader.set_epoch(epoch)
            for images, _ in loader:
                now = time.perf_counter()
                if seen > 0:  # the first batch includes starting the workers
                    times.append(now - t_last)
                t_last = now
                seen += 1
                if seen >= batches + 1:
                    break
            epoch += 1
    return {"times": times, "images_per_batch": task["batch"], "workers": task["workers"]}


# ================================================================================================
# The parent: plan, alternate, aggregate, report.
# ================================================================================================
def child_env(threads, extra=None):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "MINITORCH_ALEX_NUM_THREADS"):
        env[var] = str(threads)
    env.update(extra or {})
    return env


def run_task(task, threads, env_extra=None, timeout=3600):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(task)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=child_env(threads, env_extra), capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child failed ({task}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["child_wall_s"] = wall
    return result


def machine_info(threads):
    import numpy as np

    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count(),
            "threads": threads, "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.processor())
    except OSError:
        info["cpu"] = platform.processor()
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')} ({blas.get('openblas configuration', '').strip()})"
    except Exception:  # older numpy
        info["blas"] = "unknown"
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            info["blas_runtime"] = ", ".join(f"{p['internal_api']} {p['version']} {p.get('architecture', '')} "
                                             f"{p['num_threads']} threads" for p in pools)
    except ImportError:
        info["blas_runtime"] = "threadpoolctl not installed"
    for mod in ("numba", "torch"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = "not installed"
    try:
        head = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", HERE, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True)
        info["commit"] = (head.stdout.strip() or "unknown") + (" + uncommitted changes" if dirty.stdout.strip() else "")
    except OSError:
        info["commit"] = "unknown"
    return info


def cpu_snapshot():
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its finished
    children, wall time): the difference of two snapshots says how much of the machine other
    processes used in between."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        busy = float("nan")
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    return busy, own, time.perf_counter()


def others_share(start, end):
    """Fraction of all cores that other processes kept busy between two cpu_snapshot()s."""
    busy, own, wall = (b - a for a, b in zip(start, end))
    return max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))


def plan(args):
    """The list of (label, task) to run for each framework."""
    base = {"threads": args.threads, "classes": args.classes}
    tasks = []
    for n in args.batches:
        tasks.append((f"train b{n}", dict(base, kind="train", batch=n, warmup=args.warmup, repeats=args.repeats)))
    tasks.append((f"eval b{args.eval_batch}", dict(base, kind="eval", batch=args.eval_batch, warmup=args.warmup,
                                                   repeats=args.repeats)))
    tasks.append((f"layers b{args.layer_batch}", dict(base, kind="layers", batch=args.layer_batch,
                                                      warmup=max(1, args.warmup), repeats=args.layer_repeats)))
    return tasks


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run: batch 2, one repeat, 10 classes")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both frameworks")
    parser.add_argument("--batches", type=lambda s: [int(v) for v in s.split(",")], default=[16, 32, 128])
    parser.add_argument("--eval-batch", type=int, default=128)
    parser.add_argument("--layer-batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per measurement")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps per child")
    parser.add_argument("--layer-repeats", type=int, default=5)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--loader-workers", type=int, default=1)
    parser.add_argument("--loader-batches", type=int, default=8)
    parser.add_argument("--no-torch", action="store_true", help="measure minitorch_alex only")
    parser.add_argument("--no-loader", action="store_true")
    parser.add_argument("--no-cold", action="store_true", help="skip the first step with an empty numba cache")
    parser.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(json.loads(args.child))
        return None
    if args.quick:
        args.batches, args.eval_batch, args.layer_batch = [2], 2, 2
        args.rounds, args.warmup, args.repeats, args.layer_repeats = 1, 0, 1, 1
        args.classes, args.loader_batches = 10, 2
        args.no_cold = True
    frameworks = ["minitorch_alex"] if args.no_torch else list(FRAMEWORKS)
    if "pytorch" in frameworks:
        try:
            import torch  # noqa: F401  (only checks it is there; children import it)
        except ImportError:
            print("PyTorch is not installed: measuring minitorch_alex only")
            frameworks = ["minitorch_alex"]

    command = "python benchmarks/bench_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = machine_info(args.threads)
    started, snapshot = time.strftime("%Y-%m-%d %H:%M:%S"), cpu_snapshot()
    print(f"{machine['cpu']}, {machine['cores']} cores, {args.threads} threads; BLAS {machine['blas']}", flush=True)

    raw = {}  # label -> framework -> list of child results
    for label, task in plan(args):
        for r in range(args.rounds):
            order = frameworks if r % 2 == 0 else frameworks[::-1]
            for fw in order:
                res = run_task(dict(task, framework=fw), args.threads)
                raw.setdefault(label, {}).setdefault(fw, []).append(res)
                print(f"  {label:14s} {fw:15s} round {r + 1}: {_brief(res)}", flush=True)

    extras = {}
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as cache:
            task = dict(kind="train", batch=min(args.batches), warmup=0, repeats=0, threads=args.threads,
                        classes=args.classes, framework="minitorch_alex")
            extras["cold"] = run_task(task, args.threads, {"NUMBA_CACHE_DIR": cache})
            print(f"  cold numba cache: first step {extras['cold']['first_s']:.1f} s", flush=True)
    if not args.no_loader:
        with tempfile.TemporaryDirectory() as data_dir:
            task = dict(kind="loader", batch=max(args.batches), threads=args.threads, classes=args.classes,
                        framework="minitorch_alex", warmup=0, repeats=0, workers=args.loader_workers,
                        loader_batches=args.loader_batches, data_dir=data_dir,
                        store_images=40 if args.quick else 1000)
            extras["loader"] = run_task(task, args.threads)
            print(f"  loader: {_brief(extras['loader'])}", flush=True)

    report = build_report(args, machine, command, started, others_share(snapshot, cpu_snapshot()), raw, extras,
                          frameworks)
    print(report)
    write_keeping_other_sections(args.out, report)
    print(f"written to {args.out}")
    return raw


TRAINING_RUNS = "\n## Training runs\n"  # a section of RESULTS.md written by hand from other commands


def write_keeping_other_sections(path, report):
    """Write ``report`` to ``path``, keeping the file's 'Training runs' section (if any) after it."""
    kept = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
        if TRAINING_RUNS in old:
            kept = old[old.index(TRAINING_RUNS):]
    with open(path, "w", encoding="utf-8") as f:
        f.write(report.rstrip("\n") + "\n" + kept)


def _brief(res):
    if "times" in res and res["times"]:
        return f"median {median(res['times']):.3f} s, first {res.get('first_s', float('nan')):.2f} s, peak RSS {res['peak_rss_mb']:.0f} MB"
    if "layers" in res:
        return ", ".join(f"{k} {1e3 * (median(v['fwd']) + median(v['bwd'])):.0f}" for k, v in res["layers"].items()) + " ms"
    return json.dumps(res)[:200]


# ----- the report ---------------------------------------------------------------------------------
def _pool(results, key="times"):
    return [t for r in results for t in r.get(key, [])]


def build_report(args, machine, command, started, others, raw, extras, frameworks):
    both = len(frameworks) == 2
    mt_name, pt_name = "minitorch_alex", "pytorch"
    lines = ["# CPU benchmark: minitorch_alex vs PyTorch, AlexNet (paper version: groups, LRN, dropout)", ""]
    lines += [f"Command: `{command.strip()}`", "",
              f"Started {started}. Other processes kept {others:.0%} of the machine's cores busy during the run "
              "(they slow both columns; the frameworks alternate, so the ratios suffer less).", "",
              "| machine | |", "|---|---|"]
    for key in ("cpu", "cores", "threads", "blas", "blas_runtime", "platform", "python", "numpy", "numba", "torch", "commit"):
        lines.append(f"| {key} | {machine.get(key, '')} |")
    backend = next((r.get("backend") for v in raw.values() for r in v.get(mt_name, []) if r.get("backend")), "?")
    lines += ["", f"minitorch_alex backend: `{backend}`. Times are medians over {args.rounds} alternating rounds x "
              f"repeats after {args.warmup} warm-up step(s); each measurement in its own process.", ""]

    checks = []
    # training and eval
    lines += ["## Whole network", "",
              "| measurement | minitorch_alex | PyTorch | speedup | first step (mt / torch) | peak RSS MB (mt / torch) |",
              "|---|---|---|---|---|---|"]
    trainer_ips = {}
    for label, per_fw in raw.items():
        if label.startswith("layers"):
            continue
        n = int(label.split("b")[-1])
        row = [label]
        ips = {}
        for fw in (mt_name, pt_name):
            res = per_fw.get(fw, [])
            t = median(_pool(res))
            ips[fw] = n / t if res else float("nan")
            row.append(f"{ips[fw]:.1f} img/s ({t * 1e3:.0f} ms)" if res else "-")
        speedup = ips[mt_name] / ips[pt_name] if both else float("nan")
        row.append(f"{speedup:.2f}x" if both else "-")
        firsts = [median([r["first_s"] for r in per_fw.get(fw, [])]) if per_fw.get(fw) else float("nan") for fw in (mt_name, pt_name)]
        rss = [max([r["peak_rss_mb"] for r in per_fw.get(fw, [])], default=float("nan")) for fw in (mt_name, pt_name)]
        row.append(f"{firsts[0]:.2f} s / {firsts[1]:.2f} s")
        row.append(f"{rss[0]:.0f} / {rss[1]:.0f}")
        lines.append("| " + " | ".join(row) + " |")
        if label.startswith("train"):
            trainer_ips[n] = ips[mt_name]
            if both:
                if n == 128:
                    checks.append((f"training step, batch 128: >= {TARGETS['train_speedup_b128']}x PyTorch's images/s "
                                   f"(floor {TARGETS['train_speedup_b128_floor']}x)", f"{speedup:.2f}x",
                                   "met" if speedup >= TARGETS["train_speedup_b128"] else
                                   ("floor met" if speedup >= TARGETS["train_speedup_b128_floor"] else "NOT met")))
                if n == 32:
                    checks.append((f"training step, batch 32: >= {TARGETS['train_speedup_b32']}x", f"{speedup:.2f}x",
                                   _verdict(speedup >= TARGETS["train_speedup_b32"])))
                checks.append((f"peak RSS of a training step, batch {n}: no higher than PyTorch's",
                               f"{rss[0]:.0f} MB vs {rss[1]:.0f} MB", _verdict(rss[0] <= rss[1])))
    if "cold" in extras:
        lines += ["", f"First training step with an *empty* numba cache (compiling every kernel; once per machine, "
                      f"then cached next to the source): {extras['cold']['first_s']:.1f} s at batch {min(args.batches)}."]

    # layers
    layer_label = next((k for k in raw if k.startswith("layers")), None)
    if layer_label:
        lines += ["", f"## Layers, forward + backward, batch {args.layer_batch} (ms)", "",
                  "| layer | mt fwd | mt bwd | torch fwd | torch bwd | mt / torch time | speedup |", "|---|---|---|---|---|---|---|"]
        per_fw = raw[layer_label]
        names = list(per_fw[mt_name][0]["layers"]) if per_fw.get(mt_name) else []
        for name in names:
            cells, totals = [name], {}
            for fw in (mt_name, pt_name):
                res = per_fw.get(fw, [])
                fwd = median([t for r in res for t in r["layers"][name]["fwd"]])
                bwd = median([t for r in res for t in r["layers"][name]["bwd"]])
                totals[fw] = fwd + bwd
                cells += [f"{fwd * 1e3:.1f}", f"{bwd * 1e3:.1f}"] if res else ["-", "-"]
            ratio = totals[mt_name] / totals[pt_name] if both else float("nan")
            cells += [f"{ratio:.2f}", f"{1 / ratio:.2f}x"] if both else ["-", "-"]
            lines.append("| " + " | ".join(cells) + " |")
            if not both:
                continue
            if name in CONV_LAYERS:
                checks.append((f"{name} forward+backward <= {TARGETS['conv_time_ratio']}x PyTorch's time", f"{ratio:.2f}x",
                               _verdict(ratio <= TARGETS["conv_time_ratio"])))
            elif name.startswith("lrn"):
                checks.append((f"{name} >= {TARGETS['lrn_speedup']}x faster", f"{1 / ratio:.1f}x", _verdict(1 / ratio >= TARGETS["lrn_speedup"])))
            elif name.startswith("pool"):
                checks.append((f"{name} >= {TARGETS['pool_speedup']}x faster", f"{1 / ratio:.1f}x", _verdict(1 / ratio >= TARGETS["pool_speedup"])))
        lines += _conv_profile(per_fw, mt_name, pt_name, both)

    # loader
    if "loader" in extras:
        res = extras["loader"]
        lines += ["", "## Data loader", ""]
        if "skipped" in res:
            lines.append(f"Not measured: {res['skipped']} (hook: `_measure_loader` in this file).")
        else:
            ips = res["images_per_batch"] / median(res["times"])
            n = max(trainer_ips) if trainer_ips else None
            lines.append(f"`minitorch_alex.data.DataLoader`, {res['workers']} worker(s), training augmentation, batch "
                         f"{res['images_per_batch']}, from a packed store of synthetic 256x256 images: **{ips:.0f} images/s**"
                         + (f" = {ips / trainer_ips[n]:.1f}x the trainer's {trainer_ips[n]:.1f} img/s at batch {n}." if n else "."))
            if n:
                checks.append((f"data loader (1 worker) >= {TARGETS['loader_over_trainer']}x the trainer's images/s",
                               f"{ips / trainer_ips[n]:.1f}x", _verdict(ips / trainer_ips[n] >= TARGETS["loader_over_trainer"])))
    if checks:
        lines += ["", "## Targets (issue #4)", "", "| target | measured | |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in checks]
    lines.append("")
    return "\n".join(lines)


def _conv_profile(per_fw, mt_name, pt_name, both):
    """The convolution layers against what plain GEMMs can do on this machine (see _gemm_floor)."""
    gemm = next((r["gemm"] for r in per_fw.get(mt_name, []) if "gemm" in r), None)
    if not gemm:
        return []
    lines = ["", "### Convolutions against the GEMM floor", "",
             f"NumPy's sgemm (OpenBLAS) reaches {gemm['sgemm_2048_gflops']:.0f} GFLOP/s at 2048^3 here. "
             "'im2col GEMMs' is the time of the forward, weight-gradient and input-gradient GEMMs alone "
             "(conv1: no input gradient) of a direct im2col convolution of the batch; GFLOP/s count "
             "direct-convolution FLOPs, so layers computed with fewer multiply-adds can exceed the GEMM rate: "
             "conv1 as a 3x3 convolution of its polyphase components by Winograd's F(4x4, 3x3) (0.31x), "
             "conv2 in the frequency domain (0.10x), conv3-5 by F(4x4, 3x3) (0.38x).", "",
             "| layer | direct GFLOP | im2col GEMMs alone (ms) | mt total (ms) | mt GFLOP/s | torch total (ms) | torch GFLOP/s |"
             " torch time / GEMMs alone |", "|---|---|---|---|---|---|---|---|"]
    for name in CONV_LAYERS:
        if name not in gemm:
            continue
        g = gemm[name]
        tot = {}
        for fw in (mt_name, pt_name):
            res = per_fw.get(fw, [])
            tot[fw] = (median([t for r in res for t in r["layers"][name]["fwd"]])
                       + median([t for r in res for t in r["layers"][name]["bwd"]])) if res else float("nan")
        gf = g["flops"] / 1e9
        row = [name, f"{gf:.1f}", f"{g['gemm_s'] * 1e3:.0f}", f"{tot[mt_name] * 1e3:.0f}", f"{gf / tot[mt_name]:.0f}"]
        row += ([f"{tot[pt_name] * 1e3:.0f}", f"{gf / tot[pt_name]:.0f}", f"{tot[pt_name] / g['gemm_s']:.2f}"] if both
                else ["-", "-", "-"])
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _verdict(ok):
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    main()
