"""Entries of an image tree that are not what their names say (issue 26, Medium #5 and Low #14):
a file name that is not UTF-8 is skipped and listed in a manifest that stays valid JSON, a class
folder with such a name is refused naming it, and FIFOs, folders and broken links named like
images are listed as skipped rather than left out silently."""
import json
import os
import shutil
import sys

import pytest
from hostile_helpers import SIZE, make_tree
from paths import ROOT

from minitorch_alex.data import open_store, prepare

sys.path.insert(0, os.path.join(ROOT, "examples"))
import prepare_data  # noqa: E402


def _first_class(tree):
    train = os.path.join(tree, "train")
    return os.path.join(train, sorted(os.listdir(train))[0])


def _manifest(store):
    with open(os.path.join(store, "manifest.json"), "rb") as f:
        return json.loads(f.read().decode("utf-8"))  # strict UTF-8: valid JSON text


def test_a_latin1_file_name_is_skipped_and_listed_escaped(tmp_path):
    tree = make_tree(tmp_path / "tree")
    folder = _first_class(tree)
    shutil.copy(os.path.join(folder, sorted(os.listdir(folder))[0]), os.fsencode(folder) + b"/caf\xe9.jpg")
    store = prepare(tree, tmp_path / "store", size=SIZE, progress=False)
    assert len(open_store(store).train) == 12  # the others are packed
    skipped = _manifest(store)["splits"]["train"]["skipped"]
    assert skipped == [{"path": os.path.join(folder, "caf\\xe9.jpg"),
                        "reason": "file name is not valid UTF-8 (rename the file)"}]


def test_a_latin1_class_folder_is_refused_naming_it(tmp_path, capsys):
    tree = make_tree(tmp_path / "tree")
    for split in ("train", "val"):
        first = sorted(os.listdir(os.path.join(tree, split)))[0]
        os.rename(os.path.join(tree, split, first), os.path.join(os.fsencode(tree), split.encode(), b"caf\xe9"))
    with pytest.raises(SystemExit) as info:
        prepare_data.main([tree, str(tmp_path / "store"), "--size", str(SIZE)])
    err = capsys.readouterr().err
    assert info.value.code == 1 and "Traceback" not in err
    assert err.strip() == (f"error: {tree}/train/caf\\xe9: a class folder whose name is not valid UTF-8 (expected a "
                           "UTF-8 name, the class's name in checkpoints and predictions, vs the bytes b'caf\\xe9'); "
                           "rename the folder")
    assert not (tmp_path / "store").exists()


def test_fifos_folders_and_broken_links_named_like_images_are_listed_as_skipped(tmp_path):
    tree = make_tree(tmp_path / "tree")
    folder = _first_class(tree)
    os.mkfifo(os.path.join(folder, "pipe.jpg"))
    os.mkdir(os.path.join(folder, "folder.png"))
    os.symlink(os.path.join(folder, "missing"), os.path.join(folder, "dangling.jpg"))
    store = prepare(tree, tmp_path / "store", size=SIZE, progress=False)  # a FIFO opened would hang here
    assert len(open_store(store).train) == 12
    skipped = {os.path.basename(s["path"]): s["reason"] for s in _manifest(store)["splits"]["train"]["skipped"]}
    assert skipped == {"pipe.jpg": "not an image file: a FIFO", "folder.png": "not an image file: a folder",
                       "dangling.jpg": "not an image file: a broken symbolic link"}
