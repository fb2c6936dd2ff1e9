"""The data-parallel side of a ``Trainer`` (``mpiexec -n N``, :mod:`minitorch_alex.distributed`), as
ChainerMN's communicator and PyTorch's DDP wrapper hold it beside the training loop: rank 0's
weights and buffers everywhere, the gradients averaged over the ranks, the metric sums and the
generator shared. In a world of one every method is a no-op (or the identity).
"""
from __future__ import annotations

import contextlib
import json
import time

import numpy as np

from .. import distributed as dist
from ..device import Device


class DataParallel:
    """This rank's part of a data-parallel run of ``model`` over ``world``; ``grad_sync`` and
    ``bucket_mb``: how the gradients are averaged (``distributed.GradientAverager``)."""

    def __init__(self, world, model, grad_sync="overlap", bucket_mb=25.0):
        self.world, self.model = world, model
        self.grad_sync, self.bucket_mb = grad_sync, bucket_mb
        self._nccl = {}  # device -> NcclComm of this rank's parameters there (data parallel on GPUs)
        self.averagers = []  # made by average_gradients(), once the parameters backward fills exist
        self.sync_seconds = 0.0  # time the steps waited for the other ranks' gradients (reset per epoch)

    def broadcast_start(self):
        """Rank 0's weights and buffers on every rank (the same seed made the same weights
        everywhere; rank 0's make sure)."""
        if self.world.size == 1:
            return
        for device, params in self._parameters_by_device().items():
            dist.broadcast_parameters(params, comm=self._comm_for(device))
        self.sync_buffers()

    def average_gradients(self):
        """From now on average the gradients over the ranks: one GradientAverager per device (with
        the two-tower model each tower's gradients are averaged over the ranks on its own GPU)."""
        if self.world.size > 1:
            self.averagers = [dist.GradientAverager(params, comm=self._comm_for(device), mode=self.grad_sync,
                                                    bucket_mb=self.bucket_mb)
                              for device, params in self._parameters_by_device().items()]

    def _comm_for(self, device):
        """The communicator of this rank's parameters on ``device``: NCCL for a GPU (its
        gradients never leave it), MPI for host memory."""
        device = Device(device)
        if device.type != "cuda" or self.world.size == 1:
            return self.world
        if device not in self._nccl:
            self._nccl[device] = dist.NcclComm(self.world, device_id=device.index)
        return self._nccl[device]

    def _parameters_by_device(self):
        """The model's parameters (the ones backward fills: the 16-bit copies under --amp) by
        device, in order: two groups for the two-tower model."""
        by_device = {}
        for p in self.model.parameters():
            by_device.setdefault(str(p.device), []).append(p)
        return by_device

    def sync_buffers(self):
        """Rank 0's floating buffers (batch norm's running statistics) on every rank, as PyTorch
        DDP's ``broadcast_buffers``: while training each rank updates its own from its own rows
        (they are not gradients: never averaged), and evaluation and the checkpoints (rank 0
        writes them) use rank 0's. Called at the start and before each evaluation; integer
        buffers (the batch counters) advance alike on every rank and are left alone."""
        if self.world.size == 1:
            return
        by_device = {}
        for b in self.model.buffers():
            if b.dtype.kind == "f":
                by_device.setdefault(str(b.device), []).append(b)
        for device, buffers in by_device.items():
            dist.broadcast_parameters(buffers, comm=self._comm_for(device))

    @contextlib.contextmanager
    def averaged(self, weight):
        """Average the gradients of the block's backward over the ranks (weighted by this
        rank's share of the global batch); the time spent finishing goes to ``sync_seconds``."""
        if not self.averagers:
            yield
            return
        for a in self.averagers:
            a.begin(weight)
        try:
            yield
        except BaseException:
            for a in self.averagers:
                a.cancel()
            raise
        t0 = time.perf_counter()
        for a in self.averagers:
            a.finish()
        self.sync_seconds += time.perf_counter() - t0

    def sum_over_ranks(self, values, tag, where):
        """``values`` summed over the ranks, in one allreduce that also sums ``tag`` (the step
        number, or -1 for validation, -2 for the end of the run): ranks at different places in
        the run (one left the loop early) meet in the same collective and all fail here, naming
        it, instead of mixing unrelated sums or waiting for each other without end."""
        sums = dist.all_reduce_sum(np.append(np.asarray(values, np.float64), float(tag)), comm=self.world)
        if sums[-1] != tag * self.world.size:
            raise RuntimeError(f"rank {self.world.rank} of {self.world.size} reached {where} while another rank was "
                               f"elsewhere in the run (expected every rank there vs not): the ranks do not agree on "
                               "the run's length")
        return sums[:-1]

    def sync_generator(self, rng):
        """Give every rank rank 0's state of ``rng``. Needed after a step in which a rank had no
        rows (a last batch smaller than the number of ranks) and so drew no dropout masks."""
        buffer = np.zeros(1024, np.uint8)
        if self.world.is_main:
            text = json.dumps(rng.bit_generator.state).encode()
            buffer[:len(text)] = np.frombuffer(text, np.uint8)
        self.world.broadcast_(buffer, 0)
        rng.bit_generator.state = json.loads(bytes(buffer).rstrip(b"\0").decode())
