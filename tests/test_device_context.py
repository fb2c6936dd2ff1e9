"""The virtual CPU devices behave like CuPy's GPUs: each thread has a current device, set by
``Device.context()``, and in strict mode any operation on an array of cpu:k, or an allocation
meant for it, made while another device is current raises (CuPy would launch the kernel or
allocate on the wrong GPU). These tests pin the semantics; tests/test_two_tower.py runs the
two-device model under them."""
import importlib
import threading

import numpy as np
import pytest

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex import amp
from minitorch_alex.device import Device, DeviceContextError, strict_devices

device_mod = importlib.import_module("minitorch_alex.device")  # (mt.device is the function)

CPU1 = Device("cpu:1")


@pytest.fixture
def strict():
    with strict_devices():
        yield


def test_context_sets_a_thread_local_current_device():
    assert device_mod.current_cpu_index() == 0
    seen = {}
    with CPU1.context():
        assert device_mod.current_cpu_index() == 1
        thread = threading.Thread(target=lambda: seen.setdefault("other", device_mod.current_cpu_index()))
        thread.start(), thread.join()
        with Device("cpu:2").context():
            assert device_mod.current_cpu_index() == 2
        assert device_mod.current_cpu_index() == 1
    assert device_mod.current_cpu_index() == 0 and seen["other"] == 0  # another thread: its own current device


def test_strict_arrays_refuse_use_outside_their_device(strict):
    t = mt.tensor(np.arange(6.0), device="cpu:1")
    a = t.data
    assert isinstance(a, device_mod.StrictArray) and a._mt_device == 1
    for op in (lambda: a + 1, lambda: a.copy(), lambda: a.astype(np.float32), lambda: np.concatenate([a, a]),
               lambda: a.sum(), lambda: np.zeros_like(a), lambda: t.xp.asarray(a)):
        with pytest.raises(DeviceContextError, match=r"cpu:1 was used while cpu:0 is current.*context\(\)"):
            op()
    assert a.reshape(2, 3).shape == (2, 3) and a[1:].size == 5  # views need no device, as in CuPy
    with CPU1.context():
        b = a * 2 + np.ones(6)
        assert b._mt_device == 1 and float(b.sum()) == 36.0
        assert t.xp.zeros(3)._mt_device == 1  # allocations go to the current device
    assert t.xp.zeros(3)._mt_device == 0
    np.testing.assert_array_equal(t.numpy(), np.arange(6.0))  # numpy(): a host view, usable anywhere


def test_tensor_ops_run_in_their_device_context(strict):
    x = mt.tensor(np.ones((2, 3)), requires_grad=True, device="cpu:1")
    w = mt.tensor(np.ones((4, 3)), requires_grad=True, device="cpu:1")
    loss = (F.relu(F.linear(x, w)) * 2.0).sum()  # a Python scalar becomes a cpu:1 array
    loss.backward()  # root gradient, accumulation and copies all on cpu:1
    assert x.grad.data._mt_device == 1 and w.grad.data._mt_device == 1
    np.testing.assert_allclose(w.grad.numpy(), np.full((4, 3), 4.0))
    loss2 = (F.linear(x, w)).sum()
    loss2.backward()  # accumulation into an existing grad
    np.testing.assert_allclose(w.grad.numpy(), np.full((4, 3), 6.0))
    assert (x.argmax().numpy() == 0) and bool((x > 0).numpy().all())


def test_optimizer_and_amp_work_on_another_device(strict):
    lin = mt.nn.Linear(3, 2, dtype=np.float32, device="cpu:1")
    mp = amp.MixedPrecision(lin, dtype="float16", scaler=amp.LossScaler(init_scale=8.0))
    opt = mt.optim.SGD(mp.parameters(), lr=0.1)
    x = mt.tensor(np.ones((4, 3), np.float32), device="cpu:1")
    for _ in range(2):
        mp.backward(mp.forward(x).sum())
        assert mp.step(opt)
    assert all(opt.state[p]["velocity"]._mt_device == 1 for p in opt.params)
    assert all(p.data._mt_device == 1 and p.dtype == np.float16 for p in lin.parameters())
    state = opt.state_dict()
    opt.load_state_dict(state)


def test_dropout_masks_are_made_on_the_inputs_device(strict):
    x = mt.tensor(np.ones((8, 8)), device="cpu:1")
    mt.manual_seed(0)
    y = F.dropout(x, 0.5)
    mt.manual_seed(0)
    expected = (np.random.default_rng(0).random((8, 8)) >= 0.5) * 2.0
    np.testing.assert_array_equal(y.numpy(), expected)  # the same draws as before: one seed, one mask


def test_bfloat16_mixed_precision_is_refused_on_cuda_in_one_line():
    with pytest.raises(ValueError, match=r"^mixed precision with bfloat16 is not supported on cuda:0: use dtype='float16'"):
        amp.check_supported(amp.half_dtype("bfloat16"), Device("cuda:0"))
    amp.check_supported(np.float16, Device("cuda:0"))
    amp.check_supported(amp.half_dtype("bfloat16"), Device("cpu"))


def test_cross_entropy_checks_host_labels_on_the_host(strict, monkeypatch):
    """Labels given on the host (the trainer's) are checked before they go to the device: no read
    of a device array between forward and backward (on a GPU it would wait for the forward).
    Reads of cpu:1's arrays are counted as a GPU's would be: int(), float(), item(), tolist()."""
    reads = []
    for name in ("__int__", "__float__", "__index__", "item", "tolist"):
        original = getattr(np.ndarray, name)
        monkeypatch.setattr(device_mod.StrictArray, name,
                            lambda self, *a, _f=original, _n=name: (reads.append(_n), _f(self, *a))[1], raising=False)
    for name in ("min", "max", "sum", "any", "all"):  # as in CuPy, a reduction is a 0-d device array
        original = getattr(np.ndarray, name)
        monkeypatch.setattr(device_mod.StrictArray, name, lambda self, *a, _f=original, **k: np.asarray(
            _f(self.view(np.ndarray), *a, **k)).view(device_mod.StrictArray))
    logits = mt.tensor(np.random.default_rng(0).normal(size=(4, 3)), requires_grad=True, device="cpu:1")
    with CPU1.context():
        loss = F.cross_entropy(logits, np.array([0, 2, 1, 2]))
        assert reads == []
        loss.backward()
        with pytest.raises(ValueError, match=r"target values must lie in \[0, 3\), got values in \[0, 3\]"):
            F.cross_entropy(logits, [0, 3, 1, 2])
        assert reads == []
        F.cross_entropy(logits, mt.tensor(np.array([0, 2, 1, 2]), device="cpu:1"))  # on the device: checked there
    assert reads, "labels already on the device are checked there (one read), the reads counted above"
