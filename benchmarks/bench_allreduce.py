#!/usr/bin/env python
"""Allreduce of AlexNet's gradients between local MPI ranks, and ring-allreduce arithmetic.

    python benchmarks/bench_allreduce.py              # starts mpiexec -n 2 itself, then the table
    python benchmarks/bench_allreduce.py --ranks 4 --repeat 10
    mpiexec -n 2 python benchmarks/bench_allreduce.py --measure-only

Measured (needs mpi4py and mpiexec: pip install -e '.[dist]'), after one untimed round:

* one blocking ``Allreduce`` of the whole float32 gradient (AlexNet's 60,965,224 parameters,
  the paper's two-tower model, by default): seconds, algorithm bandwidth (bytes / s) and bus
  bandwidth (``2 (N-1)/N`` bytes / s, the traffic each rank's link carries in a ring);
* the same bytes as non-blocking ``Iallreduce`` of 25 MB buckets, all launched then waited;
* ``np.copyto`` of the same buffer in one process, the memory bandwidth to compare against
  (local ranks communicate through shared memory: each byte is copied at least twice).

With ``--steps K``: K training steps of AlexNet (``--batch`` images per rank) in each mode of
``distributed.GradientAverager`` and without averaging: forward, backward and the time left in
``finish()`` after backward (the communication not hidden behind backward), so "flat" and
"buckets" (after backward) compare with "overlap" (buckets sent during backward). MPICH only
progresses a non-blocking collective inside MPI calls; the averager tests its requests from the
backward hook, and ``MPIR_CVAR_ASYNC_PROGRESS=1`` in the environment adds a progress thread.

On paper (no MPI needed): a ring allreduce sends and receives ``2 (N-1)/N * S`` bytes per rank
per step for ``S`` gradient bytes; at a link of ``B`` bit/s that is ``16 (N-1)/N * S / B``
seconds of bandwidth plus ``2 (N-1)`` message latencies. The table gives it for 8, 64 and 256
ranks at 25 and 100 Gbit/s, and what 90 epochs of ImageNet at the paper's global batch of 128
would spend communicating alone, against the paper's 5-6 days of training on two GTX 580s.
Measurements on a shared machine are indicative only.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

ALEXNET_PARAMS = 60_965_224  # mt.models.alexnet().num_parameters(), the paper's two-tower net
IMAGES_PER_EPOCH, EPOCHS, PAPER_BATCH = 1_281_167, 90, 128


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", type=int, default=2, help="local ranks to start with mpiexec (default 2)")
    ap.add_argument("--count", type=int, default=ALEXNET_PARAMS, help="float32 values to allreduce")
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds (the median is reported)")
    ap.add_argument("--bucket-mb", type=float, default=25.0)
    ap.add_argument("--latency-us", type=float, default=5.0, help="per-message latency for the paper table")
    ap.add_argument("--steps", type=int, default=0, help="also time K AlexNet training steps per averaging mode")
    ap.add_argument("--batch", type=int, default=2, help="images per rank in --steps")
    ap.add_argument("--measure-only", action="store_true", help="measure (run under mpiexec); no table")
    ap.add_argument("--paper-only", action="store_true", help="print the on-paper table only")
    return ap.parse_args(argv)


def measure(args) -> None:
    """Body of each rank under mpiexec; rank 0 prints the results."""
    import minitorch_alex.distributed as dist

    world = dist.init(use_mpi=True)
    buf = np.ones(args.count, np.float32)
    nbytes, n = buf.nbytes, world.size
    per_bucket = max(1, int(args.bucket_mb * 2 ** 20) // 4)
    buckets = [buf[i:i + per_bucket] for i in range(0, args.count, per_bucket)]

    def timed(fn, together=True):
        fn()  # untimed: first-touch of pages, MPI's shared-memory setup
        times = []
        for _ in range(args.repeat):
            if together:  # start all ranks at once (not for the one-process copy)
                world.barrier()
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    def bucketed():
        for h in [world.iallreduce_(b) for b in buckets]:
            h.wait()

    flat, split = timed(lambda: world.allreduce_(buf)), timed(bucketed)
    if world.rank == 0:
        other = np.empty_like(buf)
        copy = timed(lambda: np.copyto(other, buf), together=False)
        print(f"allreduce of {args.count:,} float32 ({nbytes / 1e6:.0f} MB) between {n} local ranks, "
              f"median of {args.repeat}:")
        for name, t in (("one Allreduce", flat), (f"{len(buckets)} x Iallreduce of {args.bucket_mb:g} MB", split)):
            print(f"  {name:32s} {t:8.3f} s   algorithm {nbytes / t / 1e9:6.2f} GB/s   "
                  f"bus {2 * (n - 1) / n * nbytes / t / 1e9:6.2f} GB/s")
        print(f"  {'np.copyto, one process':32s} {copy:8.3f} s   memory    {2 * nbytes / copy / 1e9:6.2f} GB/s "
              "(read + write)")
    if args.steps:
        measure_steps(args, world)


def measure_steps(args, world) -> None:
    """Forward / backward / finish() times of AlexNet steps per averaging mode (median of --steps)."""
    import minitorch_alex as mt
    import minitorch_alex.distributed as dist
    import minitorch_alex.nn.functional as F

    mt.manual_seed(0)
    model = mt.models.alexnet()
    rng = np.random.default_rng(world.rank)
    x = mt.tensor(rng.normal(size=(args.batch, 3, 224, 224)).astype(np.float32))
    y = rng.integers(0, 1000, args.batch)
    if world.rank == 0:
        print(f"\nAlexNet steps, {args.batch} images per rank x {world.size} ranks, median of {args.steps}:")
        print(f"  {'mode':8s} {'forward':>8s} {'backward':>9s} {'finish':>8s} {'step':>8s} {'images/s':>9s} {'exposed comm':>13s}")
    for mode in ("none",) + dist.MODES:
        averager = None if mode == "none" else dist.GradientAverager(model.parameters(), mode=mode,
                                                                        bucket_mb=args.bucket_mb)
        rows = []
        for i in range(args.steps + 1):  # the first step is untimed (compilation, allocation)
            for p in model.parameters():
                p.grad = None
            world.barrier()
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            t1 = time.perf_counter()
            if averager is not None:
                averager.begin()
            loss.backward()
            t2 = time.perf_counter()
            if averager is not None:
                averager.finish()
            t3 = time.perf_counter()
            if i:
                rows.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
        if averager is not None:
            averager.close()
        fwd, bwd, fin, step = np.median(np.array(rows), axis=0)
        if world.rank == 0:
            print(f"  {mode:8s} {fwd:8.3f} {bwd:9.3f} {fin:8.3f} {step:8.3f} {world.size * args.batch / step:9.2f} "
                  f"{fin / step:12.0%}")


def paper_table(count: int, latency_us: float) -> None:
    size = 4 * count
    steps = EPOCHS * -(-IMAGES_PER_EPOCH // PAPER_BATCH)
    print(f"\nring allreduce on paper: {size / 1e6:.0f} MB of float32 gradients per step, {steps:,} steps "
          f"(90 epochs at global batch {PAPER_BATCH}), {latency_us:g} us per message")
    print(f"  {'ranks':>5s} {'Gbit/s':>6s} {'MB sent/rank/step':>18s} {'s/step':>8s} {'90 epochs, comm only':>22s}")
    for ranks in (8, 64, 256):
        for gbit in (25, 100):
            sent = 2 * (ranks - 1) / ranks * size
            t = sent * 8 / (gbit * 1e9) + 2 * (ranks - 1) * latency_us * 1e-6
            print(f"  {ranks:5d} {gbit:6d} {sent / 1e6:18.0f} {t:8.3f} {steps * t / 86400:17.2f} days")
    print("  the paper: 5-6 days on two GTX 580s for everything. The bandwidth term hardly depends on N:\n"
          "  at global batch 128 a ring spends 1.4-1.7 days (25 Gbit/s) or ~0.4 days (100 Gbit/s) of the\n"
          "  90 epochs communicating, whatever N is, while each rank's compute shrinks as 1/N; so unless\n"
          "  it overlaps the backward pass, communication bounds the speed-up (larger batches amortize it).")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.measure_only:
        measure(args)
        return 0
    if not args.paper_only:
        import importlib.util
        if importlib.util.find_spec("mpi4py") is None or shutil.which("mpiexec") is None:
            print("needs mpi4py and mpiexec for the measurement: pip install -e '.[dist]' (table only)")
        else:
            cmd = ["mpiexec", "-n", str(args.ranks), sys.executable, os.path.abspath(__file__), "--measure-only",
                   "--count", str(args.count), "--repeat", str(args.repeat), "--bucket-mb", str(args.bucket_mb),
                   "--steps", str(args.steps), "--batch", str(args.batch)]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
            if subprocess.run(cmd, env=env).returncode != 0:
                return 1
    paper_table(ALEXNET_PARAMS, args.latency_us)
    return 0


if __name__ == "__main__":
    sys.exit(main())
