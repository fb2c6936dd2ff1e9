"""Run under ``mpiexec -n N``: the Trainer on a small network with batch norm, one epoch; every
rank writes its running statistics after ``fit`` to ``OUT/rank<R>.npz`` (rank 0 also the
checkpoint ``OUT/last.npz``).

usage: mpiexec -n 2 python tests/dist_scripts/trainer_buffers.py OUT
"""
import os
import sys

import common
import numpy as np

import minitorch_alex as mt
import minitorch_alex.distributed as dist
import minitorch_alex.nn as nn
from minitorch_alex.data.augment import default_crop
from minitorch_alex.train import TrainConfig, Trainer


def main(out):
    world = dist.init()
    train, val = common.make_split(common.N_TRAIN, 1), common.make_split(common.N_VAL, 2)
    mt.manual_seed(common.SEED)
    crop = default_crop(common.SIZE)  # what the Trainer's loaders cut
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * crop * crop, common.CLASSES))
    cfg = TrainConfig(epochs=1, batch_size=common.BATCH, lr=0.01, workers=0, out=out, seed=common.SEED, plots=False,
                      progress=False)
    Trainer(cfg, train, val, [str(c) for c in range(common.CLASSES)], model=model, world=world).fit()
    path = os.path.join(out, f"rank{world.rank}.npz")
    np.savez(path + ".tmp.npz", **{k: v for k, v in model.state_dict().items() if "running" in k})
    os.replace(path + ".tmp.npz", path)


if __name__ == "__main__":
    main(sys.argv[1])
