"""Inference: a trained network plus what it needs to read an image, loaded from one checkpoint.

    clf = mt.models.Classifier.from_checkpoint("runs/alexnet/best.npz")
    clf.predict("cat.jpg")                  # [("tabby, tabby cat", 0.61), ...] the top 5
    clf.predict(["a.jpg", "b.jpg"], topk=1, ten_crop=True)

An image goes through the validation pipeline of training: shorter side to ``image_size`` (256)
and the central square (``data.decode``), minus the mean (the training set's mean image, or a
per-channel mean), divided by ``std`` (1 unless the checkpoint says otherwise, e.g. torchvision's
weights), times ``input_scale``; then the central ``crop`` (224), or the paper's ten crops with
their softmax outputs averaged.

Checkpoint meta read here (``minitorch_alex.checkpoint`` writes meta as JSON): ``classes`` (the labels in
output order), optional ``class_names`` (human-readable, same order), the mean (the array
``data/mean``, S x S x 3, as the trainer writes it; else meta ``mean``, 3 numbers or an S x S x 3
nested list; else ``mean_rgb``; 0..255 units), optional ``std``, ``input_scale`` (or
``config.input_scale``), ``image_size``, ``crop_size`` (or ``crop``), ``arch`` (or ``config.arch``;
default the paper's ``alexnet``).
"""
from __future__ import annotations

import os

import numpy as np

from ..autograd import no_grad
from ..ops.activation import softmax
from ..tensor import Tensor

MEAN_ENTRY = "data/mean"  # the training mean image the trainer stores beside the weights


def read_checkpoint(path, build):
    """``(model, meta)``: ``build(meta)`` makes the model, the checkpoint's weights go into it.

    The one place inference touches the checkpoint format (``minitorch_alex.checkpoint.load_checkpoint``)."""
    from ..checkpoint import load_checkpoint

    meta = load_checkpoint(path)
    model = build(meta)
    arrays = load_checkpoint(path, model, arrays=(MEAN_ENTRY,)).get("arrays") or {}
    if MEAN_ENTRY in arrays:
        meta["arrays"] = arrays
    return model, meta


def _setting(meta, key, default=None):
    """``meta[key]``, else the training configuration's ``key``, else ``default``."""
    if meta.get(key) is not None:
        return meta[key]
    return (meta.get("config") or {}).get(key, default)


def _build_from_meta(meta):
    from .factory import get_model

    classes = meta.get("classes") or []
    num_classes = int(meta.get("num_classes") or len(classes))
    if num_classes < 1:
        raise ValueError("Classifier: the checkpoint names no classes (meta 'classes' or 'num_classes')")
    # one device whatever the run used: a two-tower checkpoint holds the grouped model's state dict
    return get_model(_setting(meta, "arch", "alexnet"), num_classes=num_classes).eval()


def model_from_checkpoint(path):
    """``(model, meta)``: the checkpoint's architecture (``arch``, default the paper's) on one device,
    in eval mode, with the checkpoint's weights (a two-tower run's included: its state dict is
    the grouped model's)."""
    return read_checkpoint(os.fspath(path), _build_from_meta)


def _mean_of(meta):
    """The checkpoint's mean: the trainer's ``data/mean`` image, else meta ``mean``, else ``mean_rgb``."""
    arrays = meta.get("arrays") or {}
    if arrays.get(MEAN_ENTRY) is not None:
        return arrays[MEAN_ENTRY]
    if meta.get("mean") is not None:
        return meta["mean"]
    return meta.get("mean_rgb")


def inference_metadata(meta):
    """What a consumer of the exported model needs to feed it, as ONNX ``metadata_props`` (strings;
    lists as JSON): ``classes``, ``class_names``, ``mean`` (per channel, 0..255), ``std``,
    ``input_scale``, ``image_size``, ``crop_size`` and ``preprocessing`` in words. ``meta``: a
    checkpoint's (``model_from_checkpoint``)."""
    import json

    classes = meta.get("classes") or [str(i) for i in range(int(meta.get("num_classes") or 0))]
    out = {"classes": json.dumps(classes), "class_names": json.dumps(meta.get("class_names") or classes)}
    mean = _mean_of(meta)
    if mean is not None:
        out["mean"] = json.dumps(np.asarray(mean, np.float64).reshape(-1, 3).mean(axis=0).round(4).tolist())
    std = np.asarray(meta.get("std") or 1.0, np.float64)
    out["std"] = json.dumps(std.tolist())
    image_size = int(_setting(meta, "image_size", 256))
    crop = int(_setting(meta, "crop_size", None) or _setting(meta, "crop", 224))
    out.update(input_scale=repr(float(_setting(meta, "input_scale", 1.0))), image_size=str(image_size),
               crop_size=str(crop))
    out["preprocessing"] = (f"RGB, shorter side resized to {image_size}, centre {image_size}x{image_size}, "
                            f"(pixel 0..255 - mean) / std * input_scale, centre {crop}x{crop} crop, NCHW float32"
                            + ("; training subtracted the mean image, 'mean' is its per-channel average"
                               if np.ndim(mean) == 3 else ""))
    return out


class Classifier:
    """``model`` (eval mode) with its classes and input convention; see the module docstring."""

    def __init__(self, model, classes, mean, std=1.0, input_scale=1.0, image_size=256, crop=224, class_names=None):
        self.model = model.eval()
        self.classes = list(classes)
        self.class_names = list(class_names) if class_names else self.classes
        if len(self.class_names) != len(self.classes):
            raise ValueError(f"Classifier: {len(self.classes)} classes but {len(self.class_names)} class names")
        self.image_size, self.crop = int(image_size), int(crop)
        if not 0 < self.crop <= self.image_size:
            raise ValueError(f"Classifier: crop {self.crop} must be in 1..image_size {self.image_size}")
        self.mean = np.asarray(mean, np.float32)
        if self.mean.shape not in ((3,), (self.image_size, self.image_size, 3)):
            raise ValueError(f"Classifier: mean must be 3 channel values or ({self.image_size}, {self.image_size}, 3), "
                             f"got shape {self.mean.shape}")
        self.std = np.asarray(std, np.float32)
        self.input_scale = float(input_scale)

    @classmethod
    def from_checkpoint(cls, path, mean=None, class_names=None):
        """Load ``path`` (a training or converted checkpoint). ``mean``/``class_names`` override or
        supply what the checkpoint lacks."""
        model, meta = model_from_checkpoint(path)
        if mean is None:
            mean = _mean_of(meta)
        if mean is None:
            raise ValueError(f"Classifier: checkpoint {os.fspath(path)!r} holds no mean image; pass mean= "
                             "(e.g. the data store's mean.npy)")
        classes = meta.get("classes") or [str(i) for i in range(int(meta["num_classes"]))]
        return cls(model, classes, mean, std=meta.get("std") or 1.0, input_scale=_setting(meta, "input_scale", 1.0),
                   image_size=_setting(meta, "image_size", 256),
                   crop=_setting(meta, "crop_size", None) or _setting(meta, "crop", 224),
                   class_names=class_names or meta.get("class_names"))

    # ----- preprocessing ------------------------------------------------------------------------
    def load(self, image):
        """A path, a Pillow image or an (H, W, 3) uint8 array -> (image_size, image_size, 3) uint8."""
        from PIL import Image

        from ..data.decode import load_image, resize_center_crop

        if isinstance(image, (str, os.PathLike)):
            return load_image(image, self.image_size)
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"Classifier: expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
            if image.shape[:2] == (self.image_size, self.image_size):
                return image
            image = Image.fromarray(image)
        if isinstance(image, Image.Image):
            return resize_center_crop(image.convert("RGB"), self.image_size)
        raise TypeError(f"Classifier: expected a path, a PIL image or a uint8 array, got {type(image).__name__}")

    def preprocess(self, image, ten_crop=False):
        """One image -> (1, 3, C, C) float32, or (10, 3, C, C) with ``ten_crop``."""
        from ..data.augment import ten_crop_offsets

        x = (self.load(image).astype(np.float32) - self.mean) / self.std * np.float32(self.input_scale)
        c, mid = self.crop, (self.image_size - self.crop) // 2
        offsets = ten_crop_offsets(self.image_size, c) if ten_crop else [(mid, mid, False)]
        crops = [x[y:y + c, x0:x0 + c][:, ::-1 if flip else 1] for y, x0, flip in offsets]
        return np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2))

    # ----- prediction ---------------------------------------------------------------------------
    @no_grad()
    def probabilities(self, image, ten_crop=False):
        """(num_classes,) softmax probabilities for one image (averaged over the ten crops)."""
        x = self.preprocess(image, ten_crop)
        device = next(self.model.parameters()).device
        probs = softmax(self.model(Tensor(x, device=device)), axis=-1).numpy()
        return probs.mean(axis=0)

    def predict(self, images, topk=5, ten_crop=False):
        """The ``topk`` ``(class name, probability)`` pairs, most likely first, for one image; a list
        of such lists for a list of images."""
        if isinstance(images, (list, tuple)):
            return [self.predict(image, topk, ten_crop) for image in images]
        probs = self.probabilities(images, ten_crop)
        top = np.argsort(-probs, kind="stable")[:topk]
        return [(self.class_names[i], float(probs[i])) for i in top]
