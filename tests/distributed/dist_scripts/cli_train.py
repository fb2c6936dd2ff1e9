"""Run the training CLI (``minitorch_alex.train.main``) with a small float64 network in AlexNet's
place, under ``mpiexec -n N`` or as one plain process: what tests/distributed/test_distributed_cli.py compares.

usage: [mpiexec -n N] python tests/distributed/dist_scripts/cli_train.py CLI-FLAGS...

``FAIL_RANK=R FAIL_STEP=S FAIL_HOW=raise|kill|sigterm`` in the environment makes rank R raise (or
SIGKILL or SIGTERM itself) at its S-th optimizer step; every rank writes ``OUT/rank<R>.json`` (its world,
generator state and metric rows) when the run returns.
"""
import json
import os
import signal
import sys

import numpy as np

import minitorch_alex as mt
import minitorch_alex.nn as nn
from minitorch_alex import random as mt_random
from minitorch_alex.train import main, trainer


class Float64(nn.Module):
    """The loader's float32 images as float64 (the network below is float64)."""

    def forward(self, x):
        return mt.from_numpy(x.numpy().astype(np.float64))


def small_net(num_classes, devices=None, init=None, generator=None, dropout=0.5):
    """conv-relu-pool-dropout-linear in float64: (N, 3, C, C) -> (N, classes), C >= 14."""
    with mt_random.use_generator(generator):  # the run's own generator, as AlexNet's init uses it
        return nn.Sequential(Float64(), nn.Conv2d(3, 6, 3, padding=1, dtype=np.float64), nn.ReLU(),
                             nn.MaxPool2d(3, 2), nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(), nn.Dropout(dropout),
                             nn.Linear(6 * 6 * 6, num_classes, dtype=np.float64))


def inject_failure():
    rank, step, how = os.environ.get("FAIL_RANK"), os.environ.get("FAIL_STEP"), os.environ.get("FAIL_HOW", "raise")
    if rank is None:
        return
    original = trainer.Trainer._optimizer_step

    def failing_step(self):
        if self.world.rank == int(rank) and self.step + 1 == int(step):
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "sigterm":  # this rank alone is asked to stop: every rank must stop at the same step
                os.kill(os.getpid(), signal.SIGTERM)
                return original(self)
            raise OSError(28, "No space left on device (injected)")
        return original(self)

    trainer.Trainer._optimizer_step = failing_step


def run(argv):
    trainer.alexnet = small_net
    inject_failure()
    created = []
    original_init = trainer.Trainer.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        created.append(self)

    trainer.Trainer.__init__ = init
    rows = main(argv)
    t = created[-1]
    out = argv[argv.index("--out") + 1]
    report = {"rank": t.world.rank, "size": t.world.size, "local_rank": t.world.local_rank,
              "rng": t.rng.bit_generator.state, "rows": rows, "step": t.step}
    with open(os.path.join(out, f"rank{t.world.rank}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    run(sys.argv[1:])
