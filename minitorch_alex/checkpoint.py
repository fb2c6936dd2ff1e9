"""Checkpoints: one ``.npz`` file of plain arrays plus a JSON string, never a pickle.

Layout inside the archive:

    model/<name>        every entry of ``model.state_dict()``: parameters and persistent buffers
                        (batch norm's running statistics, its int64 ``num_batches_tracked``)
    optim/velocity/<i>  the SGD velocities, in the order of ``optimizer.params``
    data/mean           (S, S, 3) float32, the training mean image (0..255), for inference
    meta                a 0-d unicode array holding JSON: epoch, step, learning-rate
                        schedule, optimizer settings, RNG state, metrics, arguments, and for
                        inference ``classes``, ``class_names``, ``input_scale``, ``image_size``,
                        ``crop_size``, ``mean_rgb``; ``data_source``, what the run trained on
                        (schema: ``SCHEMA`` below)

Writes are atomic (:func:`minitorch_alex.serialization.write_npz`): the archive goes to a
preallocated temporary file in the same folder, is fsynced, then renamed over the old one; a crash
or a full disk leaves the previous checkpoint. Loading never trusts the file: every entry's name,
shape, dtype (exactly the model's: floating, or a buffer's integer) and size is checked against
the model from the ZIP records and ``.npy`` headers before any data is decompressed, weights must
be finite, and the meta is
validated against ``SCHEMA``. Every failure is a ``ValueError`` or ``FileNotFoundError`` naming
the file.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from . import serialization
from .serialization import Spec, read_npz

FORMAT = "minitorch_alex/checkpoint-v1"
MAX_META_CHARS = 1 << 22  # 4 Mi characters of JSON (16 MiB as a NumPy unicode array)
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def write_atomic_npz(path, arrays: dict) -> None:
    """Write ``arrays`` (name -> ndarray) to ``path`` as .npz, atomically (see module doc)."""
    serialization.write_npz(path, arrays)


def _finite_or_none(x):
    return None if x is None or not math.isfinite(x) else x


def save_checkpoint(path, model, optimizer=None, meta=None, arrays=None) -> None:
    """Save model parameters, optimizer velocities, ``meta`` (JSON-serialisable) and extra
    ``arrays`` (name -> array, stored under that name, e.g. ``data/mean``) atomically."""
    out = {f"model/{k}": v for k, v in model.state_dict().items()}  # write_npz brings each to the host
    meta = dict(meta or {}, format=FORMAT)
    if optimizer is not None:
        state = optimizer.state_dict()
        for i, v in enumerate(state["state"]["velocity"]):
            out[f"optim/velocity/{i}"] = v
        # the groups' hyper-parameters, each with the number of parameters it holds
        meta["optimizer"] = {"param_groups": [dict(g, params=len(g["params"])) for g in state["param_groups"]]}
    out.update(arrays or {})
    text = json.dumps(meta, allow_nan=False)  # a NaN in the meta would be refused on loading
    out["meta"] = np.array(text)
    write_atomic_npz(path, out)


# ----- the meta schema ------------------------------------------------------------------------------

def _int(lo=0):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            return f"an integer >= {lo}"
        return None if v >= lo else f"an integer >= {lo}"
    return check


def _num(lo=-math.inf, hi=math.inf, none=False, open_lo=False):
    def check(v):
        if v is None and none:
            return None
        text = f"a finite number in {'(' if open_lo else '['}{lo:g}, {hi:g}]" + (" or null" if none else "")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return text
        return None if (v > lo if open_lo else v >= lo) and v <= hi else text
    return check


def _str_list(v):
    if not isinstance(v, list) or not v or not all(isinstance(s, str) for s in v):
        return "a non-empty list of strings"
    return None


def _dict(schema, optional=()):
    def check(v):
        if not isinstance(v, dict):
            return "an object"
        for key in schema:
            if key not in v:
                if key in optional:
                    continue
                return f"an object with key {key!r}"
        return None
    check.schema = schema
    return check


def _nullable(check):
    def wrapped(v):
        return None if v is None else check(v)
    wrapped.schema = getattr(check, "schema", None)
    return wrapped


def _rng(v):
    if not isinstance(v, dict) or v.get("bit_generator") not in BIT_GENERATORS:
        return f"a NumPy bit-generator state with bit_generator one of {', '.join(BIT_GENERATORS)}"
    try:
        getattr(np.random, v["bit_generator"])().state = v
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
        return f"a valid {v['bit_generator']} state"
    return None


SCHEMA = {
    "format": lambda v: None if v == FORMAT else repr(FORMAT),
    "epoch": _int(), "batch": _int(), "step": _int(),
    "running": _dict({"loss_sum": _num(0), "seen": _int(), "correct1": _int(), "correct5": _int()}),
    "best_val_top1_err": _num(0, 1, none=True),
    "schedule": _dict({"best": _num(none=True), "bad_epochs": _int(), "reductions": _int()}),
    "rng": _rng,
    "loss_scaler": _nullable(_dict({"scale": _num(0, open_lo=True), "good_steps": _int(), "skipped": _int()},
                                   optional=("skipped",))),
    "classes": _str_list,
    "class_names": _str_list,
    "config": _dict({}),
    "optimizer": lambda v: _optimizer(v),
    "base_lr": _num(0),  # the trainer's rate at multiplier 1 (the plateau rule's)
    "input_scale": _num(0, open_lo=True),
    "image_size": _int(1), "crop_size": _int(1),
    "mean_rgb": lambda v: None if isinstance(v, list) and len(v) == 3 and all(_num()(x) is None for x in v)
    else "a list of 3 finite numbers",
}


_GROUP = {"lr": _num(0), "momentum": _num(0, 1), "weight_decay": _num(0), "params": _int(1)}


def _optimizer(v):
    """``{"param_groups": [{lr, momentum, weight_decay, params (a count), initial_lr (optional)}]}``,
    or format v1's one group ``{lr, momentum, weight_decay}`` (read as such by ``optimizer_groups``)."""
    if not isinstance(v, dict):
        return "an object with param_groups"
    v1 = "param_groups" not in v
    groups = [dict(v, params=1)] if v1 else v["param_groups"]
    if not isinstance(groups, list) or not groups:
        return "param_groups a non-empty list"
    for i, group in enumerate(groups):
        where = "" if v1 else f"param_groups[{i}]."
        if not isinstance(group, dict):
            return f"{where[:-1]} an object"
        checks = dict(_GROUP, **({"initial_lr": _num(0)} if "initial_lr" in group else {}))
        for key, check in checks.items():
            problem = "missing" if key not in group else check(group[key])
            if problem:
                return f"{where}{key} {problem}"
    return None


def optimizer_groups(meta, count=None):
    """The optimizer's groups from a checkpoint's meta (format v1's single group with ``count``
    parameters read as one group)."""
    saved = meta["optimizer"]
    if "param_groups" in saved:
        return [dict(g) for g in saved["param_groups"]]
    return [{"lr": saved["lr"], "momentum": saved["momentum"], "weight_decay": saved["weight_decay"], "params": count}]


def optimizer_settings(meta):
    """The trainer's lr (its ``base_lr``), momentum and weight decay in a checkpoint's meta, or {}."""
    if "optimizer" not in meta:
        return {}
    first = optimizer_groups(meta)[0]
    return {"lr": meta.get("base_lr", first["lr"]), "momentum": first["momentum"], "weight_decay": first["weight_decay"]}


def _data_source(v):
    strings = ("data", "resolved", "layout", "fingerprint")
    if isinstance(v, dict) and all(isinstance(v.get(k), str) for k in strings) and \
            (v.get("store") is None or isinstance(v["store"], str)):
        return None
    return "an object with strings data, resolved, layout, fingerprint and store (a string or null)"


SCHEMA["data_source"] = _data_source  # what the run trained on (train.data_source.data_source)
TRAINER_KEYS = ("epoch", "batch", "step", "running", "best_val_top1_err", "schedule", "rng", "classes", "optimizer")


def _validate(value, check, where, path):
    problem = check(value)
    if problem is not None:
        raise ValueError(f"{path}: bad checkpoint meta: {where} (expected {problem} vs {_short(value)})")
    for key, sub in (getattr(check, "schema", None) or {}).items():
        if isinstance(value, dict) and key in value:
            _validate(value[key], sub, f"{where}.{key}", path)


def _short(value):
    text = json.dumps(value, allow_nan=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_meta(meta, path, required=()) -> dict:
    """Check ``meta`` against ``SCHEMA`` (keys present are checked; ``required`` must be there)."""
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: bad checkpoint meta (expected a JSON object vs {type(meta).__name__})")
    for key in ("format",) + tuple(required):
        if key not in meta:
            raise ValueError(f"{path}: bad checkpoint meta: no {key!r} (expected the keys {', '.join(required)})")
    for key, check in SCHEMA.items():
        if key in meta:
            _validate(meta[key], check, key, path)
    if "class_names" in meta and "classes" in meta and len(meta["class_names"]) != len(meta["classes"]):
        raise ValueError(f"{path}: bad checkpoint meta: class_names (expected {len(meta['classes'])} names, "
                         f"one per class vs {len(meta['class_names'])})")
    return meta


def check_position(meta, path, train_images, batch_size) -> None:
    """Bound the meta's position in the epoch against the data it resumes on: ``batch`` within
    the epoch's batches, the running sums within the images those batches hold (a meta saying
    batch 1000000 trained an 'epoch' on no image, logged as loss 0 and 100% error)."""
    batches = -(-int(train_images) // int(batch_size))
    batch, running = meta["batch"], meta["running"]
    if batch > batches:
        raise ValueError(f"{path}: bad checkpoint meta: batch (expected an integer in [0, {batches}], the batches of "
                         f"an epoch of {train_images} images in batches of {batch_size}, vs {batch})")
    seen_max = min(batch * int(batch_size), int(train_images))
    if running["seen"] > seen_max:
        raise ValueError(f"{path}: bad checkpoint meta: running.seen (expected an integer in [0, {seen_max}], the "
                         f"images of its {batch} batches, vs {running['seen']})")
    for key in ("correct1", "correct5"):
        if running[key] > running["seen"]:
            raise ValueError(f"{path}: bad checkpoint meta: running.{key} (expected an integer in [0, "
                             f"{running['seen']}], the images seen, vs {running[key]})")


def _parse_meta(path, array) -> dict:
    if array.dtype.kind != "U" or array.shape != ():
        raise ValueError(f"{path}: bad checkpoint meta (expected a 0-d unicode array vs {array.dtype} {array.shape})")
    text = str(array[()])
    consts = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}
    try:
        meta = json.loads(text, parse_constant=consts.__getitem__)
    except RecursionError:
        raise ValueError(f"{path}: bad checkpoint meta (expected JSON nested a few levels deep vs deeper)") from None
    except ValueError as exc:
        raise ValueError(f"{path}: bad checkpoint meta (expected JSON vs {str(exc).splitlines()[0]})") from None
    if isinstance(meta, dict):
        # Checkpoints written before the schema held Infinity for "nothing yet".
        for parent, key in ((meta, "best_val_top1_err"), (meta.get("schedule"), "best")):
            if isinstance(parent, dict) and isinstance(parent.get(key), float) and parent[key] == math.inf:
                parent[key] = None
    return validate_meta(meta, path)


def _meta_spec():
    return Spec((), "U")


def read_meta(path, required=()) -> dict:
    """The validated meta of the checkpoint at ``path``, reading nothing else."""
    path = os.fspath(path)

    def allowed(name):
        if name == "meta":
            return _meta_spec()
        return Spec() if name.split("/")[0] in ("model", "optim", "data") else None

    try:
        arrays = read_npz(path, allowed, required=["meta"], read={"meta"}, max_bytes=4 * MAX_META_CHARS)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {path} does not exist") from None
    except ValueError as exc:
        raise ValueError(f"checkpoint {exc}") from None
    if "meta" not in arrays:
        raise ValueError(f"checkpoint {path}: no 'meta' entry (expected a minitorch_alex checkpoint)")
    return validate_meta(_parse_meta(path, arrays["meta"]), path, required)


def load_checkpoint(path, model=None, optimizer=None, required=(), arrays=None) -> dict:
    """Load into ``model``/``optimizer`` (either may be None); return the meta dict.

    Everything is checked before anything is changed: entry names (every ``model.state_dict()``
    key, one velocity per optimizer parameter, nothing unknown), shapes, dtypes (those of the
    model: a float64 or int8 checkpoint for a float32 model is refused, not cast), sizes
    (before decompressing), finite values, the meta schema. ``arrays``: extra entry names
    (e.g. ``"data/mean"``) to read and return in ``meta["arrays"]`` when present."""
    path = os.fspath(path)
    own = {f"model/{k}": Spec(tuple(v.shape), np.dtype(v.dtype), finite=True)
           for k, v in (model.state_dict().items() if model is not None else ())}
    if optimizer is not None:
        own.update({f"optim/velocity/{i}": Spec(p.shape, np.dtype(p.dtype), finite=True)
                    for i, p in enumerate(optimizer.params)})
    extra = set(arrays or ())

    def allowed(name):
        if name == "meta":
            return _meta_spec()
        if name in own:
            return own[name]
        if name.startswith("data/"):
            return Spec(None, "f", finite=True)
        if name.startswith("model/") and model is None or name.startswith("optim/velocity/") and optimizer is None:
            return Spec()  # present but not asked for: never read
        return None

    try:
        found = read_npz(path, allowed, required=["meta"], read={"meta"} | set(own) | extra,
                         max_bytes=sum(s_bytes(s) for s in own.values()) + 4 * MAX_META_CHARS
                         + (1 << 26) * len(extra))
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {path} does not exist") from None
    except ValueError as exc:
        raise ValueError(_explain(path, exc, model, optimizer)) from None
    missing = sorted(set(own) - set(found))
    if missing:
        raise ValueError(f"checkpoint {path}: missing entries {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''} (expected every parameter of the model"
                         f"{' and one velocity per parameter' if optimizer is not None else ''})")
    meta = _parse_meta(path, found["meta"])
    validate_meta(meta, path, required + (("optimizer",) if optimizer is not None else ()))
    if model is not None:
        model.load_state_dict({k[len("model/"):]: found[k] for k in own if k.startswith("model/")})
    if optimizer is not None:
        velocity = [found[f"optim/velocity/{i}"] for i in range(len(optimizer.params))]
        groups, start = [], 0
        for group in optimizer_groups(meta, len(velocity)):  # a count of parameters -> their indices
            groups.append(dict(group, params=list(range(start, start + group["params"]))))
            start += group["params"]
        try:
            optimizer.load_state_dict({"param_groups": groups, "state": {"velocity": velocity}})
        except ValueError as exc:
            raise ValueError(f"checkpoint {path}: {exc}") from None
    if extra:
        meta["arrays"] = {k: found[k] for k in extra if k in found}
    return meta


def s_bytes(spec):
    return int(np.prod(spec.shape, dtype=object)) * np.dtype(spec.dtype).itemsize


def _explain(path, exc, model, optimizer):
    text = str(exc)
    if "unexpected entry 'optim/velocity/" in text and optimizer is not None:
        text += f" (expected {len(optimizer.params)} velocities, one per parameter of this model)"
    elif "unexpected entry 'model/" in text and model is not None:
        text += " (expected only the parameters of this model)"
    return f"checkpoint {text}" if text.startswith(path) else f"checkpoint {path}: {text}"
