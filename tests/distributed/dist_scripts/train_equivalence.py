"""Run under ``mpiexec -n N``: train the small network data-parallel in each averaging mode and
write every rank's final parameters and validation counts to ``OUT/rank<R>.npz``.

usage: mpiexec -n 2 python tests/distributed/dist_scripts/train_equivalence.py OUT
"""
import os
import sys

import common
import numpy as np

import minitorch_alex.distributed as dist


def main(out):
    world = dist.init()
    train, val = common.make_split(common.N_TRAIN, 1), common.make_split(common.N_VAL, 2)
    results = {"world_size": np.array(world.size), "local_rank": np.array(world.local_rank)}
    for mode in dist.MODES:
        model = common.train_distributed(train, mode, world)
        for name, value in common.parameters(model).items():
            results[f"{mode}/{name}"] = value
        results[f"{mode}/val"] = common.evaluate(model, val, world)
    for name, value in common.parameters(common.train_distributed(train, "overlap", world, np.float32)).items():
        results[f"float32/{name}"] = value
    path = os.path.join(out, f"rank{world.rank}.npz")
    np.savez(path + ".tmp.npz", **results)
    os.replace(path + ".tmp.npz", path)


if __name__ == "__main__":
    main(sys.argv[1])
