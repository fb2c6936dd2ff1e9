"""Run under ``mpiexec -n 2``: rank 1 fails mid-step (an exception, or SIGKILL with ``kill``)
while rank 0 waits in the step's gradient allreduce, which would block it forever.

usage: mpiexec -n 2 python tests/dist_scripts/fail_rank.py raise|kill
"""
import os
import signal
import sys

import numpy as np

import minitorch_alex.distributed as dist


def main(how):
    world = dist.init()
    grads = np.ones(1000)
    world.allreduce_(grads)  # one healthy step
    if world.rank == 1:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise ValueError("rank 1 failed on purpose in the middle of a step")
    world.allreduce_(grads)  # never completes: rank 1 is gone
    print("rank 0 finished the step: the failure went unnoticed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
