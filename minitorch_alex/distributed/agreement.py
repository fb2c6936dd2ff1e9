"""Every rank runs the same job: what defines the run, compared once at start-up.

Ranks started with other flags, another copy of the data, another checkpoint or another version
of the code would otherwise hang (one rank leaves the loop while the others wait for it in a
collective), fail in MPI ("message sizes do not match") or, worst, train silently on data that
differs. ``check_agreement(world, fields)`` compares an ordered list of named fields over the
ranks with ONE small collective (an ``Allgather`` of a fixed-size byte array: per field an
8-byte digest of its canonical JSON and the first bytes of its value as text, no pickle) and
raises ``Disagreement`` on every rank alike, naming the lowest rank that differs from rank 0 and
the first field that differs, with both values.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

MAX_FIELDS = 64
DIGEST_BYTES, SHOWN_BYTES = 8, 48


class Disagreement(RuntimeError):
    """The ranks do not agree on what defines the run (the same verdict on every rank)."""

    def __init__(self, message, rank, field):
        super().__init__(message)
        self.rank, self.field = rank, field


def canonical(value) -> str:
    """The field's canonical JSON text (keys sorted, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)


def digest(data) -> str:
    """Hex sha256 of bytes, of a NumPy array's bytes, or of a list of either."""
    h = hashlib.sha256()
    for part in data if isinstance(data, (list, tuple)) else [data]:
        h.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else part)
    return h.hexdigest()


def _row(fields):
    if len(fields) > MAX_FIELDS:
        raise ValueError(f"check_agreement: too many fields (expected <= {MAX_FIELDS} vs {len(fields)})")
    row = np.zeros((MAX_FIELDS, DIGEST_BYTES + SHOWN_BYTES), np.uint8)
    for i, (name, value) in enumerate(fields):
        text = canonical(value)
        row[i, :DIGEST_BYTES] = np.frombuffer(hashlib.sha256(f"{name}\0{text}".encode()).digest()[:DIGEST_BYTES],
                                              np.uint8)
        shown = (value if isinstance(value, str) else text).encode("utf-8", "backslashreplace")[:SHOWN_BYTES]
        row[i, DIGEST_BYTES:DIGEST_BYTES + len(shown)] = np.frombuffer(shown, np.uint8)
    return row


def _shown(cell):
    text = bytes(cell[DIGEST_BYTES:]).rstrip(b"\0").decode("utf-8", "replace")
    return text + "..." if cell[-1] else text


def check_agreement(world, fields) -> None:
    """Raise ``Disagreement`` (on every rank) unless every rank passed the same ``fields``:
    a list of ``(name, value)`` pairs in a fixed order, ``value`` any JSON-able value (the
    digest of something large, e.g. a file's, as a string). One ``Allgather`` of
    ``MAX_FIELDS x 56`` bytes per rank; nothing happens in a world of one."""
    if world.size == 1:
        return
    rows = world.allgather(_row(fields))
    for rank in range(1, world.size):
        differs = np.nonzero((rows[rank, :, :DIGEST_BYTES] != rows[0, :, :DIGEST_BYTES]).any(axis=1))[0]
        if len(differs):
            i = int(differs[0])
            name = fields[i][0] if i < len(fields) else f"field {i + 1}"
            raise Disagreement(f"rank {rank} of {world.size} does not agree with rank 0 on {name} (expected rank 0's "
                               f"{_shown(rows[0, i])} vs {_shown(rows[rank, i])}): every rank must run the same "
                               "command, code, data and checkpoint", rank, name)


def code_version() -> str:
    """The version and a digest of the source of this package and of its kernels (every ``.py``,
    ``.cu`` and ``.cuh`` file, by relative path): two ranks running other code differ here."""
    import os

    from .. import __version__

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots = [package]
    try:
        import minitorch_alex_kernels
        roots.append(os.path.dirname(os.path.abspath(minitorch_alex_kernels.__file__)))
    except ImportError:
        pass
    h = hashlib.sha256()
    for root in roots:
        for folder, subfolders, files in os.walk(root):
            subfolders.sort()
            for name in sorted(files):
                if name.endswith((".py", ".cu", ".cuh")):
                    path = os.path.join(folder, name)
                    h.update(os.path.relpath(path, os.path.dirname(root)).encode("utf-8", "surrogateescape") + b"\0")
                    with open(path, "rb") as f:
                        h.update(f.read())
    return f"{__version__} (source sha256 {h.hexdigest()[:12]})"
