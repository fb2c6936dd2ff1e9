#!/usr/bin/env python
"""Training throughput of one process against data-parallel ranks on one machine, through the
Trainer the CLI runs (``--dummy`` data: the StoreLoader's crops, flips and PCA jitter, no decoding).

    python benchmarks/bench_data_parallel.py                 # 1 x 2 threads vs 2 ranks x 1 thread
    python benchmarks/bench_data_parallel.py --batch 64 --steps 4 --rounds 2 --out -

Configurations, each its own job, alternated over ``--rounds`` rounds (the machine's drift falls on
all of them alike):

* ``1 process x T threads``: ``python``, the whole global batch in one process;
* ``2 ranks x T/2 threads``: ``mpiexec -n 2``, half of the batch each, the gradients averaged by
  ``GradientAverager`` in each mode: ``flat`` (one allreduce after backward), ``buckets`` (after
  backward), ``overlap`` (buckets sent during backward).

Each job trains ``--warmup`` steps untimed (numba's cache, first allocations), then ``--steps``
steps timed: images/s over all ranks, and on rank 0 the share of the step spent in ``finish()``
(the communication that backward did not hide). Results go to RESULTS.md's "Data parallel"
section (``--out -``: printed only). The paper's AlexNet (``--arch``), its global batch of 128.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

from results_file import publish  # noqa: E402  (benchmarks/ is the script's folder)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SECTION = "## Data parallel on one machine (issue #15)"
END = "<!-- end of bench_data_parallel.py's table: a rerun replaces what is above, back to the heading -->"


def child(args) -> None:
    """One job (run by mpiexec or plainly): warm-up, then the timed steps; rank 0 prints JSON."""
    sys.path.insert(0, ROOT)
    import minitorch_alex.distributed as dist
    from minitorch_alex.data.dummy import dummy_store
    from minitorch_alex.train import TrainConfig, Trainer

    world = dist.init()
    store = dummy_store(num_classes=1000)
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(batch_size=args.batch, workers=args.workers, grad_sync=args.mode, out=out, progress=False,
                          plots=False, max_steps=args.warmup, arch=args.arch)
        trainer = Trainer(cfg, store.train, store.val, store.classes)
        with trainer._loader(store.train, train=True) as loader:
            trainer.train_epoch(loader)  # warm-up
            trainer.batch, cfg.max_steps = 0, args.steps
            world.barrier()
            row = trainer.train_epoch(loader)
    if world.is_main:
        print("RESULT " + json.dumps({"images_per_s": row["images_per_s"], "seconds": row["train_seconds"],
                                      "sync_seconds": row.get("sync_seconds", 0.0), "ranks": world.size}), flush=True)


def run_job(ranks, threads, mode, args):
    sys.path.insert(0, ROOT)
    from minitorch_alex_kernels.blas_core import choose_openblas_core

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MINITORCH_ALEX_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    choose_openblas_core(env)  # as examples/train_imagenet.py does
    command = [sys.executable, os.path.abspath(__file__), "--child", "--mode", mode, "--batch", str(args.batch),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--workers", str(args.workers),
               "--arch", args.arch]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), *command]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    found = re.search(r"^RESULT (.+)$", proc.stdout, re.M)
    if proc.returncode or not found:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(found.group(1))


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=128, help="global batch (the paper's 128)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per job")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="cores to share out (default: all)")
    p.add_argument("--workers", type=int, default=1, help="StoreLoader processes per process/rank")
    p.add_argument("--arch", default="alexnet")
    p.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="RESULTS.md to update, or - to print only")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="overlap", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0
    if shutil.which("mpiexec") is None:
        print("needs mpiexec and mpi4py: pip install -e '.[dist]'")
        return 1
    configs = [("1 process", 1, args.threads, "flat")] + [
        (f"2 ranks, {mode}", 2, max(1, args.threads // 2), mode) for mode in ("flat", "buckets", "overlap")]
    results = {name: [] for name, *_ in configs}
    for r in range(args.rounds):
        for name, ranks, threads, mode in configs:
            res = run_job(ranks, threads, mode, args)
            results[name].append(res)
            print(f"round {r + 1}/{args.rounds} {name:18s} {res['images_per_s']:7.2f} img/s, "
                  f"finish() {100 * res['sync_seconds'] / res['seconds']:4.1f}% of the steps", flush=True)
    base = median([x["images_per_s"] for x in results[configs[0][0]]])
    cpu = _cpu_name()
    lines = [SECTION, "",
             f"`python benchmarks/bench_data_parallel.py --batch {args.batch} --steps {args.steps} --rounds {args.rounds}` "
             f"on {cpu}, {os.cpu_count()} cores ({time.strftime('%Y-%m-%d')}): the paper's AlexNet, global batch "
             f"{args.batch}, `--dummy` data through the StoreLoader ({args.workers} worker per process), "
             f"{args.steps} timed steps after {args.warmup} untimed, medians of {args.rounds} alternating rounds. "
             "`finish()`: the share of the step rank 0 spent waiting for the averaged gradients after its "
             "backward (the communication the backward did not hide).", "",
             "| configuration | threads each | images/s | vs 1 process | finish() share of the step |",
             "|---|---|---|---|---|"]
    for name, ranks, threads, _mode in configs:
        ips = median([x["images_per_s"] for x in results[name]])
        share = median([x["sync_seconds"] / x["seconds"] for x in results[name]])
        lines.append(f"| {name} | {threads} | {ips:.2f} | {ips / base:.2f}x | "
                     f"{'-' if ranks == 1 else f'{100 * share:.1f}%'} |")
    text = "\n".join(lines) + "\n\n" + END + "\n"
    publish(args.out, SECTION, END, text)
    return 0


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
