"""The small network, data and training loop shared by the 2-rank scripts (run under mpiexec)
and by the single-process reference computed in tests/distributed/test_distributed.py."""
import numpy as np

import minitorch_alex as mt
import minitorch_alex.distributed as dist
import minitorch_alex.nn as nn
import minitorch_alex.nn.functional as F
from minitorch_alex.data.loader import StoreLoader
from minitorch_alex.data.store import StoreSplit

# The ranks run with MINITORCH_ALEX_BACKEND=reference (set by tests/distributed/test_distributed.py's mpiexec:
# no numba compile in every rank); the single-process side pins the same backend with
# mt.config.using. Setting the variable here, at import, would leak into pytest's environment
# and so into every later test's subprocesses.

N_TRAIN, N_VAL, SIZE, CROP, CLASSES = 21, 13, 10, 8, 5
BATCH, VAL_BATCH, EPOCHS, SEED = 8, 4, 2, 7  # 21 = 8 + 8 + 5: the last batch splits 3 / 2 over 2 ranks


def make_split(n, seed):
    """Random images (n, SIZE, SIZE, 3) uint8 with real mean and PCA statistics."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return StoreSplit(images=images, labels=rng.integers(0, CLASSES, n).astype(np.int64),
                      mean=images.mean(axis=0).astype(np.float32),
                      eigvals=np.array([0.05, 0.01, 0.002], np.float32), eigvecs=q.astype(np.float32))


def make_model(seed, dtype=np.float64):
    """conv-relu-pool-conv-relu-linear (no dropout): (N, 3, 8, 8) -> (N, 5)."""
    mt.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1, dtype=dtype), nn.ReLU(), nn.Flatten(),
                         nn.Linear(6 * 4 * 4, CLASSES, dtype=dtype))


def step(model, optimizer, images, labels):
    dtype = next(model.parameters()).dtype
    loss = F.cross_entropy(model(mt.tensor(images.astype(dtype))), labels)
    loss.backward()
    return loss


def train_single(train_split, dtype=np.float64):
    """The 1-rank run: the ordinary StoreLoader with the global batch."""
    model = make_model(100, dtype)
    opt = mt.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = StoreLoader(train_split, BATCH, train=True, seed=SEED, crop=CROP)
    for epoch in range(EPOCHS):
        loader.set_epoch(epoch)
        for images, labels in loader:
            step(model, opt, images, labels)
            opt.step()
            opt.zero_grad()
    return model


def train_distributed(train_split, mode, world, dtype=np.float64):
    """The N-rank run: each rank starts from different weights, broadcast from rank 0."""
    model = make_model(100 + world.rank, dtype)
    dist.broadcast_parameters(model.parameters())
    opt = mt.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sampler = dist.ShardedSampler(len(train_split), BATCH, seed=SEED)
    averager = dist.GradientAverager(model.parameters(), mode=mode, bucket_mb=0.0005)  # several buckets
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        for shard in sampler:
            images, labels = dist.shard_batch(train_split, shard, SEED, crop=CROP)
            with averager.sync(shard.weight):
                if len(shard):
                    step(model, opt, images, labels)
            opt.step()
            opt.zero_grad()
    averager.close()
    return model


def evaluate(model, split, world=None):
    """(correct, total) of top-1 over ``split`` (centre crops), this rank's shards summed over ranks."""
    sampler = dist.ShardedSampler(len(split), VAL_BATCH, shuffle=False,
                                  rank=None if world else 0, world_size=None if world else 1)
    correct = total = 0
    with mt.no_grad():
        for shard in sampler:
            images, labels = dist.shard_batch(split, shard, SEED, train=False, crop=CROP)
            if len(shard):
                pred = model(mt.tensor(images.astype(np.float64))).data.argmax(axis=1)
                correct += int((pred == labels).sum())
                total += len(shard)
    if world is None:
        return np.array([correct, total])
    return dist.all_reduce_sum([correct, total])


def parameters(model):
    return {name: p.data for name, p in model.named_parameters()}
