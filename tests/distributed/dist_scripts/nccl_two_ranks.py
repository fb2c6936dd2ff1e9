"""Two NCCL ranks on two GPUs, run by benchmarks/gpu_check.py under ``mpiexec -n 2``: each rank's
NcclComm (rank 0's unique id broadcast over MPI as CuPy 14's bytes) sums [rank + 1] * 1000 over
the ranks and broadcasts rank 1's array; every rank checks the result and prints one line."""
import sys

import numpy as np

import minitorch_alex.distributed as dist


def main():
    import cupy

    world = dist.World()
    comm = dist.NcclComm(world)
    with cupy.cuda.Device(comm.device_id):
        x = cupy.full(1000, world.rank + 1.0, cupy.float32)
        comm.allreduce_(x)
        summed = cupy.asnumpy(x)
        y = cupy.full(10, float(world.rank), cupy.float32)
        comm.broadcast_(y, root=1)
        sent = cupy.asnumpy(y)
    ok = np.all(summed == 3.0) and np.all(sent == 1.0)
    print(f"rank {world.rank} on cuda:{comm.device_id}: allreduce {summed[0]} (expected 3.0), "
          f"broadcast from rank 1 {sent[0]} (expected 1.0): {'ok' if ok else 'WRONG'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
