"""Classify images with a trained (or converted) AlexNet checkpoint: the top-5 classes of each.

    python examples/predict.py cat.jpg dog.png --checkpoint runs/alexnet/best.npz
    python examples/predict.py cat.jpg --checkpoint best.npz --ten-crop --topk 3
    python examples/predict.py cat.jpg --checkpoint best.npz --mean data/imagenet-store/mean.npy

The checkpoint must carry its classes and mean image (``Classifier`` lists the meta it reads);
``--mean`` supplies the mean (a .npy of the data store, S x S x 3) when it does not.
"""
from __future__ import annotations

import argparse
import os
import sys

try:
    import minitorch_alex  # noqa: F401
except ImportError:  # a source checkout that was not installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from minitorch_alex.models import Classifier  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print the top-k classes of each image.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint (.npz) written by training or the converter")
    parser.add_argument("--topk", type=int, default=5, help="how many classes to print per image (default 5)")
    parser.add_argument("--ten-crop", action="store_true", help="average the paper's ten crops (slower, a little better)")
    parser.add_argument("--mean", help="a .npy mean image (S x S x 3, 0..255) for checkpoints that carry none")
    args = parser.parse_args(argv)
    mean = np.load(args.mean, allow_pickle=False) if args.mean else None
    clf = Classifier.from_checkpoint(args.checkpoint, mean=mean)
    for path in args.images:
        print(path)
        for name, prob in clf.predict(path, topk=args.topk, ten_crop=args.ten_crop):
            print(f"  {100 * prob:6.2f}%  {name}")


if __name__ == "__main__":
    main()
