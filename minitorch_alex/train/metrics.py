"""Top-k error and the metrics log (JSONL and CSV) of a training run."""
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
