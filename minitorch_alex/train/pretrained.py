"""Fine-tuning (``--pretrained``, ``--freeze``, ``--head-lr-mult``): the layers of each architecture by
name, a pretrained checkpoint's layers loaded where they fit, the optimizer's groups of frozen, new
and other layers, and the start-up line that says which is which."""
from __future__ import annotations

import os

import numpy as np

# the layers of each architecture, input to output; the paper's names work for either (by position)
ARCH_LAYERS = {
    "alexnet": ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"),
    "alexnet-torchvision": ("features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1",
                            "classifier.4", "classifier.6"),
}


def layers_up_to(arch, upto, layers):
    """The layers of ``layers`` (in model order, repeats allowed) from the first up to ``upto``, which
    is one of them or a paper name (``conv5``: torchvision's ``features.10``). The last layer (the
    classifier head) cannot be frozen."""
    order = list(dict.fromkeys(layers))
    paper = ARCH_LAYERS["alexnet"]
    layer = upto
    if upto not in order and upto in paper and arch in ARCH_LAYERS:
        layer = ARCH_LAYERS[arch][paper.index(upto)]
    if layer not in order[:-1]:
        names = ", ".join(order[:-1] + ([n for n in paper[:-1] if n not in order] if arch in ARCH_LAYERS else []))
        raise ValueError(f"--freeze: no such layer before the head (expected one of {names} vs {upto!r})")
    return order[:order.index(layer) + 1]


def load_pretrained(model, path):
    """Fine-tuning: copy into ``model`` every tensor of the checkpoint at ``path`` (a training
    checkpoint, or examples/convert_torchvision.py's) whose name and shape match; the others (the
    classifier head, for other classes) keep their new initial values. The copied ones must have
    the model's dtype and be finite. Returns ``{"path", "loaded": names, "new": layers,
    "unused": the checkpoint's names not loaded}``."""
    from ..serialization import load

    path = os.fspath(path)
    try:
        source = load(path, state_dict=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"--pretrained: {path} does not exist") from None
    except ValueError as exc:
        raise ValueError(f"--pretrained: {exc}") from None
    own = model.state_dict()
    merged, loaded, new = {}, [], []
    for name, value in own.items():
        theirs = source.get(name)
        if theirs is None or tuple(theirs.shape) != tuple(value.shape):
            merged[name] = value
            new.append(name)
            continue
        if np.dtype(theirs.dtype) != np.dtype(value.dtype):
            raise ValueError(f"--pretrained: {path}: {name} has another dtype (expected the model's {value.dtype} "
                             f"vs {theirs.dtype})")
        if not np.isfinite(theirs).all():
            raise ValueError(f"--pretrained: {path}: {name} holds NaN or infinite values (expected finite weights)")
        merged[name] = theirs
        loaded.append(name)
    if not loaded:
        raise ValueError(f"--pretrained: no tensor of {path} fits this model (expected names and shapes such as "
                         f"{next(iter(own))} {tuple(own[next(iter(own))].shape)} vs {list(source)[:2]})")
    model.load_state_dict(merged)
    return {"path": path, "loaded": loaded, "new": list(dict.fromkeys(n.rsplit(".", 1)[0] for n in new)),
            "unused": [n for n in source if n not in loaded]}


def param_groups(model, params, cfg):
    """The optimizer's parameter groups of ``params`` (``model``'s, in its order) for the
    ``TrainConfig`` ``cfg``: the layers up to ``cfg.freeze`` at lr 0 (frozen: no update, no decay),
    the new ones (``cfg.new_layers``) at lr x ``head_lr_mult``. Groups are runs of parameters with
    one multiplier, in the model's order, so checkpoints keep the velocities' order. Returns
    ``(groups, frozen layer names, the lr multiplier of each group)``."""
    if not cfg.freeze and (not cfg.new_layers or cfg.head_lr_mult == 1):
        return [{"params": params, "lr": cfg.lr}], [], [1.0]
    names = [n for n, _ in model.named_parameters()]
    if len(names) != len(params):
        raise ValueError(f"--freeze/--head-lr-mult: the model's {len(names)} named parameters do not match the "
                         f"optimizer's {len(params)}")
    layers = [n.rsplit(".", 1)[0] for n in names]
    frozen = layers_up_to(cfg.arch, cfg.freeze, layers) if cfg.freeze else []
    new = set(cfg.new_layers)
    groups, mults = [], []
    for p, layer in zip(params, layers):
        mult = 0.0 if layer in frozen else float(cfg.head_lr_mult) if layer in new else 1.0
        if not mults or mults[-1] != mult:
            groups.append({"params": [], "lr": cfg.lr * mult})
            mults.append(mult)
        groups[-1]["params"].append(p)
    return groups, frozen, mults


def pretrained_line(trainer):
    """The start-up line of a fine-tuning run: what was loaded, what is new, what is frozen."""
    report, cfg = trainer.pretrained, trainer.cfg
    total = len(trainer.model.state_dict())
    line = (f"pretrained: {len(report['loaded'])} of {total} tensors from {report['path']} ({cfg.arch}); new for the "
            f"data's {len(trainer.classes)} classes: {', '.join(report['new']) or 'none'} (lr x {cfg.head_lr_mult:g})")
    if trainer.frozen:
        line += f"; frozen (no updates, no weight decay): {', '.join(trainer.frozen)}"
    return line
