import os

import pytest
from data_helpers import make_plain_tree, save, write_bytes
from PIL import Image

from minitorch_alex.data import read_ilsvrc, read_imagefolder, read_synset_list

SYNSETS = ["n01440764", "n01443537", "n02119789"]  # sorted order = class index


def test_imagefolder_lists_sorted_classes_and_labels(tmp_path):
    root = make_plain_tree(tmp_path / "tree", classes=("dog", "cat", "ant"), per_class=(3, 2))
    train = read_imagefolder(root, "train")
    assert train.classes == ["ant", "cat", "dog"]
    assert len(train.samples) == 9
    for path, label in train.samples:
        assert os.path.basename(os.path.dirname(path)) == train.classes[label]
    val = read_imagefolder(root, "val", train.classes)
    assert len(val.samples) == 6 and val.classes == train.classes


def test_imagefolder_skips_non_image_names_but_lists_bad_images(odd_tree):
    root, info = odd_tree
    listing = read_imagefolder(root, "train")
    names = {os.path.basename(p) for p, label in listing.samples if listing.classes[label] == "odd"}
    # Bad *images* are listed (decoding finds them); wrong extensions and hidden files are not.
    assert set(info["bad"]) <= names
    assert "notes.txt" not in names and ".hidden.jpg" not in names


def test_imagefolder_val_uses_train_labels_and_rejects_unknown_classes(tmp_path):
    root = make_plain_tree(tmp_path / "t", classes=("a", "b"), per_class=(1, 1))
    save(Image.new("RGB", (4, 4)), str(tmp_path / "t" / "val" / "zzz" / "x.png"))
    with pytest.raises(ValueError, match="zzz"):
        read_imagefolder(root, "val", ["a", "b"])
    with pytest.raises(FileNotFoundError):
        read_imagefolder(root, "test")


def _ilsvrc_tree(root, val_labels):
    """train/<synset>/ with 2 images each; flat val/ with one image per entry
    of ``val_labels`` (synset names), numbered from 1."""
    for s in SYNSETS:
        for i in range(2):
            save(Image.new("RGB", (8, 8)), os.path.join(root, "train", s, f"{s}_{i}.JPEG"), "JPEG")
    for number in range(1, len(val_labels) + 1):
        save(Image.new("RGB", (8, 8)), os.path.join(root, "val", f"ILSVRC2012_val_{number:08d}.JPEG"), "JPEG")


VAL = ["n02119789", "n01440764", "n01443537", "n02119789"]  # true synset of val image 1..4


def _val_synsets(listing):
    return {os.path.basename(p): listing.classes[label] for p, label in listing.samples}


def test_ilsvrc_val_from_kaggle_csv(tmp_path):
    root = str(tmp_path / "CLS-LOC")
    _ilsvrc_tree(root, VAL)
    rows = ["ImageId,PredictionString"] + [
        f"ILSVRC2012_val_{k:08d},{s} 1 2 30 40 {s} 5 6 7 8" for k, s in enumerate(VAL, start=1)]
    write_bytes(str(tmp_path / "LOC_val_solution.csv"), ("\n".join(rows) + "\n").encode())
    train = read_ilsvrc(root, "train")
    assert train.classes == SYNSETS and len(train.samples) == 6
    val = read_ilsvrc(root, "val")  # the csv one folder up is found automatically
    got = _val_synsets(val)
    assert got == {f"ILSVRC2012_val_{k:08d}.JPEG": s for k, s in enumerate(VAL, start=1)}


def test_ilsvrc_val_from_devkit_with_synset_order(tmp_path):
    root = str(tmp_path / "imagenet")
    _ilsvrc_tree(root, VAL)
    # A devkit-style id order that differs from sorted order: id 1 = n02119789.
    order = ["n02119789", "n01440764", "n01443537"]
    write_bytes(os.path.join(root, "synsets.txt"), "".join(f"{s} some words\n" for s in order).encode())
    ids = [order.index(s) + 1 for s in VAL]
    gt = write_bytes(os.path.join(root, "ILSVRC2012_validation_ground_truth.txt"),
                     "".join(f"{i}\n" for i in ids).encode())
    val = read_ilsvrc(root, "val", ground_truth=gt, synset_order=os.path.join(root, "synsets.txt"))
    assert _val_synsets(val) == {f"ILSVRC2012_val_{k:08d}.JPEG": s for k, s in enumerate(VAL, start=1)}
    assert read_synset_list(os.path.join(root, "synsets.txt")) == order


def test_ilsvrc_devkit_without_order_assumes_sorted_and_warns(tmp_path):
    root = str(tmp_path / "imagenet")
    _ilsvrc_tree(root, VAL)
    ids = [SYNSETS.index(s) + 1 for s in VAL]
    write_bytes(os.path.join(root, "ILSVRC2012_validation_ground_truth.txt"), "".join(f"{i}\n" for i in ids).encode())
    with pytest.warns(UserWarning, match="synset_order"):
        val = read_ilsvrc(root, "val")
    assert _val_synsets(val) == {f"ILSVRC2012_val_{k:08d}.JPEG": s for k, s in enumerate(VAL, start=1)}


def test_ilsvrc_val_without_ground_truth_entry_is_left_out(tmp_path):
    root = str(tmp_path / "imagenet")
    _ilsvrc_tree(root, VAL + ["n01440764"])  # 5 val images, ground truth for 4
    rows = ["ImageId,PredictionString"] + [f"ILSVRC2012_val_{k:08d},{s} 1 2 3 4" for k, s in enumerate(VAL, 1)]
    gt = write_bytes(str(tmp_path / "gt.csv"), ("\n".join(rows) + "\n").encode())
    with pytest.warns(UserWarning, match="1 val files"):
        val = read_ilsvrc(root, "val", ground_truth=gt)
    assert len(val.samples) == 4


def test_ilsvrc_missing_ground_truth_is_a_clear_error(tmp_path):
    root = str(tmp_path / "imagenet")
    _ilsvrc_tree(root, VAL)
    with pytest.raises(FileNotFoundError, match="ground_truth"):
        read_ilsvrc(root, "val")
