"""mt.save / mt.load of nested dicts and lists, as torch.save users write them: arrays as .npy
entries, the nesting and plain values as JSON, never a pickle; a hostile tree is refused."""
import io
import json
import re
import zipfile

import numpy as np
import pytest

import minitorch_alex as mt
from minitorch_alex.serialization import KIND_ENTRY


def small_state():
    model = mt.nn.Sequential(mt.nn.Linear(3, 4), mt.nn.ReLU(), mt.nn.Linear(4, 2))
    return model, model.state_dict()


def test_a_nested_checkpoint_round_trips_and_its_model_loads(tmp_path):
    model, state = small_state()
    velocity = [np.full((4, 3), 0.5, np.float32), mt.tensor(np.ones(4, np.float32))]
    obj = {"epoch": 3, "model": state, "optim": {"lr": 0.01, "momentum": 0.9, "velocity": velocity},
           "note": "warm-up done", "best": None, "flags": (True, 2.5), "step": np.int64(120)}
    mt.save(obj, tmp_path / "ck.npz")
    back = mt.load(tmp_path / "ck.npz")
    assert list(back) == list(obj)
    assert back["epoch"] == 3 and back["note"] == "warm-up done" and back["best"] is None and back["step"] == 120
    assert back["flags"] == [True, 2.5] and back["optim"]["lr"] == 0.01 and back["optim"]["momentum"] == 0.9
    np.testing.assert_array_equal(back["optim"]["velocity"][0], velocity[0])
    np.testing.assert_array_equal(back["optim"]["velocity"][1], velocity[1].numpy())
    assert list(back["model"]) == list(state)
    other, _ = small_state()
    other.load_state_dict(back["model"])
    for name, value in state.items():
        np.testing.assert_array_equal(other.state_dict()[name], value)
    assert list(mt.load(tmp_path / "ck.npz", state_dict=True)) == list(state)  # its "model"
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as raw:  # plain arrays, no pickle
        assert all(raw[name].dtype != object for name in raw.files)


@pytest.mark.parametrize("bad, error, text", [
    ({"x": {1: np.zeros(2)}}, TypeError, "expected string keys, got 1 in the saved dict['x']"),
    ({"lr": float("nan")}, ValueError, "the saved dict['lr'] is nan (expected a finite number"),
    ({"f": [print]}, TypeError, "got builtin_function_or_method at the saved dict['f'][0]"),
])
def test_what_cannot_be_saved_without_pickle_is_refused_naming_where(bad, error, text, tmp_path):
    with pytest.raises(error, match=re.escape(text)):
        mt.save(bad, tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())


def _rewrite_record(path, record):
    with zipfile.ZipFile(path) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(json.dumps(record)), allow_pickle=False)
    entries[KIND_ENTRY + ".npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


@pytest.mark.parametrize("tree, text", [
    ({"dict": [["w", {"array": "a9"}]]}, "refers to 'a9', which is missing or referred to twice"),
    ({"dict": [["w", {"array": "a0"}], ["v", {"array": "a0"}]]}, "which is missing or referred to twice"),
    ({"dict": []}, "entries ['a0'] are not in the saved tree"),
    ({"dict": [["w", {"array": "a0"}], ["x", {"value": [1, 2]}]]}, "is not an array, value, dict or list"),
    ({"dict": [["w", {"array": "a0", "value": 1}]]}, "is not an object with one key"),
])
def test_a_hostile_tree_is_refused_naming_the_file(tree, text, tmp_path):
    path = tmp_path / "t.npz"
    mt.save({"w": np.zeros(2), "epoch": 1}, path)
    _rewrite_record(path, {"format": "minitorch_alex/save-v1", "kind": "tree", "tree": tree})
    with pytest.raises(ValueError, match=re.escape(text)) as info:
        mt.load(path)
    assert str(path) in str(info.value)
