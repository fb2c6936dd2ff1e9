"""The process group: who am I, how many are we, and the host-memory collectives over MPI.

``init()`` makes the world once per process:

* launched by ``mpiexec -n N`` (any MPI launcher that sets the PMI / Open MPI / PMIx rank
  variables) with mpi4py installed: the world is ``MPI.COMM_WORLD``;
* a plain ``python script.py``: a world of one, without importing mpi4py (which need not be
  installed); every collective is then the identity, so a single process behaves exactly as
  without this module;
* launched by ``mpiexec -n N`` with N > 1 but no mpi4py: a clear error (not N independent runs
  that would each believe they are alone and overwrite each other's checkpoints).

Collectives here take contiguous host (NumPy) arrays and use mpi4py's buffer methods
(``Allreduce``, ``Iallreduce``, ``Allgather``, ``Bcast``), never the pickle-based lower-case ones.

Faults: with more than one rank, ``init`` installs ``sys.excepthook`` and
``threading.excepthook`` handlers that print the traceback prefixed with the failing rank and
then call ``MPI_Abort``, so an exception on one rank ends every rank (which would otherwise
wait forever in their next collective) with a message naming the rank. A rank killed by a
signal runs no Python code: mpiexec ends the others and names its pid, which rank 0's start-up
line (``N ranks (0: pid P on HOST, ...)``) maps to the rank.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
import traceback

import numpy as np

# Environment variables an MPI launcher sets in each process it starts: (rank, size).
_LAUNCHER_VARS = (("PMI_RANK", "PMI_SIZE"),                                    # MPICH / Intel MPI (hydra)
                  ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),            # Open MPI
                  ("PMIX_RANK", None))                                         # PMIx launchers (size via MPI)


def launched_size() -> int | None:
    """World size announced by an MPI launcher in the environment; None when not under one
    (1 when the launcher tells a rank but not the size)."""
    for rank_var, size_var in _LAUNCHER_VARS:
        if rank_var in os.environ:
            value = os.environ.get(size_var, "1") if size_var else "1"
            try:
                return int(value)
            except ValueError:
                raise RuntimeError(f"distributed: {size_var}={value!r} is not an integer") from None
    return None


class _Done:
    """The handle of a collective that has already completed."""

    def wait(self):
        return None

    def test(self) -> bool:
        return True


class _MpiRequest:
    """Handle of a non-blocking MPI collective: ``wait()`` blocks, ``test()`` drives progress."""

    def __init__(self, request):
        self._request = request

    def wait(self):
        self._request.Wait()

    def test(self) -> bool:
        # MPICH progresses non-blocking collectives only inside MPI calls: testing from the
        # backward pass lets a launched bucket advance while later gradients are computed.
        return self._request.Test()


class World:
    """The ranks of this job. ``rank``, ``size``, ``local_rank`` (rank among the processes on
    this node: the GPU to use), ``comm`` (an mpi4py communicator, or None for a world of one)."""

    def __init__(self, comm=None, mpi=None):
        self.comm, self._mpi = comm, mpi
        if comm is None:
            self.rank, self.size, self.local_rank, self.local_size = 0, 1, 0, 1
        else:
            self.rank, self.size = comm.Get_rank(), comm.Get_size()
            node = comm.Split_type(mpi.COMM_TYPE_SHARED, key=self.rank)  # the ranks sharing this node's memory
            self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
            node.Free()
        self.pids, self.hosts = self._where_ranks_run()

    def _where_ranks_run(self):
        """Every rank's process id and host name: mpiexec names a killed process by pid and
        host only, so rank 0 prints this table at start-up to tell which rank that was."""
        pids, hosts = np.zeros(self.size, np.int64), np.zeros((self.size, 64), np.uint8)
        pids[self.rank] = os.getpid()
        name = socket.gethostname().encode()[:64]
        hosts[self.rank, :len(name)] = np.frombuffer(name, np.uint8)
        self.allreduce_(pids)  # each row is non-zero on one rank only: the sum gathers them
        self.allreduce_(hosts)
        return pids.tolist(), [bytes(h).rstrip(b"\0").decode(errors="replace") for h in hosts]

    def __repr__(self):
        return f"World(rank={self.rank}, size={self.size}, local_rank={self.local_rank}, mpi={self.comm is not None})"

    @property
    def is_main(self) -> bool:
        """True on rank 0: the one rank that prints, logs and writes checkpoints."""
        return self.rank == 0

    # -- collectives on contiguous host arrays (identity for a world of one) --------------------
    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        """Sum ``array`` over all ranks, in place; returns it."""
        if self.size > 1:
            self.comm.Allreduce(self._mpi.IN_PLACE, _contiguous(array, "allreduce_"), op=self._mpi.SUM)
        return array

    def iallreduce_(self, array: np.ndarray):
        """Start summing ``array`` over all ranks in place; returns a handle with ``wait()``.
        ``array`` must not be touched until then."""
        if self.size == 1:
            return _Done()
        return _MpiRequest(self.comm.Iallreduce(self._mpi.IN_PLACE, _contiguous(array, "iallreduce_"),
                                                op=self._mpi.SUM))

    def allgather(self, array: np.ndarray) -> np.ndarray:
        """Every rank's ``array`` (same shape and dtype on all), stacked in rank order:
        a new ``(size, *array.shape)`` array."""
        out = np.empty((self.size,) + array.shape, array.dtype)
        if self.size == 1:
            out[0] = array
        else:
            self.comm.Allgather(_contiguous(array, "allgather"), out)
        return out

    def broadcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``array`` on every rank with rank ``root``'s, in place; returns it."""
        if self.size > 1:
            self.comm.Bcast(_contiguous(array, "broadcast_"), root=root)
        return array

    def barrier(self) -> None:
        if self.size > 1:
            self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """End every rank of the job (``MPI_Abort``) after ``ABORT_GRACE_S``; a world of one just exits."""
        if self.size > 1:
            time.sleep(ABORT_GRACE_S)
            self.comm.Abort(code)
        os._exit(code)


def _contiguous(array, what):
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
        raise TypeError(f"distributed.{what}: expected a C-contiguous NumPy array, got "
                        f"{type(array).__name__}{'' if not isinstance(array, np.ndarray) else ' (not contiguous)'}")
    return array


# seconds between a failing rank's last (flushed) line and MPI_Abort: the launcher forwards each
# rank's output through its own proxy, and an abort that follows the write at once can kill the
# proxy first. Seen once in about 20 runs of the failing-rank tests on an idle 2-core machine
# (MPICH's hydra): the job's output held only rank 0's start-up line, not "rank 1 of 2 failed"
ABORT_GRACE_S = 0.5

_world: World | None = None


def init(use_mpi: bool | None = None) -> World:
    """The world of this process, made on the first call (later calls return the same one).

    ``use_mpi``: None (default) uses MPI when launched by an MPI launcher; True requires mpi4py
    (a world of one when started without a launcher); False gives a world of one.
    """
    global _world
    if _world is not None:
        return _world
    size = launched_size()
    if use_mpi is None:
        use_mpi = size is not None
    if not use_mpi:
        if size is not None and size > 1:
            raise RuntimeError(f"distributed: started by an MPI launcher as one of {size} ranks but told not to "
                               "use MPI; run without mpiexec for a single process")
        _world = World()
        return _world
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError(f"distributed: started by an MPI launcher with {size} ranks, but mpi4py is not "
                           "installed: pip install 'minitorch_alex[dist]' (mpi4py and mpich)") from None
    world = World(MPI.COMM_WORLD, MPI)
    if world.size > 1:
        install_abort_on_exception(world)
        if world.rank == 0:
            table = ", ".join(f"{r}: pid {pid} on {host}" for r, (pid, host) in enumerate(zip(world.pids, world.hosts)))
            sys.stderr.write(f"[minitorch_alex.distributed] {world.size} ranks ({table})\n")
            sys.stderr.flush()
    _world = world
    return world


def get_world() -> World:
    """The world (``init()`` on first use)."""
    return _world if _world is not None else init()


def install_abort_on_exception(world: World) -> None:
    """Make an uncaught exception on any thread of this rank abort the whole job, after
    printing ``rank R of N failed`` and the traceback to stderr."""
    def report_and_abort(exc_type, exc, tb, where="main thread"):
        message = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.write(f"[minitorch_alex.distributed] rank {world.rank} of {world.size} failed "
                         f"({where}): aborting all ranks\n{message}")
        sys.stderr.flush()
        world.abort(1)

    def thread_hook(args):
        if args.exc_type is SystemExit:  # as the default hook: a thread may end itself quietly
            return
        report_and_abort(args.exc_type, args.exc_value, args.exc_traceback,
                         f"thread {args.thread.name if args.thread else '?'}")

    sys.excepthook = report_and_abort
    threading.excepthook = thread_hook
