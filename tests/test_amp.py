"""Mixed precision on the CPU with NumPy float16: the loss scaler, inf/NaN detection, the master
weights, skipped steps, and a short training run against float32."""
import numpy as np
import pytest

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex import amp, nn


def test_loss_scaler_backs_off_on_overflow_and_grows_after_the_interval():
    s = amp.LossScaler(init_scale=1024.0, growth_interval=3, min_scale=256.0)
    s.update(found_inf=True)
    assert s.scale == 512.0 and s.skipped == 1
    s.update(True), s.update(True)
    assert s.scale == 256.0  # floored at min_scale
    for _ in range(2):
        s.update(False)
    assert s.scale == 256.0 and s.good_steps == 2
    s.update(False)
    assert s.scale == 512.0 and s.good_steps == 0  # the third good step in a row doubles it
    s.update(False), s.update(True)
    assert s.scale == 256.0 and s.good_steps == 0  # an overflow resets the count
    restored = amp.LossScaler()
    restored.load_state_dict(s.state_dict())
    assert restored.state_dict() == s.state_dict()


def test_disabled_scaler_keeps_scale_one_but_counts_skips():
    s = amp.LossScaler(enabled=False)
    s.update(True)
    assert s.scale == 1.0 and s.skipped == 1


def test_all_finite_finds_inf_and_nan_in_float16():
    ok = [np.ones(3, np.float16), np.zeros((2, 2), np.float16)]
    assert amp.all_finite(ok) and amp.all_finite([])
    assert not amp.all_finite(ok + [np.array([1, np.inf], np.float16)])
    assert not amp.all_finite(ok + [np.array([np.nan], np.float16)])
    with np.errstate(over="ignore"):
        assert not amp.all_finite([np.float16(60000) * np.ones(2, np.float16) * np.float16(2)])  # overflow is inf


def small_net(seed=0):
    mt.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.LocalResponseNorm(3, alpha=1e-2),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


def test_master_weights_are_float32_copies_of_the_original_values():
    model = small_net()
    original = {k: v.copy() for k, v in model.state_dict().items()}
    mp = amp.MixedPrecision(model, "float16")
    for (name, p), m in zip(model.named_parameters(), mp.parameters()):
        assert p.dtype == np.float16 and m.dtype == np.float32
        np.testing.assert_array_equal(m.data, original[name])  # not the float16 rounding
        np.testing.assert_array_equal(p.data, original[name].astype(np.float16))
    assert set(mp.master_state_dict()) == set(original)


def test_state_dict_round_trip_loads_masters_and_their_half_copies():
    source = amp.MixedPrecision(small_net(seed=1), "float16")
    target = amp.MixedPrecision(small_net(seed=2), "float16")
    target.load_state_dict(source.state_dict())
    for (name, p), m, s in zip(target.model.named_parameters(), target.master, source.master):
        np.testing.assert_array_equal(m.data, s.data)
        np.testing.assert_array_equal(p.data, s.data.astype(np.float16), err_msg=name)
    bad = dict(source.state_dict())
    name = next(iter(bad))
    bad[name] = bad[name][:1]
    with pytest.raises(ValueError, match=f"{name}: expected"):
        target.load_state_dict(bad)
    with pytest.raises(KeyError, match="missing"):
        target.load_state_dict({})


def test_a_step_updates_masters_with_unscaled_gradients_and_copies_them_back(rng):
    model = small_net()
    mp = amp.MixedPrecision(model, "float16", scaler=amp.LossScaler(init_scale=128.0))
    opt = mt.optim.SGD(mp.parameters(), lr=0.1, momentum=0.0, weight_decay=0.0)
    x, y = rng.standard_normal((2, 3, 8, 8)).astype(np.float32), [1, 3]
    logits = mp.forward(x)
    assert logits.dtype == np.float32
    mp.backward(F.cross_entropy(logits, y))
    half_grads = [p.grad.data.copy() for p in mp.model_params]
    masters_before = [m.data.copy() for m in mp.master]
    assert mp.step(opt)
    for m, before, g, p in zip(mp.master, masters_before, half_grads, mp.model_params):
        assert g.dtype == np.float16
        expected = before - np.float32(0.1) * (g.astype(np.float32) * np.float32(1 / 128))
        np.testing.assert_allclose(m.data, expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(p.data, m.data.astype(np.float16))
        assert p.grad is None and m.grad is None
    assert mp.scaler.scale == 128.0 and mp.scaler.good_steps == 1


def test_an_overflowing_step_is_skipped_and_the_scale_halved(rng):
    model = small_net()
    mp = amp.MixedPrecision(model, "float16", scaler=amp.LossScaler(init_scale=2.0**40))  # overflows float16
    opt = mt.optim.SGD(mp.parameters(), lr=0.1)
    masters, halves = [m.data.copy() for m in mp.master], [p.data.copy() for p in mp.model_params]
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    mp.backward(F.cross_entropy(mp.forward(x), [0, 1]))
    assert not mp.step(opt)
    assert mp.scaler.scale == 2.0**39 and mp.scaler.skipped == 1
    for m, before in zip(mp.master, masters):
        np.testing.assert_array_equal(m.data, before)
    for p, before in zip(mp.model_params, halves):
        np.testing.assert_array_equal(p.data, before)
    assert not opt.state  # the optimizer never ran: no velocity made


def test_mixed_precision_training_follows_float32_training(rng):
    x, y = rng.standard_normal((4, 3, 8, 8)).astype(np.float32), [0, 1, 2, 3]
    ref = small_net(1)
    ref_opt = mt.optim.SGD(ref.parameters(), lr=0.05)
    mp = amp.MixedPrecision(small_net(1), "float16", scaler=amp.LossScaler(init_scale=1024.0, growth_interval=2))
    opt = mt.optim.SGD(mp.parameters(), lr=0.05)
    losses, ref_losses = [], []
    for _ in range(4):
        ref_opt.zero_grad()
        loss = F.cross_entropy(ref(mt.tensor(x)), y)
        loss.backward()
        ref_opt.step()
        ref_losses.append(loss.item())
        loss16 = F.cross_entropy(mp.forward(x), y)
        mp.backward(loss16)
        assert mp.step(opt)
        losses.append(loss16.item())
    assert mp.scaler.scale == 4096.0  # grew twice: two good steps each
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-2)
    assert losses[-1] < losses[0]
    for (name, p), m in zip(ref.named_parameters(), mp.parameters()):
        np.testing.assert_allclose(m.data, p.data, rtol=2e-2, atol=2e-3, err_msg=name)


def test_dtype_names():
    assert amp.half_dtype("float16") == np.float16
    with pytest.raises(ValueError, match="float16"):
        amp.half_dtype("float32")
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="ml_dtypes"):
            amp.half_dtype("bfloat16")
    else:
        assert amp.half_dtype("bfloat16").name == "bfloat16"


def test_refuses_a_model_that_is_already_half():
    model = small_net()
    amp.MixedPrecision(model)
    with pytest.raises(TypeError, match="float16"):
        amp.MixedPrecision(model)
