"""Refusals, before any training, of what does not fit the run: labels outside its classes, images
whose crops the model's layers cannot take (``input_sizes``), a checkpoint of another run (other
classes, another input scale) or one that cannot be resumed with these settings."""
from __future__ import annotations

import numpy as np

from ..checkpoint import check_position
from ..data.augment import default_crop


def check_labels(split, num_classes):
    """Refuse a split with a label outside 0..``num_classes`` - 1, naming the first and the count."""
    labels = np.asarray(split.labels)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(f"{getattr(split, 'name', 'split')} labels out of range (expected 0..{num_classes - 1} "
                         f"for {num_classes} classes vs {int(bad[0])}, {len(bad)} such labels)")


def check_input_size(model, arch, store_size):
    """Refuse, before any training, a store whose crops the network cannot take (``input_sizes``
    of the model: AlexNet's fc6 takes 256 x 6 x 6, i.e. 224-px crops of 256-px images), rather
    than fail in the first forward pass ("kernel 3x3 is larger than the padded input 2x2")."""
    def fits(crop):
        return sizes[0] <= crop and (sizes[1] is None or crop <= sizes[1])

    sizes = getattr(model, "input_sizes", None)
    crop = default_crop(store_size)
    if sizes is None or fits(crop):
        return
    ok = [s for s in range(1, 4 * (sizes[1] or sizes[0]) + 2) if fits(default_crop(s))]
    crops = f"crops of >= {sizes[0]} px" if sizes[1] is None else f"crops of {sizes[0]} to {sizes[1]} px"
    stores = f">= {ok[0]} px" if sizes[1] is None else f"{ok[0]} to {ok[-1]} px"
    raise ValueError(f"--arch {arch} needs {crops}, cut from images of {stores} (expected a store of {stores}, "
                     f"the paper's 256, vs {store_size}-px images, giving {crop}-px crops): pack the data again at "
                     "256 px (prepare_data.py --size 256)")


def check_same_run(path, meta, classes, input_scale):
    """Refuse the checkpoint at ``path`` (its ``meta``) unless it was trained on ``classes`` with
    ``input_scale``."""
    if meta["classes"] != classes:
        raise ValueError(f"checkpoint {path} was trained on other classes (expected the data's "
                         f"{len(classes)} {classes[:3]}... vs {len(meta['classes'])} {meta['classes'][:3]}...)")
    scale = meta.get("input_scale", (meta.get("config") or {}).get("input_scale"))
    if scale is not None and scale != input_scale:
        raise ValueError(f"checkpoint {path} was trained with another input scale (expected {scale:g} "
                         f"vs {input_scale:g})")


def check_resumable(path, meta, train_size, batch_size):
    """Refuse to resume a checkpoint whose position does not fit a training split of ``train_size``
    images (``checkpoint.check_position``), or that stopped in the middle of an epoch with another
    batch size."""
    check_position(meta, path, train_size, batch_size)
    old_batch = (meta.get("config") or {}).get("batch_size")
    if meta["batch"] and old_batch is not None and old_batch != batch_size:
        raise ValueError(f"checkpoint {path} stopped in the middle of an epoch with batch size {old_batch}; "
                         f"finishing it needs the same batch size (expected {old_batch} vs {batch_size})")
