"""Data-parallel training over MPI (CPU) and NCCL (GPUs): the Python API.

``mpiexec -n N python examples/train_imagenet.py`` uses it through ``train.Trainer`` (the README's
"Data parallelism"); the loop below is the same thing for a training loop of one's own.

A training loop on N ranks (``mpiexec -n N python train.py``; a plain ``python train.py`` is a
world of one, needs no mpi4py and behaves as without this module)::

    import minitorch_alex.distributed as dist

    world = dist.init()                                  # rank, size, local_rank
    model = make_model()                                 # the same on every rank ...
    dist.broadcast_parameters(model.parameters())        # ... or made so: rank 0's values
    sampler = dist.ShardedSampler(len(split), batch_size=128, seed=seed)   # the GLOBAL batch
    averager = dist.GradientAverager(model.parameters(), mode="overlap")
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for shard in sampler:                             # this rank's rows of each global batch
            x, y = dist.shard_batch(split, shard, seed)   # the 1-rank loader's crops/flips/PCA
            with averager.sync(shard.weight):
                if len(shard):
                    F.cross_entropy(model(mt.tensor(x)), y).backward()
            optimizer.step(); optimizer.zero_grad()
    correct, total = dist.all_reduce_sum([correct, total])   # metrics over all ranks
    if world.is_main: ...                                  # print, save

On GPUs, one per rank: put the model on ``cuda:<world.local_rank>``, then ``comm =
dist.NcclComm(world)`` (under that device) and ``GradientAverager(params, comm=comm)``,
``broadcast_parameters(params, comm=comm)``; the gradients never leave the GPUs.

Several machines (MPICH's launcher, hydra): a hostfile with one ``host:ranks`` line per machine,
then ``mpiexec -f hosts -n 16 python train.py``. Every rank must find the prepared store at the
same path: a shared filesystem, or a copy on each machine. The dataset order and augmentation
depend only on the seed, never on which rank or machine makes a batch.

Failures: an uncaught exception on any rank prints ``rank R of N failed`` with its traceback and
aborts the whole job (``MPI_Abort``); a rank killed by a signal makes mpiexec end the others
(MPICH reports the pid and the signal; rank 0's start-up line maps each rank to its pid and host).
"""
from .agreement import Disagreement, check_agreement
from .grads import MODES, GradientAverager, all_reduce_sum, broadcast_parameters
from .nccl import NcclComm
from .sampler import Shard, ShardedSampler, shard_batch, shard_bounds
from .world import World, get_world, init, install_abort_on_exception, launched_size


def rank() -> int:
    """This process's rank (0 in a world of one)."""
    return get_world().rank


def world_size() -> int:
    """Number of ranks (1 without an MPI launcher)."""
    return get_world().size


def local_rank() -> int:
    """Rank among the processes on this node: the GPU index to use."""
    return get_world().local_rank


def is_main() -> bool:
    """True on rank 0, the rank that prints and writes files."""
    return get_world().rank == 0


def barrier() -> None:
    get_world().barrier()


__all__ = ["MODES", "Disagreement", "GradientAverager", "NcclComm", "Shard", "ShardedSampler", "World", "all_reduce_sum", "barrier",
           "broadcast_parameters", "check_agreement", "get_world", "init", "install_abort_on_exception", "is_main", "launched_size",
           "local_rank", "rank", "shard_batch", "shard_bounds", "world_size"]
