"""The one-off preprocessing step: source images -> a packed uint8 store.

As in the paper, every image is scaled so its shorter side is ``size``
(256) and the central ``size x size`` square is kept. The results are
packed into ``(N, size, size, 3)`` uint8 ``.npy`` files that training
memory-maps (layout in :mod:`minitorch_alex.data.store`), together with
labels, the training mean image, the RGB PCA and a JSON manifest.

Crash safety: everything is written into ``<out_dir>.partial``; the
folder is renamed to ``out_dir`` (``os.replace``, after ``fsync``) only when
every file, the manifest last, is complete. So ``out_dir`` either does not
exist or is complete. Work is checkpointed every ``chunk_size`` images in
``progress.json``; running ``prepare`` again with the same arguments
resumes from the last checkpoint instead of starting over.

Unreadable files (undecodable images, and entries that cannot even be
listed: symlink loops, permission errors) are skipped, listed with their
reason in the manifest, and reported with ``warnings.warn``. A class with
no readable training image is refused (``ValueError`` naming it) rather
than silently becoming an output the model can never learn.

Safety: the store's files are allocated up front (``posix_fallocate``),
so a full disk is an ``OSError`` naming the file and the bytes needed, not
a SIGBUS in a memory-mapped write; ``<out_dir>.lock`` is held while
packing, so a second process packing the same store is refused with the
holder's pid. Rows are first written at their
listing position and then moved down over the gaps left by skipped files,
so workers can write in parallel without knowing how many files before
theirs failed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import multiprocessing
import os
import shutil
import warnings

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..serialization import allocate, atomic_file, no_space, remove_temps, write_atomic
from ..serialization import fsync_path as _fsync_path
from . import fashion_mnist, locks, readers, store
from .augment import default_crop
from .decode import UnreadableImage, load_image, resize_center_crop
from .stats import compute_stats
from .synthetic import make_synthetic_imagefolder

LAYOUTS = ("imagefolder", "ilsvrc", "fashion-mnist", "synthetic")
PROGRESS = "progress.json"


# --- sources: what to convert -------------------------------------------------

class _FileSource:
    """Image files on disk: item i is ``paths[i]``."""

    def __init__(self, samples: list[tuple[str, int]], size: int, skipped=()):
        self.skipped = [{"path": p, "reason": r} for p, r in skipped]  # entries the listing could not read
        self.paths = [p for p, _ in samples]
        self.labels = np.array([label for _, label in samples], dtype=np.int64)
        self.size = size

    def __len__(self):
        return len(self.paths)

    def load(self, i: int) -> np.ndarray:
        return load_image(self.paths[i], self.size)

    def describe(self, i: int) -> str:
        return readers.shown_path(self.paths[i])

    def digest_lines(self):
        return (f"{readers.shown_path(p)}\t{label}" for p, label in zip(self.paths, self.labels))


class _GreyArraySource:
    """In-memory greyscale images (Fashion-MNIST): item i is ``images[i]``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, size: int, name: str):
        self.images, self.labels, self.size, self.name = images, labels.astype(np.int64), size, name

    def __len__(self):
        return len(self.images)

    def load(self, i: int) -> np.ndarray:
        return resize_center_crop(Image.fromarray(self.images[i], mode="L").convert("RGB"), self.size)

    def describe(self, i: int) -> str:
        return f"{self.name}[{i}]"

    def digest_lines(self):
        yield hashlib.sha256(self.images.tobytes()).hexdigest()
        yield hashlib.sha256(self.labels.tobytes()).hexdigest()


def _limit_per_class(samples: list[tuple[str, int]], max_per_class: int | None) -> list[tuple[str, int]]:
    """Keep the first ``max_per_class`` samples of each class (deterministic subset)."""
    if max_per_class is None:
        return samples
    seen: dict[int, int] = {}
    kept = []
    for path, label in samples:
        if seen.get(label, 0) < max_per_class:
            seen[label] = seen.get(label, 0) + 1
            kept.append((path, label))
    return kept


def _sources(layout, source_root, size, max_per_class, ground_truth, synset_order, synthetic_options):
    """-> (absolute source description, class names, {split: source})."""
    if layout == "fashion-mnist":
        root = os.path.abspath(source_root or fashion_mnist.DEFAULT_ROOT)
        data = fashion_mnist.load_fashion_mnist(root)
        splits = {}
        for split, (images, labels) in data.items():
            keep = np.arange(len(labels))
            if max_per_class is not None:
                keep = np.concatenate([np.flatnonzero(labels == k)[:max_per_class] for k in range(10)])
                keep.sort()
            splits[split] = _GreyArraySource(images[keep], labels[keep], size, f"{split}-idx")
        return root, list(fashion_mnist.CLASSES), splits
    if layout == "synthetic":
        options = {"size": size, **(synthetic_options or {})}
        make_synthetic_imagefolder(source_root, **options)
        layout = "imagefolder"
    root = os.path.abspath(source_root)
    if layout == "imagefolder":
        train = readers.read_imagefolder(root, "train")
        val = readers.read_imagefolder(root, "val", train.classes)
    elif layout == "ilsvrc":
        train = readers.read_ilsvrc(root, "train")
        val = readers.read_ilsvrc(root, "val", ground_truth, synset_order)
    else:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    counts = np.bincount([label for _, label in train.samples], minlength=len(train.classes))
    empty = [train.classes[k] for k in np.flatnonzero(counts == 0)]
    if empty:
        raise ValueError(f"{os.path.join(root, 'train')}: {len(empty)} class folder(s) without a readable image: "
                         f"{empty[:5]} (expected >= 1 image per class vs 0; remove or fill them"
                         + (f"; unreadable: {[p for p, _ in train.skipped][:3]}" if train.skipped else "") + ")")
    splits = {name: _FileSource(_limit_per_class(listing.samples, max_per_class), size, listing.skipped)
              for name, listing in (("train", train), ("val", val))}
    return root, train.classes, splits


# --- crash-safe file helpers ----------------------------------------------------

def _write_json_atomic(path: str, obj) -> None:
    """Write JSON so that ``path`` holds either the old or the new content (``write_atomic``)."""
    write_atomic(path, json.dumps(obj, indent=1).encode("utf-8"))


def _save_npy(path: str, array) -> None:
    """``np.save`` through the atomic-write path (never through a symlink at ``path``)."""
    with atomic_file(path) as f:
        np.save(f, array, allow_pickle=False)


def _read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def truncate_npy_rows(path: str, rows: int) -> None:
    """Shrink the first axis of the ``.npy`` file at ``path`` to ``rows``.

    Rewrites the shape in the header, padded to the header's old length so
    the data offset does not move, and cuts the file. Used to drop the
    unused tail left when files were skipped, without copying the data.
    """
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        data_offset = f.tell()
        if rows > shape[0]:
            raise ValueError(f"{path}: cannot grow {shape[0]} rows to {rows}")
        header_start = 8 + (2 if version == (1, 0) else 4)  # magic+version, then header length
        new_shape = (rows,) + tuple(shape[1:])
        header = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran_order,
                       "shape": new_shape})
        room = data_offset - header_start - 1  # the header ends with '\n'
        if len(header) > room:
            raise ValueError(f"{path}: new header does not fit")
        f.seek(header_start)
        f.write((header.ljust(room) + "\n").encode("latin1"))
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        f.truncate(data_offset + rows * row_bytes)
        f.flush()
        os.fsync(f.fileno())


def _allocate_file(path: str) -> None:
    """Reserve the blocks of ``path`` (sparse after open_memmap): writing through the memory map
    then cannot meet a full disk, which would kill the process with SIGBUS."""
    nbytes = os.path.getsize(path)
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        allocate(fd, path, nbytes)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise no_space(path, nbytes, exc) from None
        raise
    finally:
        os.close(fd)


def _release_file(path: str) -> None:
    """Give back the blocks of the ``.npy`` file ``path``, which holds no data yet: a failed
    reservation keeps what it took on filesystems such as ext4. The file stays, sparse again."""
    with contextlib.suppress(OSError), open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
        offset, nbytes = f.tell(), os.fstat(f.fileno()).st_size
        f.truncate(offset)  # keep the header, drop every block after it
        f.truncate(nbytes)


FREE_MARGIN = 16 << 20  # bytes left free beyond a store's size, plus 1% of it: the filesystem's own needs


def store_bytes(counts: dict, size: int) -> int:
    """An upper bound of the bytes of a store of ``counts`` images per split at ``size`` px:
    the images, labels and statistics, the headers and the manifest."""
    images = sum(int(n) * (size * size * 3 + 8) + 2 * 4096 for n in counts.values())
    return images + size * size * 3 * 4 + 3 * 4096 + (1 << 20)


def check_free_space(folder: str, need: int) -> None:
    """Refuse (``OSError(ENOSPC)``, one line with the numbers) unless ``folder``'s filesystem has
    ``need`` bytes free plus a margin: before anything is allocated, so a store bigger than the
    disk never fills it."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    margin = FREE_MARGIN + need // 100
    if need + margin > free:
        raise OSError(errno.ENOSPC, f"not enough free space for the store in {folder} (expected >= {need + margin} "
                                    f"bytes free: {need} for the store and a margin of {margin} vs {free} bytes free)")


# --- conversion ---------------------------------------------------------------------

# Set in each worker (or in this process when workers=0): {split: source}.
_WORKER_SOURCES: dict = {}


def _init_worker(sources):
    global _WORKER_SOURCES
    _WORKER_SOURCES = sources


def _convert_chunk(task) -> list[tuple[int, str]]:
    """Decode items ``start..stop-1`` of a split into rows ``start..stop-1``
    of its images file. Returns ``(item, reason)`` for each skipped item;
    only these small tuples travel back, never pixels."""
    split, images_path, start, stop = task
    source = _WORKER_SOURCES[split]
    images = np.load(images_path, mmap_mode="r+", allow_pickle=False)
    failed = []
    for i in range(start, stop):
        try:
            images[i] = source.load(i)
        except UnreadableImage as err:
            failed.append((i, str(err)))
    images.flush()
    return failed


def _convert_split(split, source, work_dir, size, state, pool, chunk_size, progress):
    """Fill ``<split>_images.npy`` / ``_labels.npy`` in ``work_dir``,
    checkpointing into ``state`` (saved as progress.json) after each chunk."""
    images_path = os.path.join(work_dir, store.images_file(split))
    labels_path = os.path.join(work_dir, store.labels_file(split))
    progress_path = os.path.join(work_dir, PROGRESS)
    n = len(source)
    st = state["splits"].get(split)
    if st is None:
        # Allocate for every listed item; the tail left by skipped ones is cut at the end.
        np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3)).flush()
        np.lib.format.open_memmap(labels_path, mode="w+", dtype=np.int64, shape=(n,)).flush()
        st = state["splits"][split] = {"next": 0, "written": 0, "skipped": list(getattr(source, "skipped", [])),
                                       "done": False}
        _write_json_atomic(progress_path, state)
    if st["done"]:
        return st
    try:
        for path in (images_path, labels_path):  # again on a resumed pack: the first try may have been cut short
            _allocate_file(path)
    except OSError:
        if st["next"] == 0:  # nothing written yet: give back what the other file took too
            for path in (images_path, labels_path):
                _release_file(path)
        raise
    if st["next"] < n:
        images = np.load(images_path, mmap_mode="r+", allow_pickle=False)
        labels = np.load(labels_path, mmap_mode="r+", allow_pickle=False)
        chunks = [(a, min(a + chunk_size, n)) for a in range(st["next"], n, chunk_size)]
        tasks = [(split, images_path, a, b) for a, b in chunks]
        results = pool.imap(_convert_chunk, tasks) if pool is not None else map(_convert_chunk, tasks)
        with tqdm(total=n, initial=st["next"], desc=f"prepare {split}", unit="img", disable=not progress) as bar:
            for (a, b), failed in zip(chunks, results):
                reasons = dict(failed)
                for i in range(a, b):
                    if i in reasons:
                        st["skipped"].append({"path": source.describe(i), "reason": reasons[i]})
                        continue
                    w = st["written"]
                    if w != i:  # close the gap left by skipped files (w < i, so never overwrites pending rows)
                        images[w] = images[i]
                    labels[w] = source.labels[i]
                    st["written"] = w + 1
                images.flush()
                labels.flush()
                st["next"] = b
                _write_json_atomic(progress_path, state)  # checkpoint: rows < written are final
                bar.update(b - a)
        del images, labels  # close the memory maps before cutting the files
    truncate_npy_rows(images_path, st["written"])
    truncate_npy_rows(labels_path, st["written"])
    st["done"] = True
    _write_json_atomic(progress_path, state)
    return st


def _split_summary(st, labels_path, num_classes, listed):
    labels = np.load(labels_path, allow_pickle=False)
    return {
        "count": int(st["written"]),
        "counts_per_class": np.bincount(labels, minlength=num_classes).astype(int).tolist(),
        "listed": int(listed),
        "skipped": st["skipped"],
    }


def prepare(
    source_root: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    layout: str = "imagefolder",
    size: int = 256,
    *,
    workers: int = 0,
    chunk_size: int = 256,
    max_per_class: int | None = None,
    ground_truth: str | os.PathLike | None = None,
    synset_order: str | os.PathLike | None = None,
    synthetic_options: dict | None = None,
    overwrite: bool = False,
    resume: bool = True,
    progress: bool = True,
    check=None,
) -> str:
    """Convert a data set into a store at ``out_dir`` and return its path.

    ``layout``:
      * ``'imagefolder'``: ``source_root/{train,val}/<class>/*``;
      * ``'ilsvrc'``: ILSVRC-2012 (see :func:`readers.read_ilsvrc`; uses
        ``ground_truth`` and ``synset_order``);
      * ``'fashion-mnist'``: the IDX files in ``source_root`` (default
        ``/usr/share/datasets/fashion-mnist``), 10000 test images as val;
      * ``'synthetic'``: first generates :func:`make_synthetic_imagefolder`
        in ``source_root`` (with ``synthetic_options``, e.g.
        ``{'num_classes': 10, 'train_per_class': 300}``), then reads it as
        an ImageFolder.

    ``size``: side of the stored square images (256 in the paper).
    ``workers``: decoding processes (0 = decode in this process).
    ``max_per_class``: keep only the first k images of each class.
    If ``out_dir`` is already a store made from the same source and
    settings it is returned as is; a different one needs ``overwrite=True``.
    ``resume=False`` discards a previous interrupted run's partial output.
    ``check``: called with ``{split: images listed}`` before anything is packed (the training
    command checks its batch size there). A split with no images is a ``ValueError``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    for name, value, lo in (("size", size, 1), ("workers", workers, 0), ("chunk_size", chunk_size, 1),
                            ("max_per_class", 1 if max_per_class is None else max_per_class, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ValueError(f"prepare: bad {name} (expected an integer >= {lo} vs {value!r})")
    if layout == "synthetic" and source_root is None:
        raise ValueError("layout='synthetic' needs source_root: the folder to write the generated JPEGs to")
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    with locks.locked(out_dir + ".lock", f"data store {out_dir}"):  # one packer at a time
        return _prepare(layout, source_root, out_dir, size, workers, chunk_size, max_per_class, ground_truth,
                        synset_order, synthetic_options, overwrite, resume, progress, check)


def _prepare(layout, source_root, out_dir, size, workers, chunk_size, max_per_class, ground_truth,
             synset_order, synthetic_options, overwrite, resume, progress, check):
    source_desc, classes, sources = _sources(layout, source_root, size, max_per_class,
                                             ground_truth, synset_order, synthetic_options)
    counts = {split: len(sources[split]) for split in store.SPLITS}
    for split, n in counts.items():
        if n == 0:
            where = source_desc if layout in ("fashion-mnist",) else os.path.join(source_desc, split)
            raise ValueError(f"{where}: no {split} images found (expected >= 1 vs 0"
                             + ("; ILSVRC val needs its ground truth: LOC_val_solution.csv or the devkit"
                                if split == "val" and layout in ("imagefolder", "ilsvrc") else "") + ")")
    if check is not None:
        check(counts)
    digest = hashlib.sha256()
    for split in store.SPLITS:
        for line in sources[split].digest_lines():
            digest.update(line.encode("utf-8") + b"\n")
    config = {"layout": layout, "source": source_desc, "size": size, "max_per_class": max_per_class,
              "classes": classes, "listing_sha256": digest.hexdigest()}

    if os.path.exists(out_dir):
        try:
            existing = store.read_manifest(out_dir)
        except (FileNotFoundError, ValueError):
            existing = None
        if existing is not None and existing.get("config") == config and not overwrite:
            return out_dir
        if existing is None and os.listdir(out_dir):
            raise FileExistsError(f"{out_dir} exists and is not a data store; not overwriting it")
        if existing is not None and not overwrite:
            raise FileExistsError(f"{out_dir} holds a store made from another source or with other settings "
                                  "(expected the same vs different; pass --overwrite, overwrite=True, to repack it)")

    work_dir = out_dir + ".partial"
    progress_path = os.path.join(work_dir, PROGRESS)
    state = None
    if resume and os.path.isfile(progress_path):
        state = _read_json(progress_path)
        if state.get("config") != config:
            state = None
    need = store_bytes(counts, size)
    if state is None:
        shutil.rmtree(work_dir, ignore_errors=True)
        check_free_space(os.path.dirname(out_dir), need)
        os.makedirs(work_dir)
        state = {"config": config, "splits": {}}
        _write_json_atomic(progress_path, state)
    else:  # what the interrupted run reserved is already taken
        remove_temps(work_dir)  # its killed atomic writes' temporaries (we hold the lock: nobody else writes)
        held = sum(os.lstat(os.path.join(work_dir, name)).st_blocks * 512 for name in os.listdir(work_dir))
        check_free_space(os.path.dirname(out_dir), max(0, need - held))

    pool = None
    if workers > 0:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = multiprocessing.get_context(method).Pool(workers, _init_worker, (sources,))
    _init_worker(sources)
    try:
        for split in store.SPLITS:
            st = _convert_split(split, sources[split], work_dir, size, state, pool, chunk_size, progress)
            if st["skipped"]:
                warnings.warn(
                    f"prepare: skipped {len(st['skipped'])} of {len(sources[split])} {split} images that "
                    f"could not be decoded, e.g. {[s['path'] for s in st['skipped'][:3]]} "
                    "(all are listed in manifest.json)",
                    stacklevel=2,
                )
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _init_worker({})

    train_images = np.load(os.path.join(work_dir, store.images_file("train")), mmap_mode="r", allow_pickle=False)
    stats = compute_stats(train_images, progress=progress)
    del train_images
    _save_npy(os.path.join(work_dir, store.STATS_FILES["mean"]), stats.mean)
    _save_npy(os.path.join(work_dir, store.STATS_FILES["eigvals"]), stats.eigvals)
    _save_npy(os.path.join(work_dir, store.STATS_FILES["eigvecs"]), stats.eigvecs)

    splits = {split: _split_summary(state["splits"][split], os.path.join(work_dir, store.labels_file(split)),
                                    len(classes), len(sources[split]))
              for split in store.SPLITS}
    empty = [classes[k] for k, c in enumerate(splits["train"]["counts_per_class"]) if c == 0]
    if empty:  # every image of these classes failed to decode
        raise ValueError(f"{source_desc}: {len(empty)} class(es) without a decodable training image: {empty[:5]} "
                         f"(expected >= 1 vs 0; the failures are in {os.path.join(work_dir, PROGRESS)})")
    manifest = {
        "format": store.FORMAT,
        "layout": layout,
        "source": source_desc,
        "image_size": size,
        "crop_size": default_crop(size),
        "classes": classes,
        "num_classes": len(classes),
        "splits": splits,
        "total": sum(s["count"] for s in splits.values()),
        "skipped_total": sum(len(s["skipped"]) for s in splits.values()),
        "pixel_stats": {
            "mean_image_units": "0..255",
            "pca_units": "RGB values / 255, in [0, 1]",
            "mean_rgb": stats.mean.reshape(-1, 3).mean(axis=0).astype(float).tolist(),
            "cov": stats.cov.tolist(),
            "eigvals": stats.eigvals.astype(float).tolist(),
            "eigvecs_columns": stats.eigvecs.astype(float).tolist(),
        },
        "files": {
            **{f"{split}_{kind}": fname(split) for split in store.SPLITS
               for kind, fname in (("images", store.images_file), ("labels", store.labels_file))},
            **store.STATS_FILES,
        },
        "config": config,
    }
    # Make every data file durable before the manifest, and the manifest
    # before the rename that publishes the folder.
    for name in os.listdir(work_dir):
        _fsync_path(os.path.join(work_dir, name))
    _write_json_atomic(os.path.join(work_dir, store.MANIFEST), manifest)

    if os.path.exists(out_dir):  # an older store (overwrite=True) or an empty folder
        old = f"{out_dir}.old-{os.getpid()}"
        os.replace(out_dir, old)
        os.replace(work_dir, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(work_dir, out_dir)
    _fsync_path(os.path.dirname(out_dir))
    # Removed only now, so a crash before the rename still resumes (cheaply).
    os.remove(os.path.join(out_dir, PROGRESS))
    return out_dir
