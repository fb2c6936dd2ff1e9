"""Convert torchvision's AlexNet weights into a minitorch_alex checkpoint.

    python examples/convert_torchvision.py --pth alexnet-owt-7be5be79.pth --out alexnet_tv.npz
    python examples/convert_torchvision.py --torchvision --out alexnet_tv.npz   # torchvision's download

The .pth is read with ``torch.load(weights_only=True)``, which refuses pickled code; nothing here is
unpickled by this framework. The checkpoint holds the weights under torchvision's key names and
the meta the ``Classifier`` needs (architecture, classes, torchvision's input normalisation), so

    python examples/predict.py cat.jpg --checkpoint alexnet_tv.npz

prints the top-5 ImageNet classes. Needs PyTorch (and torchvision for ``--torchvision``) once, here.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minitorch_alex.checkpoint import save_checkpoint  # noqa: E402
from minitorch_alex.models import alexnet_torchvision, from_torchvision_state_dict  # noqa: E402
from minitorch_alex.models.alexnet_torchvision import TORCHVISION_MEAN, TORCHVISION_STD  # noqa: E402


def convert(state_dict, out, classes=None):
    """Write torchvision's AlexNet ``state_dict`` (torch tensors or arrays) to the checkpoint ``out``;
    returns the loaded ``AlexNetTorchvision``. ``classes``: names in output order (default: numbers)."""
    state = from_torchvision_state_dict(state_dict)
    num_classes = int(state["classifier.6.weight"].shape[0])
    model = alexnet_torchvision(num_classes=num_classes)
    model.load_state_dict(state)
    classes = list(classes) if classes is not None else [str(i) for i in range(num_classes)]
    if len(classes) != num_classes:
        raise ValueError(f"convert: expected {num_classes} class names, got {len(classes)}")
    # torchvision's preprocessing, in this framework's 0..255 pixel units: (p - 255 m) / (255 s)
    meta = {"arch": "alexnet-torchvision", "num_classes": num_classes, "classes": classes,
            "mean": [255.0 * m for m in TORCHVISION_MEAN], "std": [255.0 * s for s in TORCHVISION_STD],
            "input_scale": 1.0, "image_size": 256, "crop": 224, "source": "torchvision"}
    save_checkpoint(out, model, meta=meta)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description="Convert torchvision AlexNet weights to a minitorch_alex checkpoint.")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pth", help="a torchvision AlexNet state dict saved with torch.save")
    src.add_argument("--torchvision", action="store_true", help="torchvision's pretrained IMAGENET1K_V1 weights")
    parser.add_argument("--classes", help="a text file with one class name per line, in output order")
    parser.add_argument("--out", required=True, help="the checkpoint to write (.npz)")
    args = parser.parse_args(argv)
    import torch  # the one place torch is used: reading torch's file format

    classes = None
    if args.torchvision:
        import torchvision

        weights = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
        state, classes = torchvision.models.alexnet(weights=weights).state_dict(), weights.meta["categories"]
    else:
        state = torch.load(args.pth, map_location="cpu", weights_only=True)
    if args.classes:
        with open(args.classes, encoding="utf-8") as f:
            classes = [line.strip() for line in f if line.strip()]
    model = convert(state, args.out, classes)
    print(f"wrote {args.out}: alexnet-torchvision, {model.num_classes} classes, {model.num_parameters():,} parameters")


if __name__ == "__main__":
    main()
