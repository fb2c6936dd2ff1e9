"""The data of a run (``--data``): the built-in sets, a prepared store, or a raw image folder packed
once into ``--data-dir``; what a run trained on, kept in its checkpoints (``data_source``), and
found again from them on ``--resume``/``--evaluate`` (``remembered_data``)."""
from __future__ import annotations

import hashlib
import json
import os
import sys

# the built-in data: 10 pattern classes of 256-px JPEGs (the preset of options.QUICK trains on it)
QUICK_DATA = dict(num_classes=10, train_per_class=160, val_per_class=40)


def resolve_data(args, echo=print, check=None, reuse=False):
    """Return a ``Store`` for ``--data``, generating or packing it first when needed.
    ``check(counts)`` is called with the listed images per split before any packing.
    ``reuse``: open a store already packed at the destination as it is, without taking its lock
    (the ranks after rank 0, which has packed it or checked its settings)."""
    from ..data import open_store, prepare

    def packed(dst):
        return reuse and os.path.isfile(os.path.join(dst, "manifest.json"))

    # the packing and statistics bars (on stderr) only on a terminal: in a redirected log they are \r fragments
    progress = not args.no_progress and sys.stderr.isatty()
    if args.dummy:
        from ..data.dummy import dummy_store

        echo("data: --dummy, random 256px images of 1000 classes (ImageNet's split sizes)")
        store = dummy_store(num_classes=1000)
        if check is not None:
            check({split: len(getattr(store, split)) for split in ("train", "val")})
        return store
    if args.data == "default":
        src = os.path.join(args.data_dir, "default-src")
        dst = os.path.join(args.data_dir, "default-store")
        echo(f"data: the built-in generated set ({QUICK_DATA['num_classes']} classes) in {dst}")
        if packed(dst):
            return open_store(dst)
        return open_store(prepare(src, dst, layout="synthetic", synthetic_options=dict(QUICK_DATA, seed=0),
                                  progress=progress, check=check, overwrite=args.overwrite))
    if args.data == "fashion-mnist":
        from ..data.resized import upscale_store

        dst = os.path.join(args.data_dir, "fashion-mnist-28px-store")  # 28 x 28, as the data set is
        if packed(dst):
            return upscale_store(open_store(dst), 256)
        return upscale_store(open_store(prepare(None, dst, layout="fashion-mnist", size=28, progress=progress,
                                                check=check, overwrite=args.overwrite)), 256)
    path = args.data
    if os.path.exists(os.path.join(path, "manifest.json")):
        store = open_store(path)
        if check is not None:
            check({split: len(getattr(store, split)) for split in ("train", "val")})
        return store
    layout = args.layout
    if layout == "auto":
        from ..data.readers import _find_ground_truth

        flat_val = os.path.isdir(os.path.join(path, "val")) and not any(
            e.is_dir() for e in os.scandir(os.path.join(path, "val")))
        layout = "ilsvrc" if flat_val and _find_ground_truth(os.path.abspath(path)) else "imagefolder"
    dst = os.path.join(args.data_dir, os.path.basename(os.path.normpath(path)) + "-store")
    if packed(dst):
        return open_store(dst)
    if os.path.isfile(os.path.join(dst, "manifest.json")):
        echo(f"data: {path} ({layout}), packed earlier in {dst}")
    else:
        echo(f"data: packing {path} ({layout}) into {dst} (once: later runs reuse it)")
    return open_store(prepare(path, dst, layout=layout, progress=progress, check=check, overwrite=args.overwrite,
                              synset_order=args.synset_order))


def store_fingerprint(store):
    """``sha256:...`` of what the store was packed from: its manifest's packing settings (layout, source,
    size, classes, the digest of the listed files and labels), else its classes and split sizes."""
    config = (store.manifest or {}).get("config")
    if not config:
        config = {"classes": list(store.classes), "train": len(store.train), "val": len(store.val)}
    return "sha256:" + hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def data_source(args, store):
    """What a run trains on, kept in its checkpoints' meta (``data_source``): ``--data`` as given and
    resolved, the layout, the packed store and its fingerprint."""
    if args.dummy:
        return {"data": "dummy", "resolved": "dummy", "layout": "dummy", "store": None,
                "fingerprint": store_fingerprint(store)}
    named = args.data in ("default", "fashion-mnist")
    return {"data": args.data, "resolved": args.data if named else os.path.abspath(args.data),
            "layout": (store.manifest or {}).get("layout") or args.layout, "store": os.path.abspath(store.root),
            "fingerprint": store_fingerprint(store)}


def remembered_data(args, explicit, meta, resume):
    """On ``--resume``/``--evaluate`` without ``--data``: point ``args`` at the checkpoint's data source
    (its packed store when it is still there, else its images) and return the record; None when
    ``--data``/``--dummy`` is given or the checkpoint predates the record."""
    source = meta.get("data_source")
    if source is None or explicit & {"data", "dummy"}:
        return None
    given, store = source["data"], source.get("store")
    if given == "dummy":
        args.dummy = True
    elif given in ("default", "fashion-mnist"):
        args.data = given
        if store and "data_dir" not in explicit:
            args.data_dir = os.path.dirname(store)
    elif store and os.path.isfile(os.path.join(store, "manifest.json")):
        args.data = store
    elif os.path.isdir(source["resolved"]):
        args.data = source["resolved"]
        args.layout = source["layout"] if source["layout"] in ("imagefolder", "ilsvrc") else "auto"
    else:
        raise ValueError(f"--data: the data of {resume} is gone (expected its store {store} or its images "
                         f"{source['resolved']} vs neither exists); pass --data")
    return source

