"""What a training run prints, as text from numbers (the numbers: :mod:`.metrics`): the line of
each epoch and the table at the end, the plain progress line of a run without a terminal and the
fields of its progress bar on one, the warning of a loss still at chance level, and the echo of
the ranks that print nothing."""
from __future__ import annotations

import math
import sys


def silent(*args, **kwargs):
    """The echo of ranks other than 0."""


def use_bars(cfg):
    """Progress bars only on a terminal: in a redirected log they are ``\\r`` fragments (plain
    lines every ``print_freq`` steps are printed instead)."""
    return bool(cfg.progress) and sys.stdout.isatty()


def progress_bar(iterable, enabled, **kw):
    """``iterable`` under a tqdm bar when ``enabled``, else as it is."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


def duration(seconds):
    """"1h05m" from an hour on, else "4m07s"."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def has_top5(num_classes):
    """Top-5 error says something only with more than 5 classes (with 5 or fewer it is always 0)."""
    return num_classes is None or num_classes > 5


def errors_text(top1, top5, num_classes=None, digits=1):
    """"top-1/top-5 err 12.3%/4.5%", or "top-1 err 12.3%" when top-5 says nothing (``has_top5``)."""
    if has_top5(num_classes):
        return f"top-1/top-5 err {100 * top1:.{digits}f}%/{100 * top5:.{digits}f}%"
    return f"top-1 err {100 * top1:.{digits}f}%"


def lr_text(row):
    """The epoch's lr: "0.01", or "0.0025->0.0075" (its first step's, then its last step's) when a
    warm-up or the cosine schedule changed it during the epoch."""
    first = row.get("lr_first", row["lr"])
    return f"{row['lr']:.2g}" if f"{first:.2g}" == f"{row['lr']:.2g}" else f"{first:.2g}->{row['lr']:.2g}"


def format_row(row, num_classes=None):
    parts = [f"epoch {row['epoch']:3d}", f"lr {lr_text(row)}", f"loss {row['train_loss']:.4f}",
             "train " + errors_text(row["train_top1_err"], row["train_top5_err"], num_classes)]
    if "val_top1_err" in row:
        parts.append("val " + errors_text(row["val_top1_err"], row["val_top5_err"], num_classes))
    parts.append(f"{row['images_per_s']:.1f} img/s")
    if "cross_device_bytes_per_step" in row:
        parts.append(f"{row['cross_device_bytes_per_step'] / 2**20:.1f} MiB across devices/step")
    return " | ".join(parts)


def summary_table(rows, num_classes=None):
    """A plain-text table of every epoch (top-5 only with more than 5 classes); lr: the lr of the
    epoch's last step."""
    top5 = has_top5(num_classes)
    head = (f"{'epoch':>5} {'end lr':>8} {'loss':>8} {'train top1':>10} {'val top1':>9}" + (f" {'val top5':>9}" if top5 else "")
            + f" {'img/s':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['epoch']:5d} {r['lr']:8.2g} {r['train_loss']:8.4f} {100 * r['train_top1_err']:9.1f}% "
                     f"{100 * r.get('val_top1_err', float('nan')):8.1f}% "
                     + (f"{100 * r.get('val_top5_err', float('nan')):8.1f}% " if top5 else "")
                     + f"{r['images_per_s']:7.1f}")
    return "\n".join(lines)


def position_text(epoch, batch, epochs, steps_per_epoch=None):
    """Where a run stands after ``epoch`` whole epochs and ``batch`` steps of the next, numbered as
    the progress lines are: "epoch 2/8, step 40/160" in the middle of an epoch, "epoch 2/8 done" at
    its end."""
    if not batch:
        return f"epoch {epoch}/{epochs} done" if epoch else "before the first step"
    total = f"/{steps_per_epoch}" if steps_per_epoch else ""
    return f"epoch {epoch + 1}/{epochs}, step {batch}{total}"


def diverged_text(value, step, every, epoch, batch, last_checkpoint):
    """Why a run stopped: its loss became ``value`` (NaN or infinite) at training step ``step`` + 1,
    or in the ``every`` steps up to it (their sums read together on a GPU); ``last_checkpoint``:
    (path, epoch, step) or None."""
    good = (f"the last good checkpoint is {last_checkpoint[0]} (step {last_checkpoint[2]})"
            if last_checkpoint else "no checkpoint was written before it")
    when = (f"at step {step + 1}" if every == 1 else
            f"in steps {max(step + 2 - every, 1)}-{step + 1} (read every {every} steps on the GPU)")
    return (f"the loss became {value} {when} (epoch {epoch + 1}, batch {batch + 1}); "
            f"stopped without saving: {good}")


def progress_line(epoch, epochs, batch, stop, run, elapsed, data_time, images, steps, num_classes, eta):
    """One plain line (pytorch/examples style) when there is no progress bar, at ``batch`` of ``stop``
    in ``epoch`` (counted from 0) of ``epochs``: the time a step took and waited for data over the
    ``steps`` of this process, the epoch's running sums ``run``, ``images`` a second, and ``eta``
    (seconds), the whole run's."""
    per_step = elapsed / max(steps, 1)
    seen = max(run["seen"], 1)
    return (f"epoch {epoch + 1}/{epochs} step {batch}/{stop} | {per_step:.3f} s/step "
            f"(data {data_time / max(steps, 1):.3f} s) | loss {run['loss_sum'] / seen:.4f} | "
            + errors_text(1 - run["correct1"] / seen, 1 - run["correct5"] / seen, num_classes)
            + f" | {images / max(elapsed, 1e-9):.1f} img/s | ETA {duration(eta)}")


def bar_fields(run, images, elapsed, eta):
    """The fields a progress bar shows after its own (tqdm's time left is the epoch's; ``run_ETA``
    is the whole run's)."""
    return dict(loss=f"{run['loss_sum'] / run['seen']:.3f}", top1_err=f"{1 - run['correct1'] / run['seen']:.3f}",
                img_s=f"{images / elapsed:.1f}", run_ETA=duration(eta))


def chance_warning(run, num_classes, steps, init, pretrained):
    """One line when the loss of the running sums ``run`` has not moved from chance level (a small
    folder with the paper's settings does that: tiny initial weights start slowly), saying what to
    try; None when it has."""
    loss, chance = run["loss_sum"] / max(run["seen"], 1), math.log(max(num_classes, 2))
    if loss < 0.95 * chance:
        return None
    advice = [] if pretrained else ["fine-tune ImageNet weights (--pretrained, see the README)"]
    if init != "kaiming" and not pretrained:
        advice.insert(0, "the built-in set's short-run settings (--init kaiming --input-scale 0.015625 "
                         "--warmup 50 --batch-size 32)")
    advice.append("a lower --lr" if loss > 1.1 * chance else "a higher --lr or more epochs")
    return (f"warning: the training loss is {loss:.3f} after {steps} steps, still at chance level "
            f"(ln {num_classes} = {chance:.3f}): the network is not learning yet; try " + " or ".join(advice))
