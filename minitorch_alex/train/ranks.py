"""The command line under ``mpiexec -n N`` (:mod:`minitorch_alex.distributed`): each rank's devices and
threads, one verdict on the flags of every rank (``agree_on_usage``), the data prepared rank by rank,
what the ranks must agree on before training (``run_fields``), and how a failure ends them all
(``fail``). With one process (no mpiexec) each of these is a no-op or the plain single-process step.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..device import Device
from .data_source import resolve_data
from .options import SETTINGS, UsageError, check_device, cpu_count
from .report import silent


def rank_devices(devices, world):
    """This rank's devices. Under mpiexec the k-th rank of a node shifts each CUDA index by
    k x (devices per rank): ``--device cuda:0`` gives rank k cuda:k, ``--devices cuda:0,cuda:1``
    gives it cuda:2k and cuda:2k+1 (the two-tower model inside each rank, data parallel across
    ranks). CPU devices are the same on every rank."""
    if world.size == 1:
        return devices
    out = []
    for name in devices:
        if Device(name).type != "cuda":
            out.append(name)
            continue
        index = Device(name).index + world.local_rank * len(devices)
        try:
            out.append(check_device(f"cuda:{index}", "--devices" if len(devices) > 1 else "--device"))
        except UsageError as exc:
            raise UsageError(f"{exc} [rank {world.rank} is rank {world.local_rank} of {world.local_size} on its node, "
                             f"each rank taking {len(devices)} GPU(s) from {name} on]") from None
    return tuple(out)


def check_ranks(cfg, world):
    """The global batch must split evenly over the ranks."""
    if cfg.batch_size % world.size:
        raise UsageError(f"--batch-size: does not split over {world.size} ranks (expected a multiple of {world.size} "
                         f"vs {cfg.batch_size}): the batch is the global one, each rank takes batch / ranks")


def threads_per_rank(world):
    """Under mpiexec with no thread count in the environment: the node's CPUs shared out among
    its ranks (each rank's own pool and BLAS), instead of every rank using every core. Returns
    the count set, or None."""
    if world.size == 1:
        return None
    try:
        from minitorch_alex_kernels.cpu import parallel
    except ImportError:  # no numba kernels: the reference backend, NumPy's BLAS only
        return None
    if any(os.environ.get(v) for v in parallel.THREAD_VARS):
        return None
    n = max(1, cpu_count() // world.local_size)
    parallel.limit_threads(n)
    return n


def agree_on_usage(world, failure):
    """All ranks have checked their flags and devices: if any failed, the lowest such rank raises
    its error (printed once) and the others leave quietly with the same status."""
    if world.size == 1:
        if failure is not None:
            raise failure
        return
    failed = np.zeros(world.size, np.int64)
    failed[world.rank] = failure is not None
    world.allreduce_(failed)
    if failed.any():
        first = int(np.argmax(failed))
        if world.rank == first:
            if world.rank != 0 and isinstance(failure, UsageError):
                raise UsageError(f"rank {world.rank} of {world.size}: {failure}")
            raise failure
        raise Quiet(2 if isinstance(failure, UsageError) or failure is None else 1)


class Quiet(Exception):
    """Leave with this status without a message: another rank reports the error."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


def resolve_data_on_ranks(args, echo, check, world):
    """``resolve_data`` on every rank, in turn: rank 0 prepares (or checks) the store first; then
    the first rank of each other node opens it, or packs its own copy where the nodes share no
    filesystem; then all the others open it (no lock taken: many ranks open it at once)."""
    if world.size == 1:
        return resolve_data(args, echo, check)
    store = None
    for turn in (world.rank == 0, world.rank != 0 and world.local_rank == 0, world.local_rank != 0):
        if turn:
            store = resolve_data(args, echo if world.rank == 0 else silent, check, reuse=world.rank != 0)
        world.barrier()
    return store


# TrainConfig fields that may differ between ranks (this rank's devices, loader processes, what rank 0 alone writes)
PER_RANK = ("devices", "workers", "out", "print_freq", "plots", "progress", "extra")


def run_fields(args, cfg, store, meta):
    """What defines the run, in the order a disagreement is reported (``distributed.check_agreement``):
    the code, the mode, every resolved setting (named by its flag), the checkpoint resumed and the
    store's content (``distributed.agreement.store_fields``)."""
    from dataclasses import asdict

    from ..distributed.agreement import canonical, code_version, digest, store_fields

    flags = {field: "--" + dest.replace("_", "-") for dest, field in SETTINGS.items()}
    fields = [("the code", code_version()), ("--evaluate", bool(args.evaluate))]
    fields += [(flags.get(k, "--" + k.replace("_", "-")), v) for k, v in asdict(cfg).items() if k not in PER_RANK]
    # the device indices are each rank's own; their number and kinds decide the collectives (NCCL or MPI, towers)
    fields.append(("--device/--devices", [Device(d).type for d in cfg.devices]))
    fields.append(("the checkpoint (--resume)", None if meta is None else
                   f"epoch {meta.get('epoch')} step {meta.get('step')} meta sha256 {digest(canonical(meta).encode())[:12]}"))
    return fields + store_fields(store)



def fail(world, line, status, everywhere=False, together=False):
    """Print ``line`` and leave with ``status``, on N ranks after the usage checks: a failure of
    one rank ends them all (``MPI_Abort``: the others may be waiting for it in a collective),
    its line naming the rank. A failure ``everywhere`` at once (a diverged loss, or Ctrl-C, which
    mpiexec hands to every rank) is printed by rank 0 alone; when the ranks also stop
    ``together`` (at the same step, outside any collective) they exit normally."""
    if everywhere:
        if world.is_main:
            print(line, file=sys.stderr, flush=True)
        if together:
            raise SystemExit(status) from None
    else:
        head, _, rest = line.partition(": ")
        print(f"{head}: rank {world.rank} of {world.size} failed: {rest}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    world.abort(status)
