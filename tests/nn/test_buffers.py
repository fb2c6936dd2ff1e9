"""Module buffers (BatchNorm's running statistics) wherever a state dict travels: state_dict and
load_state_dict, to(device/dtype), the trainer's checkpoints, mt.save/mt.load, torchvision's
state dicts, ONNX export. Each consumer is tested on its producer's real output; the check that
matters is the evaluation-mode logits after a reload (running statistics left behind changed
issue 30's logits by 16.3)."""
import numpy as np
import pytest

import minitorch_alex as mt
import minitorch_alex.nn as nn
from minitorch_alex.data import StoreSplit
from minitorch_alex.train import TrainConfig, Trainer, load_checkpoint

BN_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def bn_net(classes=3, seed=0):
    """A small classifier with both batch-norm layers, for 14 x 14 images (the trainer's crop of 16)."""
    mt.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
                         nn.Linear(8 * 6 * 6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, classes))


def bn_trainer(out, model, epochs=1):
    """The real Trainer on 24 images of 16 x 16 whose class is a bright band's position."""
    rng = np.random.default_rng(0)

    def split(n, name):
        labels = np.arange(n) % 3
        images = rng.integers(0, 60, (n, 16, 16, 3)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 + 4 * c: 4 + 4 * c] = 230
        return StoreSplit(images, labels.astype(np.int64), images.mean(axis=0).astype(np.float32),
                          np.array([0.2, 0.05, 0.01], np.float32), np.eye(3, dtype=np.float32), ["a", "b", "c"], name)

    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=0.01, workers=0, out=str(out), seed=0, plots=False,
                      progress=False)
    train = split(24, "train")
    return Trainer(cfg, train, split(9, "val"), train.classes, model=model)


def trained(model, steps=3, seed=1):
    """``model`` after ``steps`` training-mode forward passes on inputs far from mean 0 and var 1,
    so the running statistics are far from their initial 0 and 1."""
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        model(mt.tensor((rng.standard_normal((8, 3, 14, 14)) * 40 + 100).astype(np.float32)))
    return model


def eval_logits(model, x):
    with mt.no_grad():
        return model.eval()(mt.tensor(x)).numpy()


@pytest.fixture
def images():
    return (np.random.default_rng(7).standard_normal((4, 3, 14, 14)) * 40 + 100).astype(np.float32)


def test_buffers_are_registered_moved_cast_and_kept_out_of_parameters():
    bn = nn.BatchNorm2d(4)
    assert [n for n, _ in bn.named_buffers()] == list(BN_KEYS)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", *BN_KEYS]  # torchvision's order
    bn.to(dtype=np.float64)
    assert bn.running_mean.dtype == np.float64 and bn.weight.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64  # a counter is not cast, as in PyTorch
    bn.to("cpu:1")
    assert all(b.device == mt.device("cpu:1") for b in bn.buffers())
    bn.register_buffer("scratch", np.zeros(2), persistent=False)
    assert "scratch" in dict(bn.named_buffers()) and "scratch" not in bn.state_dict()
    with pytest.raises(KeyError, match="already has an attribute 'weight'"):
        bn.register_buffer("weight", np.zeros(4))
    with pytest.raises(TypeError, match="cannot assign a int to buffer 'running_mean'"):
        bn.running_mean = 3
    bn.running_mean = nn.Parameter(np.zeros(4))  # a Parameter replaces the buffer, as in PyTorch
    assert "running_mean" in dict(bn.named_parameters()) and "running_mean" not in dict(bn.named_buffers())


def test_state_dict_round_trip_gives_the_same_eval_logits(images):
    model = trained(bn_net())
    state = model.state_dict()
    assert {f"1.{k}" for k in BN_KEYS} <= set(state) and int(state["1.num_batches_tracked"]) == 3
    fresh = bn_net(seed=5)
    fresh.load_state_dict({k: v.copy() for k, v in state.items()})
    np.testing.assert_array_equal(eval_logits(fresh, images), eval_logits(model, images))
    with pytest.raises(KeyError, match=r"missing keys \['1.running_var'\]"):
        fresh.load_state_dict({k: v for k, v in state.items() if k != "1.running_var"})


def test_trainer_checkpoint_and_mt_load_restore_the_running_statistics(tmp_path, images):
    trainer = bn_trainer(tmp_path, trained(bn_net()))
    path = trainer.save()
    expected = eval_logits(trainer.model, images)
    fresh = bn_net(seed=9)
    load_checkpoint(path, fresh)
    np.testing.assert_array_equal(eval_logits(fresh, images), expected)
    other = bn_net(seed=9)
    other.load_state_dict(mt.load(path, state_dict=True))
    np.testing.assert_array_equal(eval_logits(other, images), expected)
    # what leaving them out costs: the initial statistics (0, 1) give other logits
    assert np.abs(eval_logits(bn_net(seed=9).train(), images) - expected).max() > 1.0


def test_trainer_fit_updates_and_saves_running_statistics(tmp_path, images):
    model = bn_net()
    trainer = bn_trainer(tmp_path, model)
    trainer.fit()
    assert int(model.state_dict()["1.num_batches_tracked"]) > 0
    fresh = bn_net(seed=4)
    load_checkpoint(tmp_path / "last.npz", fresh)
    np.testing.assert_array_equal(eval_logits(fresh, images), eval_logits(model, images))


def test_mt_save_and_load_keep_integer_and_float_buffers(tmp_path, images):
    model = trained(bn_net())
    mt.save({"epoch": 2, "model": model.state_dict()}, tmp_path / "ck.npz")
    state = mt.load(tmp_path / "ck.npz", state_dict=True)
    assert state["1.num_batches_tracked"].dtype == np.int64 and state["1.num_batches_tracked"].shape == ()
    fresh = bn_net(seed=3)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(eval_logits(fresh, images), eval_logits(model, images))


def test_a_torchvision_shaped_state_dict_with_batch_norm_loads_and_matches_torch(images):
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    torch.manual_seed(0)
    theirs = tnn.Sequential(tnn.Conv2d(3, 8, 3, padding=1), tnn.BatchNorm2d(8), tnn.ReLU(), tnn.MaxPool2d(3, 2),
                            tnn.Flatten(), tnn.Linear(8 * 6 * 6, 16), tnn.BatchNorm1d(16), tnn.ReLU(), tnn.Linear(16, 3))
    theirs.train()
    rng = np.random.default_rng(2)
    for _ in range(3):
        theirs(torch.from_numpy((rng.standard_normal((8, 3, 14, 14)) * 40 + 100).astype(np.float32)))
    state = mt.models.from_torchvision_state_dict(theirs.state_dict())
    assert state["1.num_batches_tracked"].shape == ()  # a 0-d counter stays 0-d
    ours = bn_net(seed=8)
    ours.load_state_dict(state)
    expected = theirs.eval()(torch.from_numpy(images)).detach().numpy()
    np.testing.assert_allclose(eval_logits(ours, images), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_onnx_export_normalises_by_the_running_statistics(tmp_path, images):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = trained(bn_net())
    path = mt.onnx.export(model, tmp_path / "bn.onnx", input_size=14, metadata={"classes": "a,b,c"})
    proto = onnx.load(str(path))
    assert [n.op_type for n in proto.graph.node].count("BatchNormalization") == 2
    assert {p.key: p.value for p in proto.metadata_props} == {"classes": "a,b,c"}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"images": images})[0]
    expected = eval_logits(model, images)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_mixed_precision_keeps_float32_running_statistics_and_checkpoints_them(images):
    from minitorch_alex.amp import MixedPrecision

    model = bn_net()
    mp = MixedPrecision(model, "float16")
    opt = mt.optim.SGD(mp.parameters(), lr=0.01)
    labels = mt.tensor(np.arange(4) % 3)
    for _ in range(2):
        loss = mt.nn.functional.cross_entropy(mp(mt.tensor(images)), labels)
        mp.backward(loss)
        mp.step(opt)
    assert model[1].running_mean.dtype == np.float32 and int(model[1].num_batches_tracked.data) == 2
    state = mp.state_dict()
    assert state["1.running_var"].dtype == np.float32 and state["0.weight"].dtype == np.float32
    fresh = bn_net(seed=6)
    fresh.load_state_dict(state)  # an amp run's checkpoint loads into a float32 model, buffers included
    np.testing.assert_array_equal(fresh.state_dict()["6.running_mean"], model.state_dict()["6.running_mean"])
    again = MixedPrecision(bn_net(seed=6), "float16")
    again.load_state_dict(state)
    np.testing.assert_array_equal(again.model.state_dict()["1.running_var"], state["1.running_var"])
