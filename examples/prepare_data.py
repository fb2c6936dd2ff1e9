"""Build a packed data store for AlexNet training.

Examples::

    # generated data, no download needed (writes JPEGs to data/synthetic-src first)
    python examples/prepare_data.py --layout synthetic data/synthetic-src data/synthetic

    # Fashion-MNIST from Debian's package (apt-get install dataset-fashion-mnist)
    python examples/prepare_data.py --layout fashion-mnist - data/fashion-mnist

    # ImageNet (ILSVRC-2012) with 8 decoding processes
    python examples/prepare_data.py --layout ilsvrc --workers 8 \\
        --synset-order synsets_in_devkit_order.txt /data/imagenet data/imagenet-256

Interrupted runs resume where they stopped when started again with the
same arguments. See ``minitorch_alex.data.prepare`` for the details.
"""

import argparse
import os
import sys

try:
    from minitorch_alex.data import prepare
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from minitorch_alex.data import prepare


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="source folder ('-' = the default for fashion-mnist)")
    p.add_argument("out", help="output store folder")
    p.add_argument("--layout", default="imagefolder", choices=["imagefolder", "ilsvrc", "fashion-mnist", "synthetic"])
    p.add_argument("--size", type=int, default=256, help="side of the stored images (default 256)")
    p.add_argument("--workers", type=int, default=0, help="decoding processes (default 0 = this one)")
    p.add_argument("--max-per-class", type=int, default=None, help="keep only the first N images per class")
    p.add_argument("--ground-truth", default=None, help="ILSVRC val ground truth (csv or devkit txt)")
    p.add_argument("--synset-order", default=None, help="ILSVRC devkit class-id order: one synset per line")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store made with other settings")
    p.add_argument("--restart", action="store_true", help="ignore a partial earlier run instead of resuming")
    g = p.add_argument_group("synthetic layout")
    g.add_argument("--num-classes", type=int, default=10)
    g.add_argument("--train-per-class", type=int, default=300)
    g.add_argument("--val-per-class", type=int, default=100)
    g.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    synthetic = None
    if args.layout == "synthetic":
        synthetic = {"num_classes": args.num_classes, "train_per_class": args.train_per_class,
                     "val_per_class": args.val_per_class, "seed": args.seed}
    out = prepare(None if args.source == "-" else args.source, args.out, layout=args.layout, size=args.size,
                  workers=args.workers, max_per_class=args.max_per_class, ground_truth=args.ground_truth,
                  synset_order=args.synset_order, synthetic_options=synthetic, overwrite=args.overwrite,
                  resume=not args.restart)
    print(f"store ready: {out}")


if __name__ == "__main__":
    main()
