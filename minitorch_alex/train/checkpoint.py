"""Checkpoints: one ``.npz`` file of plain arrays plus a JSON string, never a pickle.

Layout inside the archive:

    model/<name>        every entry of ``model.state_dict()``
    optim/velocity/<i>  the SGD velocities
    meta                a 0-d unicode array holding JSON: epoch, step, learning-rate
                        schedule, optimizer settings, RNG state, metrics, arguments

Writes are atomic: the archive goes to a temporary file in the same folder, is flushed and
fsynced, then renamed over the old one (``os.replace`` is atomic on POSIX and Windows). A crash
at any moment leaves either the previous checkpoint or the new one, never half a file.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

FORMAT = "minitorch_alex/checkpoint-v1"


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic_npz(path, arrays: dict) -> None:
    """Write ``arrays`` (name -> ndarray) to ``path`` as .npz, atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _host(array):
    return array.get() if hasattr(array, "get") else np.asarray(array)


def save_checkpoint(path, model, optimizer=None, meta=None) -> None:
    """Save model parameters, optimizer velocities and ``meta`` (JSON-serialisable) atomically."""
    arrays = {f"model/{k}": _host(v) for k, v in model.state_dict().items()}
    meta = dict(meta or {}, format=FORMAT)
    if optimizer is not None:
        state = optimizer.state_dict()
        for i, v in enumerate(state.pop("velocity")):
            arrays[f"optim/velocity/{i}"] = _host(v)
        meta["optimizer"] = state
    arrays["meta"] = np.array(json.dumps(meta))
    write_atomic_npz(path, arrays)


def load_checkpoint(path, model=None, optimizer=None) -> dict:
    """Load into ``model``/``optimizer`` (either may be None); return the meta dict."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {path!r} does not exist") from None
    except (ValueError, OSError) as exc:
        raise ValueError(f"checkpoint {path!r} is not a readable .npz archive: {exc}") from exc
    with archive:
        if "meta" not in archive.files:
            raise ValueError(f"checkpoint {path!r} has no 'meta' entry: not a minitorch_alex checkpoint")
        meta = json.loads(str(archive["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"checkpoint {path!r} has format {meta.get('format')!r}, expected {FORMAT!r}")
        if model is not None:
            model.load_state_dict({k[len("model/"):]: archive[k] for k in archive.files if k.startswith("model/")})
        if optimizer is not None:
            if "optimizer" not in meta:
                raise ValueError(f"checkpoint {path!r} holds no optimizer state")
            count = sum(1 for k in archive.files if k.startswith("optim/velocity/"))
            velocity = [archive[f"optim/velocity/{i}"] for i in range(count)]
            optimizer.load_state_dict(dict(meta["optimizer"], velocity=velocity))
    return meta
