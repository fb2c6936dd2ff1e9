#!/usr/bin/env python
"""minitorch_alex against PyTorch at its best on the CPU, side by side, on the paper's AlexNet.

    python benchmarks/bench_cpu.py --rounds 5   # the full run (about 75 minutes on 2 cores)
    python benchmarks/bench_cpu.py --quick      # a smoke run on tiny sizes (checks that it works)

Both frameworks run the same network (groups, LRN within each tower, dropout), the same batch
and the same number of threads (``--threads``, default: all cores): OMP/OpenBLAS/MKL/numba
threads are set in the environment of every measuring process, and torch.set_num_threads().

PyTorch runs in several configurations, each a column of every table (``TORCH_CONFIGS``;
``--torch-configs`` picks some): its default; glibc malloc tuned exactly as minitorch_alex
tunes its own (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647`` in its environment: no
mmap, no trim, as ``retain_freed_memory()`` sets with mallopt); that plus ``channels_last``;
jemalloc or tcmalloc through LD_PRELOAD with ``channels_last``, where the machine has the
library (found, never installed: the Debian packages libjemalloc2 and libtcmalloc-minimal4 put
them in /usr/lib/<arch>/; each child reports which allocator it really ran on); and
``torch.compile`` on top of the tuned allocator and ``channels_last``. Every ratio is computed
against the fastest configuration of each row, with the default's beside it; the targets are
checked against the fastest.

Every measurement runs in a fresh child process that imports only its own framework (so its
peak RSS, from ``getrusage``, is its own; every PyTorch configuration keeps its own peak), and
the children alternate: round 1 runs minitorch_alex then each PyTorch configuration, round 2
the other way round, and so on, so a change in machine load hits all. Times are medians over
all rounds' repeats, after warm-up steps; the first training step of each child (numba loading
its cached kernels, PyTorch creating its oneDNN primitives or compiling, first-touch page
faults) is reported separately.

Measured: the full training step (forward, cross-entropy, backward, SGD update) at batch 16, 32
and 128; the evaluation forward pass at batch 128; every layer's forward and backward (conv1-5,
both LRNs, the three max-pools, fc6-8, the SGD update); and the data loader's images/s from a
packed store (``minitorch_alex.data``). The tables are printed and written with the machine, the
BLAS, the versions and the command to ``benchmarks/RESULTS.md`` (``--out``). The measuring child
is ``cpu_child.py``, the tables ``cpu_report.py``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # the sibling modules, also when this file is imported (tests)

from cpu_child import run_child  # noqa: E402
from cpu_report import MT, brief, build_report  # noqa: E402

# glibc malloc as minitorch_alex's retain_freed_memory() sets it, through glibc's environment tunables
GLIBC_TUNED = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "2147483647"}
# jemalloc as PyTorch's CPU performance tuning guide recommends it
JEMALLOC_CONF = ("oversize_threshold:1,background_thread:true,metadata_thp:auto,"
                 "dirty_decay_ms:9000000000,muzzy_decay_ms:9000000000")
ALLOCATOR_LIBS = {"jemalloc": ("libjemalloc.so.2", "libjemalloc.so"),
                  "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libtcmalloc_minimal.so", "libtcmalloc.so")}
# PyTorch's configurations: name -> (allocator, channels_last, torch.compile)
TORCH_CONFIGS = {
    "default": ("glibc", False, False),
    "tuned": ("glibc-tuned", False, False),
    "tuned+CL": ("glibc-tuned", True, False),
    "jemalloc+CL": ("jemalloc", True, False),
    "tcmalloc+CL": ("tcmalloc", True, False),
    "tuned+CL+compile": ("glibc-tuned", True, True),
}
# inherited settings that would change a child's allocator: every child starts without them
ALLOCATOR_ENV = ("LD_PRELOAD", "MALLOC_CONF", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX",
                 "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES", "TCMALLOC_RELEASE_RATE")


def find_allocator(name):
    """Path of the shared library of allocator ``name`` ('jemalloc' or 'tcmalloc') on this
    machine, or None: the Python environment's lib/ (conda), then the system's library folders."""
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    folders = [os.path.join(sys.prefix, "lib"), f"/usr/lib/{arch}", f"/lib/{arch}", "/usr/lib64", "/usr/lib",
               "/usr/local/lib"]
    for folder in folders:
        for lib in ALLOCATOR_LIBS[name]:
            hits = sorted(glob.glob(os.path.join(folder, lib)))
            if hits and os.path.isfile(hits[0]):
                return hits[0]
    return None


def torch_configurations(names, compile_backend="inductor"):
    """(participant -> configuration, name -> why not measured) for the TORCH_CONFIGS ``names``;
    a configuration whose allocator library is not on this machine is left out, saying so."""
    configs, unavailable = {}, {}
    for name in names:
        allocator, channels_last, compile_ = TORCH_CONFIGS[name]
        env = {}
        if allocator == "glibc-tuned":
            env = dict(GLIBC_TUNED)
        elif allocator in ALLOCATOR_LIBS:
            path = find_allocator(allocator)
            if path is None:
                unavailable[name] = (f"no {allocator} library found ({', '.join(ALLOCATOR_LIBS[allocator])}; "
                                     f"Debian: apt-get install {'libjemalloc2' if allocator == 'jemalloc' else 'libtcmalloc-minimal4'})")
                continue
            env = {"LD_PRELOAD": path}
            if allocator == "jemalloc":
                env["MALLOC_CONF"] = JEMALLOC_CONF
            else:  # silence tcmalloc's "large alloc" lines on stderr
                env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"] = str(1 << 40)
        configs["torch:" + name] = {"allocator": allocator, "channels_last": channels_last, "compile": compile_,
                                    "compile_backend": compile_backend, "env": env}
    return configs, unavailable


def parse_torch_configs(text):
    """'all' or a comma list of TORCH_CONFIGS names -> the list of names."""
    if text.strip() == "all":
        return list(TORCH_CONFIGS)
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in TORCH_CONFIGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"--torch-configs: expected 'all' or names from {', '.join(TORCH_CONFIGS)}, "
                                         f"got {text!r}")
    return names


# ================================================================================================
# The parent: plan, alternate, aggregate, report.
# ================================================================================================
def child_env(threads, extra=None):
    """The environment of a measuring child: ``threads`` everywhere, OpenBLAS's kernels for this
    CPU (``kernels/blas_core.py``: the AVX-512 ones where OpenBLAS would fall back to AVX2), and
    ``extra`` (an allocator's settings)."""
    from minitorch_alex_kernels.blas_core import choose_openblas_core

    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "MINITORCH_ALEX_NUM_THREADS"):
        env[var] = str(threads)
    choose_openblas_core(env)
    env.update(extra or {})
    return env


def run_task(task, threads, env_extra=None, timeout=3600, may_fail=False):
    """Run one measuring child; its result dict. With ``may_fail`` (torch.compile) a child that
    dies is a result too: {'failed': its last line of stderr}."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(task)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=child_env(threads, env_extra), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        if not may_fail:
            raise
        return {"failed": f"no result within {timeout} s", "peak_rss_mb": float("nan")}
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        if may_fail:
            last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            return {"failed": last[:300], "peak_rss_mb": float("nan")}
        raise RuntimeError(f"benchmark child failed ({task}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["child_wall_s"] = wall
    return result


def machine_info(threads):
    import numpy as np

    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count(),
            "threads": threads, "numpy": np.__version__}
    from minitorch_alex_kernels.blas_core import cpu_info

    cpu = cpu_info()
    info["cpu"] = cpu.get("name", platform.processor())
    if "family" in cpu:  # one name covers several generations (AMD EPYC: Zen 4 is 25, Zen 5 is 26)
        info["cpu"] += f" (family {cpu['family']}, model {cpu.get('model', '?')})"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')} ({blas.get('openblas configuration', '').strip()})"
    except Exception:  # older numpy
        info["blas"] = "unknown"
    # what the children's OpenBLAS runs (their environment chooses its kernels), from a child
    env = child_env(threads)
    info["openblas_coretype"] = env.get("OPENBLAS_CORETYPE", "OpenBLAS's own choice")
    probe = ("import numpy, threadpoolctl; print(', '.join(f\"{p['internal_api']} {p['version']} "
             "{p.get('architecture', '')} {p['num_threads']} threads\" for p in threadpoolctl.threadpool_info() "
             "if p.get('user_api') == 'blas'))")
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    info["blas_runtime"] = proc.stdout.strip() if proc.returncode == 0 else "threadpoolctl not installed"
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
    """The list of (label, task) to run for each participant."""
    base = {"threads": args.threads, "classes": args.classes}
    tasks = []
    for n in args.batches:
        tasks.append((f"train b{n}", dict(base, kind="train", batch=n, warmup=args.warmup, repeats=args.repeats)))
    tasks.append((f"eval b{args.eval_batch}", dict(base, kind="eval", batch=args.eval_batch, warmup=args.warmup,
                                                   repeats=args.repeats)))
    tasks.append((f"layers b{args.layer_batch}", dict(base, kind="layers", batch=args.layer_batch,
                                                      warmup=max(1, args.warmup), repeats=args.layer_repeats)))
    return tasks


def parse_args(argv):
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
    parser.add_argument("--torch-configs", type=parse_torch_configs, default=list(TORCH_CONFIGS),
                        help=f"'all' (default) or a comma list of: {', '.join(TORCH_CONFIGS)}")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend of the '+compile' configuration (default inductor)")
    parser.add_argument("--no-torch", action="store_true", help="measure minitorch_alex only")
    parser.add_argument("--no-loader", action="store_true")
    parser.add_argument("--no-cold", action="store_true", help="skip the first step with an empty numba cache")
    parser.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.eval_batch, args.layer_batch = [2], 2, 2
        args.rounds, args.warmup, args.repeats, args.layer_repeats = 1, 0, 1, 1
        args.classes, args.loader_batches = 10, 2
        args.no_cold = True
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        run_child(json.loads(args.child))
        return None
    configs, unavailable = ({}, {}) if args.no_torch else torch_configurations(args.torch_configs, args.compile_backend)
    if configs:
        try:
            import torch  # noqa: F401  (only checks it is there; children import it)
        except ImportError:
            print("PyTorch is not installed: measuring minitorch_alex only")
            configs = {}
    for name, why in unavailable.items():
        print(f"  torch {name}: not measured, {why}")
    participants = [MT] + list(configs)
    configs["_unavailable"] = unavailable

    command = "python benchmarks/bench_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = machine_info(args.threads)
    started, snapshot = time.strftime("%Y-%m-%d %H:%M:%S"), cpu_snapshot()
    print(f"{machine['cpu']}, {machine['cores']} cores, {args.threads} threads; BLAS {machine['blas']}", flush=True)

    raw = {}  # label -> participant -> list of child results
    for label, task in plan(args):
        for r in range(args.rounds):
            for p in (participants if r % 2 == 0 else participants[::-1]):
                if p == MT:
                    res = run_task(dict(task, framework=MT), args.threads)
                else:
                    cfg = configs[p]
                    res = run_task(dict(task, framework="pytorch", torch_config=cfg), args.threads, cfg["env"],
                                   may_fail=cfg["compile"])
                raw.setdefault(label, {}).setdefault(p, []).append(res)
                print(f"  {label:14s} {p:24s} round {r + 1}: {brief(res)}", flush=True)

    extras = {}
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as cache:
            task = dict(kind="train", batch=min(args.batches), warmup=0, repeats=0, threads=args.threads,
                        classes=args.classes, framework=MT)
            extras["cold"] = run_task(task, args.threads, {"NUMBA_CACHE_DIR": cache})
            print(f"  cold numba cache: first step {extras['cold']['first_s']:.1f} s", flush=True)
    extras["sgemm"] = {}
    for threads in sorted({1, args.threads}):  # what the BLAS can do, for the GEMM floor of each layer
        task = dict(kind="sgemm", batch=0, warmup=0, repeats=3 if args.quick else 7, threads=threads,
                    classes=args.classes, framework=MT)
        extras["sgemm"][threads] = run_task(task, threads)["sgemm_gflops"]
        print(f"  sgemm, {threads} thread(s): " + ", ".join(f"{k} {v:.0f}" for k, v in extras["sgemm"][threads].items())
              + " GFLOP/s", flush=True)
    if not args.no_loader:
        with tempfile.TemporaryDirectory() as data_dir:
            task = dict(kind="loader", batch=max(args.batches), threads=args.threads, classes=args.classes,
                        framework=MT, warmup=0, repeats=0, workers=args.loader_workers,
                        loader_batches=args.loader_batches, data_dir=data_dir,
                        store_images=40 if args.quick else 1000)
            extras["loader"] = run_task(task, args.threads)
            print(f"  loader: {brief(extras['loader'])}", flush=True)

    report = build_report(args, machine, command, started, others_share(snapshot, cpu_snapshot()), raw, extras,
                          participants, configs)
    print(report)
    write_keeping_other_sections(args.out, report)
    print(f"written to {args.out}")
    return raw


TRAINING_RUNS = "\n## Training runs\n"  # a section of RESULTS.md written by hand from other commands


def write_keeping_other_sections(path, report):
    """Write ``report`` to ``path`` atomically (a temporary file, then a rename), keeping the
    file's 'Training runs' section (if any) after it."""
    kept = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
        if TRAINING_RUNS in old:
            kept = old[old.index(TRAINING_RUNS):]
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".RESULTS-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(report.rstrip("\n") + "\n" + kept)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    main()
