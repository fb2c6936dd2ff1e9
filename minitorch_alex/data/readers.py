"""List the image files of a data set as ``(path, label)`` pairs.

Two on-disk layouts are understood:

ImageFolder (``read_imagefolder``)::

    root/train/<class name>/<any name>.<image extension>
    root/val/<class name>/...

ILSVRC-2012 (``read_ilsvrc``)::

    root/train/n01440764/n01440764_10026.JPEG      one folder per synset
    root/val/ILSVRC2012_val_00000001.JPEG          one flat folder
    + a ground-truth list for val, either
      LOC_val_solution.csv   (Kaggle): ImageId,PredictionString where the
                              PredictionString starts with the synset, or
      ILSVRC2012_validation_ground_truth.txt (devkit): line k holds the
                              1-based ILSVRC2012_ID of ILSVRC2012_val_<k>.

Class names are always sorted, and label = index into that sorted list
(the convention of torchvision's ImageFolder and of most ImageNet code).
Only files are listed here; decoding (and skipping unreadable files) is
done later by :mod:`minitorch_alex.data.decode`.
"""

from __future__ import annotations

import csv
import os
import re
import stat
import warnings
from typing import NamedTuple

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
)


class Listing(NamedTuple):
    """``samples``: list of ``(path, label)``; ``classes``: sorted class names,
    ``classes[label]`` is the name of ``label``; ``skipped``: ``(path, reason)`` of entries
    that could not even be listed (symlink loops, permission errors), left out."""

    samples: list[tuple[str, int]]
    classes: list[str]
    skipped: tuple = ()


def _reason(err: OSError) -> str:
    return f"{type(err).__name__}: {err.strerror or err}"


def _is_image_file(name: str) -> bool:
    # Hidden files (.DS_Store, ._foo.jpg from macOS) are never images.
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def shown_path(path: str) -> str:
    """``path`` as text that is always valid UTF-8 (JSON, terminals): a name that is not UTF-8
    (its bytes kept by Python as surrogates) shows those bytes as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_a_file(entry) -> str:
    """Why an entry named like an image is not one: what it is."""
    try:
        mode = os.stat(entry.path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link"
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def _image_files(folder: str, skipped: list | None = None) -> list[str]:
    """Sorted image file paths directly inside ``folder`` (not recursive). Entries that cannot
    be examined (a symlink loop, no permission), entries named like images that are not regular
    files (folders, FIFOs, devices) and files whose names are not UTF-8 are appended to
    ``skipped`` as (path, reason), the path made printable (``shown_path``), instead of aborting
    the listing (unreadable ones raise when ``skipped`` is None)."""
    names = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if not _is_image_file(e.name):
                    continue
                try:
                    if not e.is_file():
                        if skipped is not None:
                            skipped.append((shown_path(e.path), f"not an image file: {_not_a_file(e)}"))
                    elif not _is_utf8(e.name):
                        if skipped is not None:
                            skipped.append((shown_path(e.path), "file name is not valid UTF-8 (rename the file)"))
                    else:
                        names.append(e.name)
                except OSError as err:
                    _skip(skipped, shown_path(e.path), err)
    except OSError as err:
        _skip(skipped, shown_path(folder), err)
    return [os.path.join(folder, n) for n in sorted(names)]


def _class_dirs(folder: str, skipped: list | None = None) -> list[str]:
    out = []
    with os.scandir(folder) as it:
        for e in it:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir():
                    if not _is_utf8(e.name):
                        raise ValueError(f"{shown_path(e.path)}: a class folder whose name is not valid UTF-8 (expected "
                                         f"a UTF-8 name, the class's name in checkpoints and predictions, vs the bytes "
                                         f"{os.fsencode(e.name)!r}); rename the folder")
                    out.append(e.name)
            except OSError as err:
                _skip(skipped, shown_path(e.path), err)
    return sorted(out)


def _skip(skipped, path, err):
    """Note ``path`` in ``skipped`` as (path, reason), or raise ``err`` when skips are not noted."""
    if skipped is None:
        raise err
    skipped.append((path, _reason(err)))


def read_imagefolder(root: str | os.PathLike, split: str, classes: list[str] | None = None) -> Listing:
    """List ``root/<split>/<class>/*``.

    ``classes``: the class list to label with (pass the train split's list
    when reading val, so that labels agree even if val lacks a class).
    Defaults to the sorted sub-folders of ``root/<split>``. A sub-folder
    that is not in ``classes`` is an error, not silently dropped.
    """
    split_dir = os.path.join(os.fspath(root), split)
    if not os.path.isdir(split_dir):
        raise FileNotFoundError(f"ImageFolder split not found: {split_dir}")
    skipped: list = []
    found = _class_dirs(split_dir, skipped)
    if classes is None:
        classes = found
    index = {name: i for i, name in enumerate(classes)}
    unknown = [c for c in found if c not in index]
    if unknown:
        raise ValueError(f"{split_dir}: class folders not in the class list: {unknown[:5]}")
    samples = []
    for name in found:
        samples += [(p, index[name]) for p in _image_files(os.path.join(split_dir, name), skipped)]
    return Listing(samples, list(classes), tuple(skipped))


# --- ILSVRC-2012 -------------------------------------------------------------

_GT_CSV = "LOC_val_solution.csv"
_GT_TXT = "ILSVRC2012_validation_ground_truth.txt"


def _find_ground_truth(root: str) -> str | None:
    """Look for a val ground-truth file where the Kaggle archive or the
    devkit tarball usually put it, relative to ``root``."""
    candidates = []
    for base in (root, os.path.dirname(root), os.path.dirname(os.path.dirname(root))):
        candidates += [
            os.path.join(base, _GT_CSV),
            os.path.join(base, _GT_TXT),
            os.path.join(base, "data", _GT_TXT),
            os.path.join(base, "ILSVRC2012_devkit_t12", "data", _GT_TXT),
            os.path.join(base, "devkit", "data", _GT_TXT),
        ]
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


def read_synset_list(path: str | os.PathLike) -> list[str]:
    """Read a text file with one synset per line (first whitespace-separated
    token, e.g. ``n01440764 tench, Tinca tinca``); blank lines are ignored.
    A ``.mat`` file is read as the devkit's ``meta.mat`` (:func:`read_devkit_meta`)."""
    if os.fspath(path).endswith(".mat"):
        return [wnid for wnid, _ in read_devkit_meta(path)]
    with open(path, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]


def read_devkit_meta(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``[(wnid, words)]`` of the devkit's ``meta.mat`` leaf synsets in ILSVRC2012_ID order (entry
    k-1 is class id k). MATLAB v5 is read with ``scipy.io.loadmat``: plain arrays, no pickle."""
    path = os.fspath(path)
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ValueError(f"{path}: reading the devkit's meta.mat needs SciPy (expected scipy installed vs "
                         "missing; or pass a text file of WNIDs, line k = class id k)") from None
    try:
        synsets = loadmat(path, squeeze_me=True)["synsets"]
        ids = [int(i) for i in synsets["ILSVRC2012_ID"]]
        wnids = [str(w) for w in synsets["WNID"]]
        words = [str(w) for w in synsets["words"]] if "words" in synsets.dtype.names else wnids
        leaf = ([int(c) == 0 for c in synsets["num_children"]] if "num_children" in synsets.dtype.names
                else [True] * len(ids))
    except (KeyError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise ValueError(f"{path}: not the devkit's meta.mat (expected a 'synsets' struct with ILSVRC2012_ID "
                         f"and WNID vs {type(exc).__name__}: {exc})") from None
    pairs = sorted((i, w, t) for i, w, t, is_leaf in zip(ids, wnids, words, leaf) if is_leaf)
    if [i for i, _, _ in pairs] != list(range(1, len(pairs) + 1)):
        raise ValueError(f"{path}: class ids are not 1..{len(pairs)} (expected consecutive ILSVRC2012_IDs)")
    return [(w, t) for _, w, t in pairs]


def find_class_names(root: str | os.PathLike, classes: list[str]) -> list[str]:
    """Human-readable names of ``classes`` (WNIDs) from ``LOC_synset_mapping.txt`` (Kaggle) or
    the devkit's ``meta.mat`` found where :func:`_find_ground_truth` looks; else the classes."""
    root = os.path.abspath(os.fspath(root))
    names: dict[str, str] = {}
    for base in (root, os.path.dirname(root), os.path.dirname(os.path.dirname(root))):
        mapping = os.path.join(base, "LOC_synset_mapping.txt")
        if os.path.isfile(mapping):
            with open(mapping, encoding="utf-8") as f:
                for line in f:
                    wnid, _, words = line.strip().partition(" ")
                    if wnid:
                        names[wnid] = words or wnid
            break
        meta = _find_devkit_meta(base)
        if meta is not None:
            try:
                names = dict(read_devkit_meta(meta))
            except ValueError:
                names = {}
            break
    return [names.get(c, c) for c in classes]


def _find_devkit_meta(base: str) -> str | None:
    for folder in ("data", os.path.join("ILSVRC2012_devkit_t12", "data"), os.path.join("devkit", "data")):
        path = os.path.join(base, folder, "meta.mat")
        if os.path.isfile(path):
            return path
    return None


def _val_number(path: str) -> int:
    """``.../ILSVRC2012_val_00000042.JPEG`` -> 42 (the last digit run)."""
    digits = re.findall(r"\d+", os.path.basename(path))
    if not digits:
        raise ValueError(f"no image number in val file name {path!r}")
    return int(digits[-1])


def _val_synsets_from_csv(path: str) -> dict[str, str]:
    """``LOC_val_solution.csv`` -> {image id (file stem): synset}."""
    out = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"ImageId", "PredictionString"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}:1: bad header (expected the columns ImageId,PredictionString vs "
                             f"{','.join(reader.fieldnames or [])!r})")
        for row in reader:
            words = (row["PredictionString"] or "").split()
            if not words or not (row["ImageId"] or "").strip():
                raise ValueError(f"{path}:{reader.line_num}: empty ImageId or PredictionString (expected an id "
                                 f"and a synset such as n01440764 vs {row['ImageId']!r}, {row['PredictionString']!r})")
            out[row["ImageId"].strip()] = words[0]
    return out


def _val_synsets_from_devkit(path: str, id_to_synset: list[str]) -> dict[int, str]:
    """Devkit ground truth -> {val image number (1-based): synset}."""
    ids = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if line.strip():
                try:
                    ids.append(int(line))
                except ValueError:
                    raise ValueError(f"{path}:{line_no}: not a class id (expected an integer vs "
                                     f"{line.strip()[:40]!r})") from None
    out = {}
    for number, class_id in enumerate(ids, start=1):
        if not 1 <= class_id <= len(id_to_synset):
            raise ValueError(f"{path}:{number}: class id {class_id} outside 1..{len(id_to_synset)}")
        out[number] = id_to_synset[class_id - 1]
    return out


def read_ilsvrc(
    root: str | os.PathLike,
    split: str,
    ground_truth: str | os.PathLike | None = None,
    synset_order: str | os.PathLike | None = None,
) -> Listing:
    """List the ILSVRC-2012 ``train`` or ``val`` split under ``root``.

    Classes are the sorted synset folders of ``root/train``.

    For ``val``, if ``root/val`` already has one folder per synset it is
    read like the train split. Otherwise it is a flat folder and the labels
    come from ``ground_truth`` (found automatically next to ``root`` when not
    given): ``LOC_val_solution.csv`` or the devkit's
    ``ILSVRC2012_validation_ground_truth.txt``.

    The devkit file holds class *ids*, whose id -> synset map lives in the
    devkit's ``meta.mat`` (MATLAB format, not read here). ``synset_order``
    is a text file with one synset per line, line k being id k (extract it
    once from ``meta.mat``). **Assumption when it is not given:** id k is the
    k-th synset in sorted order, with a warning, because the official devkit
    does *not* use that order (its id 1 is n02119789, kit fox); with the
    official devkit file you must pass ``synset_order``.

    Val files without a ground-truth entry are left out with a warning.
    """
    root = os.fspath(root)
    train_dir = os.path.join(root, "train")
    classes = _class_dirs(train_dir, []) if os.path.isdir(train_dir) else None
    if split == "train" or (os.path.isdir(os.path.join(root, split)) and _class_dirs(os.path.join(root, split), [])):
        return read_imagefolder(root, split, classes)
    if classes is None:
        raise FileNotFoundError(f"ILSVRC layout needs {train_dir} to know the synsets")
    split_dir = os.path.join(root, split)
    skipped: list = []
    files = _image_files(split_dir, skipped)
    gt = os.fspath(ground_truth) if ground_truth is not None else _find_ground_truth(root)
    if gt is None:
        raise FileNotFoundError(
            f"no ground truth for {split_dir}: give ground_truth= ({_GT_CSV} or {_GT_TXT})"
        )
    if gt.endswith(".csv"):
        by_stem = _val_synsets_from_csv(gt)
        synsets = [by_stem.get(os.path.splitext(os.path.basename(p))[0]) for p in files]
    else:
        meta = os.path.join(os.path.dirname(gt), "meta.mat")
        if synset_order is None and os.path.isfile(meta):
            synset_order = meta  # the devkit ships its id order next to its ground truth
        if synset_order is not None:
            id_to_synset = read_synset_list(synset_order)
        else:
            warnings.warn(
                f"{gt}: no synset order (the devkit's data/meta.mat) found, assuming class id k is the k-th "
                "sorted synset. This is NOT the order of the official devkit: pass --synset-order "
                "meta.mat (or a text file of WNIDs in id order; synset_order= in Python)",
                stacklevel=2,
            )
            id_to_synset = classes
        by_number = _val_synsets_from_devkit(gt, id_to_synset)
        synsets = [by_number.get(_val_number(p)) for p in files]
    index = {name: i for i, name in enumerate(classes)}
    samples, missing = [], []
    for path, synset in zip(files, synsets):
        if synset is None:
            missing.append(path)
        elif synset not in index:
            raise ValueError(f"{path}: ground-truth synset {synset} has no train folder")
        else:
            samples.append((path, index[synset]))
    if missing:
        warnings.warn(f"{len(missing)} val files have no ground truth and are left out, e.g. {missing[:3]}",
                      stacklevel=2)
    return Listing(samples, classes, tuple(skipped))
