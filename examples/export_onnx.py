"""Export a checkpoint (or a freshly initialised model) to ONNX, for onnxruntime and friends.

    python examples/export_onnx.py --checkpoint runs/alexnet/best.npz --out alexnet.onnx
    python examples/export_onnx.py --arch alexnet-torchvision --num-classes 1000 --out tv.onnx

Input ``images`` (N, 3, 224, 224) float32, preprocessed as for training (``Classifier.preprocess``);
output ``logits`` (N, num_classes). Needs ``pip install onnx``. The file is written atomically
(a temporary beside it, then a rename); a bad flag (``--out`` a folder or in a missing folder,
``--num-classes 0``) or a failure ends with one line: exit status 2 for a flag, 1 otherwise.
"""
from __future__ import annotations

import os
import sys

import _script

_script.import_package()  # a bad MINITORCH_ALEX_* variable: one line, exit 2

import minitorch_alex as mt  # noqa: E402
from minitorch_alex.train.cli import one_line_error  # noqa: E402
from minitorch_alex.train.options import OneLineParser, UsageError, integer_in  # noqa: E402


def _check_out(out):
    if os.path.isdir(out):
        raise UsageError(f"--out: a folder (expected the path of a file such as model.onnx vs the folder {out!r})")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UsageError(f"--out: no such folder (expected an existing folder for the file vs {folder!r})")


def main(argv=None):
    parser = OneLineParser(prog="export_onnx.py", description="Export AlexNet to an ONNX file.")
    parser.add_argument("--checkpoint", help="a checkpoint (.npz); without it the model is freshly initialised")
    parser.add_argument("--arch", default="alexnet", choices=sorted(mt.models.ARCHITECTURES),
                        help="architecture when no checkpoint is given (default alexnet)")
    parser.add_argument("--num-classes", type=integer_in(1), default=1000, help="classes when no checkpoint is given")
    parser.add_argument("--out", required=True, help="the .onnx file to write (in an existing folder)")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        _check_out(args.out)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        metadata = None
        if args.checkpoint:
            model, meta = mt.models.model_from_checkpoint(args.checkpoint)
            # classes, mean, input scale, sizes: in the file's metadata_props
            metadata = mt.models.classifier.inference_metadata(meta)
        else:
            model = mt.models.get_model(args.arch, num_classes=args.num_classes)
        mt.onnx.export(model, args.out, metadata=metadata)
    except Exception as exc:  # noqa: BLE001 (one line, not a traceback)
        if args.debug:
            raise
        print(f"error: {one_line_error(exc)}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"wrote {args.out}: {type(model).__name__}, {model.num_parameters():,} parameters")


if __name__ == "__main__":
    main()
