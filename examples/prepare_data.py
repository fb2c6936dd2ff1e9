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
A bad flag, or a failure (a store bigger than the free disk, an unreadable
source), ends with one line on stderr: exit status 2 for a flag, 1 otherwise.
"""

import argparse
import sys

import _script

_script.import_package()  # a bad MINITORCH_ALEX_* variable: one line, exit 2

from minitorch_alex.data import prepare  # noqa: E402
from minitorch_alex.train.cli import one_line_error  # noqa: E402
from minitorch_alex.train.options import OneLineParser, UsageError, cpu_count, integer_in  # noqa: E402

MAX_SIZE = 4096  # px: a 4096 px store is 50 MB per image already


def main(argv=None):
    p = OneLineParser(prog="prepare_data.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="source folder ('-' = the default for fashion-mnist)")
    p.add_argument("out", help="output store folder")
    p.add_argument("--layout", default="imagefolder", choices=["imagefolder", "ilsvrc", "fashion-mnist", "synthetic"])
    p.add_argument("--size", type=integer_in(1, MAX_SIZE), default=256,
                   help=f"side of the stored images, 1..{MAX_SIZE} (default 256)")
    p.add_argument("--workers", type=integer_in(0), default=0,
                   help="decoding processes (default 0 = this one; at most the CPU count)")
    p.add_argument("--max-per-class", type=integer_in(1), default=None, help="keep only the first N images per class")
    p.add_argument("--ground-truth", default=None, help="ILSVRC val ground truth (csv or devkit txt)")
    p.add_argument("--synset-order", default=None, help="ILSVRC devkit class-id order: one synset per line")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store made with other settings")
    p.add_argument("--restart", action="store_true", help="ignore a partial earlier run instead of resuming")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they are drawn only when stderr is a terminal anyway)")
    g = p.add_argument_group("synthetic layout")
    g.add_argument("--num-classes", type=integer_in(1, 100000), default=10)
    g.add_argument("--train-per-class", type=integer_in(1, 10 ** 7), default=300)
    g.add_argument("--val-per-class", type=integer_in(1, 10 ** 7), default=100)
    g.add_argument("--seed", type=integer_in(0), default=0)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = p.parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.workers > cpu_count():
        print(f"warning: --workers {args.workers} is more than the {cpu_count()} CPUs of this machine; "
              f"using {cpu_count()}", file=sys.stderr)
        args.workers = cpu_count()

    synthetic = None
    if args.layout == "synthetic":
        synthetic = {"num_classes": args.num_classes, "train_per_class": args.train_per_class,
                     "val_per_class": args.val_per_class, "seed": args.seed}
    try:
        out = prepare(None if args.source == "-" else args.source, args.out, layout=args.layout, size=args.size,
                      workers=args.workers, max_per_class=args.max_per_class, ground_truth=args.ground_truth,
                      synset_order=args.synset_order, synthetic_options=synthetic, overwrite=args.overwrite,
                      resume=not args.restart, progress=not args.no_progress and sys.stderr.isatty())
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted: the same command again continues where packing stopped", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001 (one line, not a traceback)
        if args.debug:
            raise
        print(f"error: {one_line_error(exc)}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"store ready: {out}")


if __name__ == "__main__":
    main()
