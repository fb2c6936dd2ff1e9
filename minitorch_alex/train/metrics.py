"""The numbers of a training run: top-k correct counts, each step's sums (loss, top-1, top-5; on a GPU
without reading it) and the epoch's running sums, and the metrics log (JSONL and CSV) of the run."""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os

import numpy as np


def topk_correct(scores, labels, ks=(1, 5)):
    """Number of rows whose label is among the k highest ``scores`` (N, C), for each k."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    k_max = min(max(ks), scores.shape[1])
    top = np.argpartition(-scores, k_max - 1, axis=1)[:, :k_max]
    # argpartition leaves the top k unordered: order them to take the top 1, 2, ...
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, axis=1)
    hits = top == labels[:, None]
    return {k: int(hits[:, : min(k, k_max)].any(axis=1).sum()) for k in ks}


def step_sums(logits, loss, labels):
    """[loss * n, top-1 correct, top-5 correct] of one step (float64), where the logits are:
    a NumPy array on the host, a device array on a GPU (no read of the device)."""
    scores = logits.data
    if not hasattr(scores, "__cuda_array_interface__"):
        correct = topk_correct(np.asarray(scores), labels)
        return np.array([float(loss.item()) * len(labels), correct[1], correct[5]])
    return device_step_sums(logits.xp, scores, loss.data, labels)


def device_step_sums(xp, scores, loss, labels):
    """[loss * n, top-1 correct, top-5 correct] (float64) of (N, C) ``scores`` on ``xp``'s device,
    without reading it: the ranks of the top k by a stable sort (ties: the lower class first, as
    ``topk_correct``'s argpartition may not; only exact ties can differ)."""
    n, classes = scores.shape
    k = min(5, classes)
    top = xp.argsort(-scores, axis=1)[:, :k]
    hits = top == xp.asarray(np.asarray(labels))[:, None]
    out = xp.zeros(3, dtype=xp.float64)
    out[0] = loss.astype(xp.float64) * n
    out[1] = hits[:, :1].any(axis=1).sum()
    out[2] = hits.any(axis=1).sum()
    return out


def fresh_running():
    """The running sums of an epoch before its first step."""
    return {"loss_sum": 0.0, "seen": 0, "correct1": 0, "correct5": 0}


def add_to_running(run, sums):
    """Add read step sums [loss sum, images, top-1, top-5 correct, ...] to the epoch's running
    sums; returns the images they cover."""
    run["loss_sum"] += float(sums[0])
    run["seen"] += int(sums[1])
    run["correct1"] += int(sums[2])
    run["correct5"] += int(sums[3])
    return int(sums[1])


def epoch_metrics(run, images, seconds):
    """The training metrics of an epoch from its running sums ``run``; ``images`` a second over
    ``seconds``: those this process trained in them."""
    seen = max(run["seen"], 1)
    return {"train_loss": run["loss_sum"] / seen, "train_top1_err": 1 - run["correct1"] / seen,
            "train_top5_err": 1 - run["correct5"] / seen, "images_per_s": images / max(seconds, 1e-9),
            "train_seconds": seconds}


class ValidationSums:
    """The loss sum, images and top-1/top-5 correct of a validation pass so far."""

    def __init__(self, loss_sum=0.0, seen=0, correct1=0, correct5=0):
        self.loss_sum, self.seen, self.correct = loss_sum, int(seen), {1: int(correct1), 5: int(correct5)}

    def add(self, probs, labels):
        """One batch: its class probabilities (N, C) and labels."""
        self.loss_sum += float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-30)).sum())
        self.seen += len(labels)
        for k, c in topk_correct(probs, labels).items():
            self.correct[k] += c

    def values(self):
        """[loss sum, images, top-1 correct, top-5 correct]: what the ranks sum (``ValidationSums(*sums)``)."""
        return [self.loss_sum, self.seen, self.correct[1], self.correct[5]]

    def result(self):
        seen = max(self.seen, 1)
        return {"loss": self.loss_sum / seen, "top1_err": 1 - self.correct[1] / seen,
                "top5_err": 1 - self.correct[5] / seen, "images": self.seen}


class UnreadSums:
    """A rank's step sums (``step_sums``) not read yet, and the images they cover: on a GPU they
    stay on the device, added up there, until a step reads them (``read``)."""

    def __init__(self):
        self.sums, self.images = None, 0

    def add(self, sums, images):
        self.sums = sums if self.sums is None else self.sums + sums
        self.images += images

    def read(self, stop_asked=False):
        """The sums so far as host floats [loss sum, images, top-1, top-5 correct, ``stop_asked``]
        (the one read of the device); empties them."""
        out = np.zeros(5)
        if self.sums is not None:
            host = self.sums.get() if hasattr(self.sums, "get") else np.asarray(self.sums)
            out[0], out[2], out[3] = host
        out[1], out[4] = self.images, float(stop_asked)
        self.sums, self.images = None, 0
        return out


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` and rewrites ``metrics.csv``.
    ``write=False`` keeps the rows in memory only (the ranks other than 0 of a data-parallel run)."""

    def __init__(self, folder, resume=False, write=True):
        self.write = write
        if write:
            os.makedirs(folder, exist_ok=True)
        self.jsonl, self.csv = os.path.join(folder, "metrics.jsonl"), os.path.join(folder, "metrics.csv")
        self.rows = []
        if resume and os.path.exists(self.jsonl):
            with open(self.jsonl, encoding="utf-8") as f:
                lines = [line for line in f if line.strip()]
            for i, line in enumerate(lines):
                try:
                    self.rows.append(json.loads(line))
                except ValueError:
                    if i != len(lines) - 1:  # only the last line can be cut short (a killed append)
                        raise ValueError(f"{self.jsonl}:{i + 1}: not a JSON row") from None
        elif write:
            _replace_text(self.jsonl, "")

    def truncate(self, epoch):
        """Forget rows after ``epoch`` (a resumed run redoes them); atomic, like every rewrite here."""
        self.rows = [r for r in self.rows if r["epoch"] <= epoch]
        if self.write:
            _replace_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in self.rows))

    def append(self, row: dict):
        self.rows.append(row)
        if not self.write:
            return
        line = json.dumps(row) + "\n"
        # O_NOFOLLOW: a metrics.jsonl that is a symlink is refused, never appended through
        fd = os.open(self.jsonl, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with _named_enospc(self.jsonl, len(line)), open(fd, "a", encoding="utf-8") as f:
            f.write(line)
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        _replace_text(self.csv, buf.getvalue())


def _replace_text(path, text):
    """Write ``text`` to ``path`` atomically (``serialization.write_atomic``): a crash leaves old or new."""
    from ..serialization import write_atomic

    write_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def _named_enospc(path, nbytes):
    """A full disk names the file (a bare ENOSPC from write() does not)."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            from ..serialization import no_space

            raise no_space(path, nbytes, exc) from None
        raise
