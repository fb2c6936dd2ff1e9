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
import stat
import sys

import _script

_script.import_package()  # a bad MINITORCH_ALEX_* variable: one line, exit 2

import numpy as np  # noqa: E402

from minitorch_alex.data.decode import UnreadableImage  # noqa: E402
from minitorch_alex.models import Classifier  # noqa: E402


def _topk(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer (expected an integer >= 1 vs {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"out of range (expected an integer >= 1 vs {value})")
    return value


def not_an_image_file(path):
    """Why ``path`` cannot be an image file (None if it can): only regular files are opened (a FIFO
    would block forever, a device never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file (expected an image file vs nothing there)"
    except OSError as exc:
        return f"unreadable (expected an image file vs {exc.strerror})"
    if stat.S_ISDIR(mode):
        return "a folder (expected an image file vs a folder)"
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return f"not a regular file (expected an image file vs {kind})"
    return None


def _fail(line, status):
    print(f"error: {line}", file=sys.stderr)
    raise SystemExit(status)


def main(argv=None):
    """Print each image's top classes; one line on stderr per image that cannot be read (the
    others are still classified), exit status 1 if any could not."""
    parser = argparse.ArgumentParser(description="Print the top-k classes of each image.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint (.npz) written by training or the converter")
    parser.add_argument("--topk", type=_topk,
                        help="how many classes to print per image, at most the checkpoint's classes (default 5, or "
                             "every class when there are fewer)")
    parser.add_argument("--ten-crop", action="store_true", help="average the paper's ten crops (slower, a little better)")
    parser.add_argument("--mean", help="a .npy mean image (S x S x 3, 0..255) for checkpoints that carry none")
    args = parser.parse_args(argv)
    try:
        from minitorch_alex.checkpoint import read_meta

        meta = read_meta(args.checkpoint)  # cheap: the classes before any weights are read
        classes = len(meta.get("classes") or []) or int(meta.get("num_classes") or 0)
        if classes and args.topk is not None and args.topk > classes:
            _fail(f"--topk: out of range (expected 1..{classes}, the checkpoint's classes vs {args.topk})", 2)
        mean = None
        if args.mean:
            problem = not_an_image_file(args.mean)
            if problem:
                _fail(f"--mean {args.mean}: {problem.replace('an image file', 'a .npy file')}", 1)
            mean = np.load(args.mean, allow_pickle=False)
        clf = Classifier.from_checkpoint(args.checkpoint, mean=mean)
    except (ValueError, OSError) as exc:
        _fail(str(exc).splitlines()[0], 1)
    topk = args.topk or min(5, len(clf.classes))
    failed = 0
    for path in args.images:
        problem = not_an_image_file(path)
        if problem is None:
            try:
                top = clf.predict(path, topk=topk, ten_crop=args.ten_crop)
            except (UnreadableImage, OSError) as exc:
                problem = f"not a readable image (expected JPEG, PNG, ... vs {str(exc).splitlines()[0]})"
        if problem is not None:
            print(f"error: {path}: {problem}", file=sys.stderr)
            failed += 1
            continue
        print(path)
        for name, prob in top:
            print(f"  {100 * prob:6.2f}%  {name}")
        sys.stdout.flush()
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
