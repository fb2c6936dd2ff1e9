"""Your own network, written as for PyTorch: a small CNN with batch normalisation for 28 x 28
images (Fashion-MNIST), AdamW, a linear warm-up then a cosine schedule, gradient clipping, label
smoothing and a TensorDataset loader.

    python examples/small_cnn.py                     # Fashion-MNIST (apt-get install dataset-fashion-mnist)
    python examples/small_cnn.py --synthetic         # generated stand-in data, no download
    python examples/small_cnn.py --epochs 1 --limit 2000

The model and the training step take the framework as an argument (``mt`` or ``torch``): the same
lines build and train both, which is how tests/examples/test_small_cnn.py holds the first steps to
PyTorch's in float64.
"""
from __future__ import annotations

import argparse
import math
import time

import _script

_script.import_package()  # a bad MINITORCH_ALEX_* variable: one line, exit 2

import numpy as np  # noqa: E402

import minitorch_alex as mt  # noqa: E402


def make_model(nn, classes=10):
    """(N, 1, 28, 28) -> (N, classes): two conv blocks (conv, batch norm, ReLU, 2x2 max pool), one
    hidden layer."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 14 x 14
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 7 x 7
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, classes))


def make_training(lib, model, steps, lr=2e-3, warmup=None):
    """(optimizer, schedule, loss): AdamW, a linear warm-up over ``warmup`` steps (default 5% of
    them) then a cosine to 0, cross-entropy with label smoothing 0.1."""
    warmup = warmup if warmup is not None else max(1, steps // 20)
    opt = lib.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = lib.optim.lr_scheduler
    schedule = sched.SequentialLR(opt, [sched.LinearLR(opt, 0.1, 1.0, warmup),
                                        sched.CosineAnnealingLR(opt, max(1, steps - warmup))], [warmup])
    return opt, schedule, lib.nn.CrossEntropyLoss(label_smoothing=0.1)


def train_step(lib, model, opt, schedule, loss_fn, x, y, max_norm=1.0):
    """One step on a batch (x: (N, 1, 28, 28) float, y: (N,) int64, as ``lib`` tensors); the loss."""
    model.train()
    loss = loss_fn(model(x), y)
    opt.zero_grad()
    loss.backward()
    lib.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    schedule.step()
    return loss


def load(synthetic, limit, seed=0):
    """{'train': (images (N, 1, 28, 28) float32 in [0, 1] standardised, labels (N,) int64), 'val': ...}."""
    if synthetic:
        rng = np.random.default_rng(seed)
        labels = {s: rng.integers(0, 10, n) for s, n in (("train", 6000), ("val", 1000))}
        # class c: a bright square at one of 10 places over noise
        images = {s: rng.random((len(y), 28, 28), dtype=np.float32) * 0.3 for s, y in labels.items()}
        for s, y in labels.items():
            for i, c in enumerate(y):
                r, q = divmod(int(c), 5)
                images[s][i, 4 + 12 * r:12 + 12 * r, 1 + 5 * q:6 + 5 * q] += 0.7
        data = {s: (images[s], labels[s]) for s in labels}
    else:
        data = {s: (x.astype(np.float32) / 255, y) for s, (x, y) in mt.data.load_fashion_mnist().items()}
    mean, std = data["train"][0].mean(), data["train"][0].std()
    return {s: (((x - mean) / std)[:limit, None], y[:limit]) for s, (x, y) in data.items()}


@mt.no_grad()
def accuracy(model, images, labels, batch=500):
    model.eval()
    right = sum(int((model(mt.tensor(images[i:i + batch])).argmax(dim=1).numpy() == labels[i:i + batch]).sum())
                for i in range(0, len(labels), batch))
    return right / len(labels)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--limit", type=int, default=None, help="use only the first N images of each split")
    p.add_argument("--synthetic", action="store_true", help="generated data instead of Fashion-MNIST")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from minitorch_alex.data import DataLoader, TensorDataset

    data = load(args.synthetic, args.limit, args.seed)
    mt.manual_seed(args.seed)
    model = make_model(mt.nn)
    loader = DataLoader(TensorDataset(*data["train"]), batch_size=args.batch_size, shuffle=True, seed=args.seed)
    opt, schedule, loss_fn = make_training(mt, model, args.epochs * len(loader), args.lr)
    print(f"{len(data['train'][1])} training images, {len(data['val'][1])} test images; "
          f"{sum(p.size for p in model.parameters()):,} parameters")
    start = time.perf_counter()
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        total, seen = 0.0, 0
        for x, y in loader:
            loss = train_step(mt, model, opt, schedule, loss_fn, mt.tensor(x), mt.tensor(y))
            total, seen = total + loss.item() * len(y), seen + len(y)
        print(f"epoch {epoch + 1}/{args.epochs}: training loss {total / seen:.4f}, "
              f"test accuracy {accuracy(model, *data['val']):.2%} ({time.perf_counter() - start:.0f} s)")
    return accuracy(model, *data["val"])


if __name__ == "__main__":
    acc = main()
    if not math.isfinite(acc):
        raise SystemExit(1)
