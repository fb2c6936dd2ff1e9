"""Train AlexNet. (Placeholder until the data pipeline lands: a short demo that trains the
paper's network for a few steps on random images and shows the loss falling from ln(C).)"""
import argparse
import math
import time

import numpy as np

import minitorch_alex as mt
import minitorch_alex.nn.functional as F


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5, help="SGD steps on one fixed batch (default 5)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    mt.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = mt.models.alexnet(num_classes=args.classes)
    opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = mt.tensor(rng.standard_normal((args.batch_size, 3, 224, 224)).astype(np.float32))
    y = rng.integers(0, args.classes, args.batch_size)
    print(f"AlexNet, {model.num_parameters():,} parameters; ln({args.classes}) = {math.log(args.classes):.3f}")
    for step in range(args.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        print(f"step {step + 1}/{args.steps}: loss {loss.item():.4f} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
