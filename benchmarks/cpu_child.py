"""The measuring child of ``bench_cpu.py``: one framework (or one PyTorch configuration), one task.

``bench_cpu.py --child '<task json>'`` runs ``run_child`` in a fresh process that imports only
its own framework, so the peak RSS it reports (``getrusage``) is that framework's alone. The
task says what to measure ("train", "eval", "layers" or "loader"), at which batch, how many
warm-up and timed repeats; for PyTorch it also carries the configuration (``torch_config``:
memory format, torch.compile; the allocator is set by the parent in this process's environment
before it starts, and reported back here as seen from inside, see ``allocator_in_use``).
The result is one line ``RESULT <json>`` on stdout.
"""
from __future__ import annotations

import json
import os
import resource
import time


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def enable_retained_memory(mt):
    """minitorch_alex's allocator setting for training, turned on explicitly, in this one place
    (importing the framework must change nothing process-wide): glibc never mmaps and never trims,
    so freed activations are reused by the next step (``kernels/cpu/memory.py``). True when it is
    in effect (False without the numba kernels: malloc is left alone)."""
    mt.config.set(retain_freed_memory=True)
    return mt.config.apply_retain_freed_memory()


def allocator_in_use():
    """The malloc this process really runs on: an LD_PRELOADed jemalloc or tcmalloc shows in its
    own memory map; otherwise glibc's, with the MALLOC_* tunables its environment gave it."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            maps = f.read()
    except OSError:
        maps = ""
    for name in ("jemalloc", "tcmalloc"):
        if f"lib{name}" in maps:
            return name
    tunables = [f"{k}={os.environ[k]}" for k in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_") if k in os.environ]
    return "glibc " + (", ".join(tunables) if tunables else "defaults")


class Side:
    """What both frameworks' sides share: the training step and the evaluation forward, written
    the way a user writes them, through each side's model(), batch(n) (images (n, 3, 224, 224),
    labels (n,)), net(model), sgd(params), loss(logits, y) and no_grad()."""

    def net(self, model):  # the module a step calls (PyTorch: maybe compiled)
        return model

    def train_step_fn(self, n):
        model = self.model()
        net, opt = self.net(model), self.sgd(model.parameters())
        x, y = self.batch(n)

        def step():
            opt.zero_grad()
            loss = self.loss(net(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        return step

    def eval_fn(self, n):
        model = self.model()
        model.eval()
        net = self.net(model)
        x, _ = self.batch(n)

        def forward():
            with self.no_grad():
                return net(x).numpy()

        return forward


class MinitorchSide(Side):
    """The framework under test, driven the way a user trains with it."""

    def __init__(self, num_classes):
        import numpy as np

        import minitorch_alex as mt
        import minitorch_alex.nn.functional as F

        self.np, self.mt, self.F, self.num_classes = np, mt, F, num_classes
        self.backend = str(mt.config.backend)
        self.retained = enable_retained_memory(mt)

    def model(self):
        self.mt.manual_seed(0)
        return self.mt.models.alexnet(num_classes=self.num_classes)

    def batch(self, n):
        rng = self.np.random.default_rng(0)
        x = self.mt.tensor(rng.standard_normal((n, 3, 224, 224), dtype=self.np.float32))
        return x, rng.integers(0, self.num_classes, n)

    def sgd(self, params):
        return self.mt.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)

    def loss(self, logits, y):
        return self.F.cross_entropy(logits, y)

    def no_grad(self):
        return self.mt.no_grad()

    def layers(self, n):
        """(name, make) pairs; make() returns (forward, backward, reset) closures for one layer."""
        np, mt, F = self.np, self.mt, self.F
        rng = np.random.default_rng(0)

        def tensor(shape, grad=True, scale=1.0):
            return mt.tensor((rng.standard_normal(shape) * scale).astype(np.float32), requires_grad=grad)

        def ones(y):
            return mt.tensor(np.ones(y.shape, np.float32))

        def conv(c, hw, o, k, s, p, g, grad_x=True):
            return lambda: _op_case([tensor((n, c, hw, hw), grad_x), tensor((o, c // g, k, k), scale=0.01),
                                     tensor((o,))], lambda x, w, b: F.conv2d(x, w, b, s, p, groups=g), ones)

        def lrn(c, hw):
            return lambda: _op_case([tensor((n, c, hw, hw))], lambda x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0, 2),
                                    ones)

        def pool(c, hw):
            return lambda: _op_case([tensor((n, c, hw, hw))], lambda x: F.max_pool2d(x, 3, 2), ones)

        def fc(i, o):
            return lambda: _op_case([tensor((n, i)), tensor((o, i), scale=0.01), tensor((o,))], F.linear, ones)

        def relu(c, hw):
            return lambda: _op_case([tensor((n, c, hw, hw))], F.relu, ones)

        def sgd():
            model = self.model()
            opt = self.sgd(model.parameters())
            for p in model.parameters():
                p.grad = mt.tensor(np.full(p.shape, 1e-3, np.float32))
            return opt.step, lambda: None, lambda: None

        return _layer_table(conv, lrn, pool, fc, relu, sgd, self.num_classes)


class TorchSide(Side):
    """PyTorch CPU running the same network, written the way a PyTorch user would, in one of the
    configurations of ``bench_cpu.TORCH_CONFIGS``: ``channels_last`` puts every 4-D tensor (images,
    activations, conv weights) in NHWC memory order; ``compile`` runs the model (or each layer's
    function) through ``torch.compile`` with static shapes; the optimizer step stays eager."""

    def __init__(self, num_classes, threads, config=None):
        import numpy as np
        import torch

        config = config or {}
        torch.set_num_threads(threads)
        self.np, self.torch, self.num_classes = np, torch, num_classes
        self.tf = torch.nn.functional
        self.channels_last = bool(config.get("channels_last"))
        self.compile = bool(config.get("compile"))
        self.compile_backend = config.get("compile_backend", "inductor")

    def _fmt(self, t):
        """``t`` in the configured memory format (only 4-D tensors have one)."""
        if self.channels_last and t.dim() == 4:
            return t.contiguous(memory_format=self.torch.channels_last)
        return t

    def _compiled(self, fn):
        if not self.compile:
            return fn
        return self.torch.compile(fn, backend=self.compile_backend, dynamic=False)

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
        model = AlexNet()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def batch(self, n):
        rng = self.np.random.default_rng(0)
        x = self.torch.from_numpy(rng.standard_normal((n, 3, 224, 224), dtype=self.np.float32))
        return self._fmt(x), self.torch.from_numpy(rng.integers(0, self.num_classes, n))

    def net(self, model):
        return self._compiled(model)

    def sgd(self, params):
        return self.torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)

    def loss(self, logits, y):
        return self.tf.cross_entropy(logits, y)

    def no_grad(self):
        return self.torch.no_grad()

    def layers(self, n):
        torch, tf, np = self.torch, self.tf, self.np
        rng = np.random.default_rng(0)
        compiled = self._compiled

        def tensor(shape, grad=True, scale=1.0):
            t = self._fmt(torch.tensor((rng.standard_normal(shape) * scale).astype(np.float32)))
            return t.requires_grad_(grad)

        def conv(c, hw, o, k, s, p, g, grad_x=True):
            return lambda: _op_case([tensor((n, c, hw, hw), grad_x), tensor((o, c // g, k, k), scale=0.01), tensor((o,))],
                                    compiled(lambda x, w, b: tf.conv2d(x, w, b, s, p, 1, g)), torch.ones_like)

        def lrn(c, hw):
            return lambda: _op_case([tensor((n, c, hw, hw))], compiled(self._lrn2), torch.ones_like)

        def pool(c, hw):
            return lambda: _op_case([tensor((n, c, hw, hw))], compiled(lambda x: tf.max_pool2d(x, 3, 2)), torch.ones_like)

        def fc(i, o):
            return lambda: _op_case([tensor((n, i)), tensor((o, i), scale=0.01), tensor((o,))], compiled(tf.linear),
                                    torch.ones_like)

        def relu(c, hw):
            return lambda: _op_case([tensor((n, c, hw, hw))], compiled(tf.relu), torch.ones_like)

        def sgd():
            model = self.model()
            opt = self.sgd(model.parameters())
            for p in model.parameters():
                p.grad = torch.full_like(p, 1e-3)
            return opt.step, lambda: None, lambda: None

        return _layer_table(conv, lrn, pool, fc, relu, sgd, self.num_classes)


def _op_case(inputs, fn, ones_like):
    """(forward, backward, reset) closures timing ``fn(*inputs)`` and its backward from ones."""
    state = {}

    def forward():
        state["y"] = fn(*inputs)
        if "gy" not in state:  # made once, outside the timed backward
            state["gy"] = ones_like(state["y"])

    def backward():
        state.pop("y").backward(state["gy"])

    def reset():
        for t in inputs:
            t.grad = None

    return forward, backward, reset


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
    """Measure ``task`` in this process and print ``RESULT <json>``. A configuration that uses
    torch.compile reports ``failed`` (the exception, one line) instead of raising: whether
    compilation works on this machine is itself a result."""
    kind, framework, n = task["kind"], task["framework"], task["batch"]
    warmup, repeats = task["warmup"], task["repeats"]
    config = task.get("torch_config") or {}
    result = {}
    try:
        _measure(task, kind, framework, n, warmup, repeats, config, result)
    except Exception as exc:  # noqa: BLE001  (reported, see the docstring)
        if not config.get("compile"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        result["failed"] = f"{type(exc).__name__}: {first}"[:300]
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


def _measure(task, kind, framework, n, warmup, repeats, config, result):
    t_import, side = _timed(lambda: MinitorchSide(task["classes"]) if framework == "minitorch_alex"
                            else TorchSide(task["classes"], task["threads"], config))
    result["import_s"] = t_import
    result["allocator"] = allocator_in_use()
    if framework == "minitorch_alex":
        result["backend"] = side.backend
        result["retain_freed_memory"] = side.retained
        if side.retained:  # set by mallopt from inside, not by the environment
            result["allocator"] = result["allocator"].replace(" defaults", "") + " mallopt(M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^31-1)"
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
    elif kind == "sgemm":
        result["sgemm_gflops"] = _measure_sgemm(max(3, repeats))
    else:
        raise ValueError(f"unknown task kind: expected train, eval, layers, loader or sgemm, got {kind!r}")


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


# (M, K, N) of GEMMs that bound the layers: the square reference; one of the 49 per-position
# GEMMs of an F(5x5, 3x3) chunk (32 images of 9 tiles at batch 128) of conv3 and of one tower of
# conv4 and conv5, as kernels/cpu/conv.py runs them (serially, one chunk per thread); fc6 at batch 128.
SGEMM_SHAPES = {"2048x2048x2048": (2048, 2048, 2048), "conv3 Winograd 384x256x288": (384, 256, 288),
                "conv4 Winograd 192x192x288": (192, 192, 288), "conv5 Winograd 128x192x288": (128, 192, 288),
                "fc6 forward 128x9216x4096": (128, 9216, 4096)}


def _measure_sgemm(repeats):
    """GFLOP/s of NumPy's float32 matmul (the BLAS, with the threads its environment gives it)
    on each of SGEMM_SHAPES, the best of ``repeats``."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for name, (m, k, n) in SGEMM_SHAPES.items():
        a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        np.matmul(a, b, out=c)
        best = min(_timed(lambda: np.matmul(a, b, out=c))[0] for _ in range(repeats))  # noqa: B023  (called here)
        out[name] = 2 * m * k * n / best / 1e9
    return out


def _measure_loader(task):
    """Images/s of minitorch_alex.data.StoreLoader (train augmentation, ``workers`` processes)
    reading a packed store made once from synthetic JPEGs."""
    try:
        from minitorch_alex.data import StoreLoader, open_store, prepare
    except ImportError as exc:  # the hook: the data package is missing
        return {"skipped": f"minitorch_alex.data has no loader ({exc})"}
    root = task["data_dir"]
    store_dir = os.path.join(root, f"store-{task['store_images']}")
    per_class = max(1, task["store_images"] // 10)
    prepare(os.path.join(root, f"src-{task['store_images']}"), store_dir, layout="synthetic", size=256,
            synthetic_options={"num_classes": 10, "train_per_class": per_class, "val_per_class": 1}, progress=False)
    store = open_store(store_dir)
    batches = task["loader_batches"]
    with StoreLoader(store.train, batch_size=task["batch"], train=True, workers=task["workers"], seed=0,
                    drop_last=True) as loader:
        times, seen, epoch = [], 0, 0
        t_last = time.perf_counter()
        while seen < batches + 1:
            loader.set_epoch(epoch)
            for _images, _ in loader:
                now = time.perf_counter()
                if seen > 0:  # the first batch includes starting the workers
                    times.append(now - t_last)
                t_last = now
                seen += 1
                if seen >= batches + 1:
                    break
            epoch += 1
    return {"times": times, "images_per_batch": task["batch"], "workers": task["workers"]}
