"""Figures of a run, written as PNG: learning curves, the conv1 filters (the paper's Figure 3)
and top-5 predictions for validation images (Figure 4, left)."""
from __future__ import annotations

import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    """The figure as a PNG at ``path``, through the atomic-write path (a symlink there is
    replaced, never written through)."""
    from ..serialization import atomic_file

    with atomic_file(path) as f:
        fig.savefig(f, dpi=100, format="png")


def plot_curves(rows, path):
    """Loss and top-1/top-5 error per epoch, from the metrics rows."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    if all("val_loss" in r for r in rows):
        ax_loss.plot(epochs, [r["val_loss"] for r in rows], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax_loss.legend()
    for key, style in [("train_top1_err", "C0o-"), ("train_top5_err", "C0s--"), ("val_top1_err", "C1o-"),
                       ("val_top5_err", "C1s--")]:
        if all(key in r for r in rows):
            ax_err.plot(epochs, [100 * r[key] for r in rows], style, label=key.replace("_err", "").replace("_", " "))
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="Top-1 and top-5 error", ylim=(0, 100))
    ax_err.legend()
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_err):  # epochs are whole numbers: no ticks at 1.25, 1.5
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_conv1_filters(weight, path, tower_split=True):
    """The first layer's kernels (O, 3, kh, kw) as an RGB grid, each scaled to [0, 1].

    With ``tower_split`` the first half (tower 0) fills the top rows and the second half the
    bottom rows, as in the paper's Figure 3 (colour-agnostic kernels on one GPU, colour-specific
    on the other)."""
    plt = _pyplot()
    w = np.asarray(weight, dtype=np.float64)
    o = w.shape[0]
    cols = 12 if o % 12 == 0 else int(np.ceil(np.sqrt(o)))
    rows = int(np.ceil(o / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8 + (0.3 if tower_split else 0)))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < o:
            k = w[i].transpose(1, 2, 0)
            k = (k - k.min()) / (k.max() - k.min() + 1e-12)
            ax.imshow(k, interpolation="nearest")
    fig.suptitle(f"conv1: {o} kernels of {w.shape[2]}x{w.shape[3]}x{w.shape[1]}" +
                 (" (tower 0 above, tower 1 below)" if tower_split else ""))
    _save(fig, path)
    plt.close(fig)


def plot_top5(images, labels, probs, class_names, path, count=8):
    """Validation images (uint8 HxWx3) with the five most probable classes as bars; the true
    class is red when it is among them."""
    plt = _pyplot()
    count = min(count, len(images))
    fig, axes = plt.subplots(2, count, figsize=(2.2 * count, 4.6), gridspec_kw={"height_ratios": [3, 2]})
    axes = np.asarray(axes).reshape(2, count)
    for j in range(count):
        ax_img, ax_bar = axes[0, j], axes[1, j]
        ax_img.imshow(images[j])
        ax_img.set_title(_short(class_names[labels[j]]), fontsize=8)
        ax_img.axis("off")
        top = np.argsort(probs[j])[::-1][:5]
        rows = range(len(top))[::-1]
        colors = ["tab:red" if c == labels[j] else "tab:blue" for c in top]
        ax_bar.barh(rows, probs[j][top], color=colors)
        ax_bar.set_yticks(rows, [_short(class_names[c]) for c in top], fontsize=7)
        ax_bar.set_xlim(0, 1)
        ax_bar.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _short(name, width=14):
    return name if len(name) <= width else name[: width - 1] + "…"


def first_filters(model):
    """The first convolution's weight (O, C, kh, kw): ``conv1.weight`` in the paper's AlexNet (both
    towers' filters, as its state_dict joins them), else the first 4-D tensor of the state_dict
    (``features.0.weight`` in torchvision's); None for a model without one."""
    state = model.state_dict()
    return state.get("conv1.weight", next((v for v in state.values() if v.ndim == 4), None))


def top5_sample(split, index, scale, probabilities):
    """What ``plot_top5`` draws of the images ``index`` of ``split``: their centre crops as stored
    (uint8), their labels, and ``probabilities`` (a batch of crops -> class probabilities) of the
    crops as the network takes them (mean subtracted, times ``scale``)."""
    from ..data import center_crop
    from ..data.augment import default_crop

    crop = default_crop(split.size)
    x = center_crop(split.images, split.mean, crop, scale=scale, index=index)
    probs = probabilities(x)
    o = (split.size - crop) // 2
    return np.asarray(split.images[index, o:o + crop, o:o + crop]), np.asarray(split.labels)[index], probs


def write_all(out_dir, rows, model, sample=None, class_names=None):
    """Write curves.png, conv1_filters.png (for a model with a convolution) and (given ``sample``)
    top5.png; returns the paths."""
    paths = []
    if rows:
        paths.append(os.path.join(out_dir, "curves.png"))
        plot_curves(rows, paths[-1])
    conv1 = first_filters(model)
    if conv1 is not None:
        paths.append(os.path.join(out_dir, "conv1_filters.png"))
        plot_conv1_filters(conv1.get() if hasattr(conv1, "get") else conv1, paths[-1])
    if sample is not None:
        paths.append(os.path.join(out_dir, "top5.png"))
        plot_top5(*sample, class_names, paths[-1])
    return paths
