"""Export a checkpoint (or a freshly initialised model) to ONNX, for onnxruntime and friends.

    python examples/export_onnx.py --checkpoint runs/alexnet/best.npz --out alexnet.onnx
    python examples/export_onnx.py --arch alexnet-torchvision --num-classes 1000 --out tv.onnx

Input ``images`` (N, 3, 224, 224) float32, preprocessed as for training (``Classifier.preprocess``);
output ``logits`` (N, num_classes). Needs ``pip install onnx``.
"""
from __future__ import annotations

import argparse
import os
import sys

try:
    import minitorch_alex as mt
except ImportError:  # a source checkout that was not installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import minitorch_alex as mt


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export AlexNet to an ONNX file.")
    parser.add_argument("--checkpoint", help="a checkpoint (.npz); without it the model is freshly initialised")
    parser.add_argument("--arch", default="alexnet", choices=sorted(mt.models.ARCHITECTURES),
                        help="architecture when no checkpoint is given (default alexnet)")
    parser.add_argument("--num-classes", type=int, default=1000, help="classes when no checkpoint is given")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    args = parser.parse_args(argv)
    metadata = None
    if args.checkpoint:
        model, meta = mt.models.model_from_checkpoint(args.checkpoint)
        metadata = mt.models.classifier.inference_metadata(meta)  # classes, mean, input scale, sizes: in the file's metadata_props
    else:
        model = mt.models.get_model(args.arch, num_classes=args.num_classes)
    mt.onnx.export(model, args.out, metadata=metadata)
    print(f"wrote {args.out}: {type(model).__name__}, {model.num_parameters():,} parameters")


if __name__ == "__main__":
    main()
