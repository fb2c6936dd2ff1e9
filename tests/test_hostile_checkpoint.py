"""Checkpoints and mt.load on hostile files: every check runs on the ZIP records and .npy headers
before any data is decompressed; errors are ValueError/FileNotFoundError naming the file."""
import io
import json
import os
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from hostile_helpers import entries, npy_bytes, small_net, write_entries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minitorch_alex as mt
from minitorch_alex.data import StoreSplit
from minitorch_alex.optim import SGD
from minitorch_alex.train import TrainConfig, Trainer, load_checkpoint
from minitorch_alex.train.checkpoint import TRAINER_KEYS, read_meta


def tiny_split(n=12, name="train"):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (n, 16, 16, 3)).astype(np.uint8)
    return StoreSplit(images, (np.arange(n) % 3).astype(np.int64), images.mean(axis=0).astype(np.float32),
                      np.array([0.2, 0.05, 0.01], np.float32), np.eye(3, dtype=np.float32), ["a", "b", "c"], name)


def trainer_for(out):
    cfg = TrainConfig(epochs=1, batch_size=4, lr=0.01, workers=0, out=str(out), plots=False, progress=False)
    return Trainer(cfg, tiny_split(), tiny_split(6, "val"), ["a", "b", "c"], model=small_net())


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real checkpoint of a tiny trained run."""
    out = tmp_path_factory.mktemp("good")
    t = trainer_for(out)
    t.fit(echo=lambda *_: None)
    return str(out / "last.npz")


def fresh(tmp_path=None):
    model = small_net()
    return model, SGD(model.parameters(), lr=0.01, momentum=0.9)


def rewrite(src, dst, change):
    """Copy the archive at ``src`` to ``dst``, ``change(items)`` editing {entry name: bytes} first."""
    items = entries(src)
    change(items)
    return write_entries(dst, items)


def load_into(path, tmp_path):
    model, opt = fresh(tmp_path)
    return load_checkpoint(path, model, opt, required=TRAINER_KEYS)


def refused(path, tmp_path, *parts):
    with pytest.raises(ValueError) as info:
        load_into(path, tmp_path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text, text
    for part in parts:
        assert part in text, (part, text)
    return text


# ----- one test per case of issue 17 ---------------------------------------------------------------

def test_zip_bomb_is_refused_from_its_declared_size_before_inflating(good, tmp_path):
    bomb = np.zeros(16 << 20, np.float32)  # 64 MiB of zeros deflate to ~64 KiB
    path = rewrite(good, tmp_path / "bomb.npz", lambda it: it.update({"model/5.weight.npy": npy_bytes(bomb)}))
    items = entries(path)
    write_entries(path, items, compress=True)
    assert os.path.getsize(path) < 1 << 20
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        refused(path, tmp_path, "model/5.weight", "declares", "expected at most")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20 and time.perf_counter() - t0 < 2.0  # nothing was inflated


def test_a_header_claiming_1e12_elements_is_refused_without_allocating(good, tmp_path):
    def lie(items):
        data = bytearray(items["model/0.weight.npy"])
        header = data[10:10 + int.from_bytes(data[8:10], "little")].decode("latin1")
        fake = header.replace("(8, 3, 3, 3)", "(1000000, 1000000)").encode("latin1")
        items["model/0.weight.npy"] = bytes(data[:8]) + len(fake).to_bytes(2, "little") + fake + bytes(data[10 + len(header):])

    path = rewrite(good, tmp_path / "huge.npz", lie)
    text = refused(path, tmp_path, "model/0.weight", "(1000000, 1000000)", "expected (8, 3, 3, 3)")
    assert "Memory" not in text


@pytest.mark.parametrize("dtype", [np.int8, np.float64, np.float16])
def test_weights_of_another_dtype_are_refused_not_cast(good, tmp_path, dtype):
    arrays = entries(good)
    w = np.load(io.BytesIO(arrays["model/0.weight.npy"]))
    path = rewrite(good, tmp_path / "typed.npz", lambda it: it.update({"model/0.weight.npy": npy_bytes(w.astype(dtype))}))
    refused(path, tmp_path, "model/0.weight", f"dtype {np.dtype(dtype)}", "expected float32")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_weights_are_refused_with_the_parameter_name(good, tmp_path, value):
    w = np.load(io.BytesIO(entries(good)["model/5.bias.npy"]))
    w[1] = value
    path = rewrite(good, tmp_path / "nan.npz", lambda it: it.update({"model/5.bias.npy": npy_bytes(w)}))
    refused(path, tmp_path, "model/5.bias", "NaN or infinite")


def test_a_pickled_entry_is_refused_and_never_run(good, tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("import os; os.environ['H3_PWNED'] = '1'",))

    payload = np.empty(1, dtype=object)
    payload[0] = Evil()
    path = rewrite(good, tmp_path / "evil.npz", lambda it: it.update({"meta.npy": npy_bytes(payload)}))
    text = refused(path, tmp_path, "meta", "dtype object")
    assert "pickle" not in text.lower() or "allow_pickle" not in text
    assert "H3_PWNED" not in os.environ


@pytest.mark.parametrize("make", ["empty", "truncated", "random"])
def test_zero_byte_truncated_and_random_files_name_the_path(good, tmp_path, make):
    path = tmp_path / f"{make}.npz"
    data = open(good, "rb").read()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2],
                      "random": np.random.default_rng(0).bytes(4096)}[make])
    text = refused(path, tmp_path)
    assert "allow_pickle" not in text
    with pytest.raises(ValueError, match=str(path)):
        read_meta(path)


def test_a_missing_checkpoint_is_file_not_found_with_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope.npz")):
        load_into(tmp_path / "nope.npz", tmp_path)


def _with_meta(good, dst, edit):
    def change(items):
        meta = json.loads(str(np.load(io.BytesIO(items["meta.npy"]))[()]))
        new = edit(meta)
        items["meta.npy"] = npy_bytes(np.array(new if isinstance(new, str) else json.dumps(new)))
    return rewrite(good, dst, change)


@pytest.mark.parametrize("edit, parts", [
    (lambda m: "[" * 100000 + "]" * 100000, ["nested"]),
    (lambda m: "{not json", ["expected JSON"]),
    (lambda m: {k: v for k, v in m.items() if k != "classes"}, ["no 'classes'"]),
    (lambda m: dict(m, epoch="3"), ["epoch", "expected an integer"]),
    (lambda m: dict(m, classes=[1, 2, 3]), ["classes", "list of strings"]),
    (lambda m: dict(m, rng={**m["rng"], "bit_generator": "seed"}), ["rng", "bit_generator one of"]),
    (lambda m: dict(m, rng={**m["rng"], "state": "x"}), ["rng", "valid PCG64 state"]),
    (lambda m: dict(m, optimizer={"param_groups": [{**m["optimizer"]["param_groups"][0], "lr": float("nan")}]}),
     ["optimizer (expected param_groups[0].lr a finite number"]),
    (lambda m: dict(m, optimizer={"lr": 0.01, "momentum": 1.5, "weight_decay": 0}),  # format v1's one group
     ["optimizer (expected momentum a finite number in [0, 1]"]),
    (lambda m: dict(m, running={**m["running"], "seen": -1}), ["running.seen"]),
    (lambda m: dict(m, format="other"), ["format"]),
])
def test_bad_meta_is_refused_by_the_schema(good, tmp_path, edit, parts):
    path = _with_meta(good, tmp_path / "meta.npz", edit)
    refused(path, tmp_path, "meta", *parts)
    model, opt = fresh(tmp_path)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError):
        load_checkpoint(path, model, opt, required=TRAINER_KEYS)
    for k, v in model.state_dict().items():  # nothing was loaded
        np.testing.assert_array_equal(v, before[k])


def test_entries_renamed_or_resized_are_refused(good, tmp_path):
    def rename(items):
        items["model/9.weight.npy"] = items.pop("model/5.weight.npy")

    refused(rewrite(good, tmp_path / "r.npz", rename), tmp_path, "unexpected entry 'model/9.weight'")
    refused(rewrite(good, tmp_path / "s.npz", lambda it: it.update(
        {"model/5.bias.npy": npy_bytes(np.zeros(4, np.float32))})), tmp_path, "model/5.bias", "shape (4,)", "expected (3,)")
    refused(rewrite(good, tmp_path / "v.npz", lambda it: it.pop("optim/velocity/3.npy")), tmp_path,
            "optim/velocity/3")


def test_checkpoints_carry_what_inference_needs(good, tmp_path):
    meta = read_meta(good)
    assert meta["classes"] == meta["class_names"] == ["a", "b", "c"]
    assert meta["image_size"] == 16 and meta["crop_size"] == 14 and meta["input_scale"] == 1.0
    assert len(meta["mean_rgb"]) == 3
    model, _ = fresh(tmp_path)
    loaded = load_checkpoint(good, model, arrays=["data/mean"])
    np.testing.assert_array_equal(loaded["arrays"]["data/mean"], tiny_split().mean)


# ----- mt.save / mt.load ---------------------------------------------------------------------------

def test_mt_save_and_load_round_trip_state_dicts_and_tensors(tmp_path):
    model = small_net()
    mt.save(model.state_dict(), tmp_path / "w.npz")
    other = small_net()
    other.load_state_dict(mt.load(tmp_path / "w.npz"))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, other.state_dict()[k])
    assert list(mt.load(tmp_path / "w.npz")) == list(model.state_dict())  # order kept
    t = mt.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    mt.save(t, tmp_path / "t.npz")
    back = mt.load(tmp_path / "t.npz")
    assert isinstance(back, mt.Tensor) and back.shape == (2, 3)
    np.testing.assert_array_equal(back.numpy(), t.numpy())
    mt.save(np.float16([1, 2]), tmp_path / "a.npz")
    assert mt.load(tmp_path / "a.npz").dtype == np.float16
    archive = np.load(tmp_path / "w.npz", allow_pickle=False)  # plain arrays, readable by NumPy
    assert all(archive[k].dtype != object for k in archive.files)
    with pytest.raises(TypeError, match="expected a Tensor, an ndarray or a dict"):
        mt.save([1, 2], tmp_path / "x.npz")


def test_mt_load_refuses_a_compressed_bomb(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros(8 << 20, np.float32))
    with pytest.raises(ValueError, match=f"{path}: entry 'x' declares"):
        mt.load(path)
    assert mt.load(path, max_bytes=64 << 20)["x"].shape == (8 << 20,)


# ----- the fuzz test -----------------------------------------------------------------------------

def _mutations():
    flip = st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                                                min_size=1, max_size=8))
    truncate = st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True))
    rename = st.tuples(st.just("rename"), st.integers(0, 20), st.text("abcdefgh/.0123", min_size=1, max_size=12))
    resize = st.tuples(st.just("resize"), st.integers(0, 20), st.lists(st.integers(0, 40), max_size=3))
    retype = st.tuples(st.just("retype"), st.integers(0, 20),
                       st.sampled_from(["int8", "float64", "float16", "uint8", "complex64", "<U3", "bool"]))
    json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                               lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                          max_size=3), max_leaves=8)
    meta = st.tuples(st.just("meta"), st.sampled_from(sorted(TRAINER_KEYS) + ["format", "loss_scaler", "config"]),
                     json_values)
    header = st.tuples(st.just("header"), st.integers(0, 20), st.integers(0, 10**13))
    return st.one_of(flip, truncate, rename, resize, retype, meta, header)


def _mutate(data, mutation):
    kind = mutation[0]
    if kind == "flip":
        data = bytearray(data)
        for where, xor in mutation[1] if data else ():
            data[int(where * len(data))] ^= xor
        return bytes(data)
    if kind == "truncate":
        return data[: int(mutation[1] * len(data))]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            items = {i.filename: zf.read(i) for i in zf.infolist()}
    except (zipfile.BadZipFile, ValueError, KeyError):  # an earlier mutation broke it: nothing to edit
        return data
    names = sorted(items)
    if kind == "meta":
        meta = json.loads(str(np.load(io.BytesIO(items["meta.npy"]))[()]))
        meta[mutation[1]] = mutation[2]
        items["meta.npy"] = npy_bytes(np.array(json.dumps(meta)))
    else:
        name = names[mutation[1] % len(names)]
        if kind == "rename":
            items[mutation[2] + ".npy"] = items.pop(name)
        elif kind == "resize":
            items[name] = npy_bytes(np.zeros(mutation[2], np.float32))
        elif kind == "retype":
            items[name] = npy_bytes(np.zeros(3, mutation[2]))
        elif kind == "header":
            raw = items[name]
            hlen = int.from_bytes(raw[8:10], "little")
            header = repr({"descr": "<f4", "fortran_order": False, "shape": (mutation[2],)}).ljust(hlen - 1) + "\n"
            items[name] = raw[:10] + header.encode("latin1")[:hlen] + raw[10 + hlen:]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, value in items.items():
            zf.writestr(name, value)
    return buf.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(_mutations(), min_size=1, max_size=3))
def test_fuzz_mutated_checkpoints_fail_only_with_value_errors_naming_the_path(good, tmp_path, mutations):
    data = open(good, "rb").read()
    for m in sorted(mutations, key=lambda m: m[0] in ("flip", "truncate")):  # bytes last: the archive must parse
        data = _mutate(data, m)
    path = tmp_path / "fuzz.npz"
    path.write_bytes(data)
    model, opt = fresh()
    budget = 2 * sum(v.nbytes for v in model.state_dict().values()) + len(data) * 4 + (1 << 20)
    tracemalloc.start()
    try:
        load_checkpoint(path, model, opt, required=TRAINER_KEYS)
    except (ValueError, FileNotFoundError) as exc:
        assert str(path) in str(exc)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= budget, (peak, budget)
    assert "H3_PWNED" not in os.environ
