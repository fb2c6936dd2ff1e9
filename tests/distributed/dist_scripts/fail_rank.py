"""Run under ``mpiexec -n 2``: rank 1 fails mid-step (an exception; an exception in a helper
thread, e.g. a data prefetcher, with ``thread``; SIGKILL with ``kill``) while rank 0 waits in
the step's gradient allreduce, which would block it forever.

usage: mpiexec -n 2 python tests/distributed/dist_scripts/fail_rank.py raise|thread|kill
"""
import os
import signal
import sys
import threading
import time

import numpy as np

import minitorch_alex.distributed as dist


def main(how):
    world = dist.init()
    grads = np.ones(1000)
    world.allreduce_(grads)  # one healthy step
    if world.rank == 1:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "thread":
            def prefetch():
                raise ValueError("rank 1 failed on purpose in a prefetch thread")
            threading.Thread(target=prefetch, name="prefetch").start()
            time.sleep(60)  # the main thread would carry on; the job must end anyway
        raise ValueError("rank 1 failed on purpose in the middle of a step")
    world.allreduce_(grads)  # never completes: rank 1 is gone
    print("rank 0 finished the step: the failure went unnoticed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
