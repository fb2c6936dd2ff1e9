"""The order of the cross-GPU copies, checked against a fake CuPy that logs every call (no GPU):
a peer copy is ``memcpyPeerAsync`` on the destination's stream, after an event on the source's
stream and before an event the source's stream waits for; nothing synchronises a whole device or
the host. Dropout masks go up as bool through pinned memory, asynchronously, and the pinned
buffer lives until the copy is done. Towers on one GPU share its stream."""
import importlib
import itertools
import types

import cupy_api
import numpy as np
import pytest

from minitorch_alex.device import Device
from minitorch_alex.models.two_tower import CrossTowerCopy, Traffic

device_mod = importlib.import_module("minitorch_alex.device")


class FakeCupy:
    """The calls of the two-tower path, as CuPy v14.2.0 takes them (cupy/cuda/stream.pyx, device.pyx,
    cupy_backends/cuda/api/runtime.pyx, cupy/_core/core.pyx); tests/gpu/test_cupy_fakes.py holds them
    to the installed CuPy."""

    def __init__(self):
        self.log, self.current = [], 0
        self.streams = {}
        ids = itertools.count(1)
        fake = self

        class Stream:
            def __init__(self, null=False, non_blocking=False):
                self.device, self.non_blocking = fake.current, non_blocking
                self.ptr = next(ids)
                self.name = f"stream{self.ptr}@{self.device}"

            def wait_event(self, event):
                fake.log.append(("wait", self.name, event.name))

            def __repr__(self):
                return self.name

        class Event:
            def __init__(self, block=False, disable_timing=False):
                self.name, self.done = f"event{next(ids)}", False

            def record(self, stream):
                assert stream.device == fake.current, "an event is recorded under its stream's device"
                fake.log.append(("record", self.name, stream.name))

        class DeviceCtx:
            def __init__(self, device=None):
                self.index = device

            def __enter__(self):
                self.prev, fake.current = fake.current, self.index

            def __exit__(self, *exc):
                fake.current = self.prev

        class Array:
            def __init__(self, shape, dtype):
                self.shape, self.dtype = tuple(shape), np.dtype(dtype)
                self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
                self.data = types.SimpleNamespace(ptr=next(ids))
                self.device_id = fake.current

            def set(self, arr, stream=None):
                fake.log.append(("upload", arr.dtype.name, stream.name if stream else None, fake.current))

        def current_stream(device_id=-1):
            if self.current not in self.streams:
                self.streams[self.current] = Stream()
                self.streams[self.current].name = f"current@{self.current}"
            return self.streams[self.current]

        def forbidden(name):
            def call(*args, **kwargs):
                raise AssertionError(f"{name} synchronises: not allowed on the two-tower path")
            return call

        runtime = types.SimpleNamespace(
            memcpyPeerAsync=lambda dst, dstDevice, src, srcDevice, size, stream: self.log.append(
                ("memcpyPeerAsync", dstDevice, srcDevice, size, stream, self.current)),
            memcpyPeer=forbidden("memcpyPeer"), deviceSynchronize=forbidden("deviceSynchronize"),
            getDeviceCount=lambda: 2)
        self.cuda = types.SimpleNamespace(
            Device=DeviceCtx, Stream=Stream, Event=Event, get_current_stream=current_stream, runtime=runtime,
            is_available=lambda: True, alloc_pinned_memory=lambda size: (self.log.append(("pinned", size)), bytearray(size))[1])
        self.ndarray, self.Array = Array, Array
        self.empty = lambda shape, dtype=float: Array(shape, dtype)
        self.ascontiguousarray = lambda a: a


@pytest.fixture
def cp(monkeypatch):
    fake = FakeCupy()
    monkeypatch.setattr(device_mod, "_cupy", fake)
    monkeypatch.setattr(device_mod, "_device_count", 2)
    monkeypatch.setattr(device_mod, "_pinned_in_flight", [])
    return fake


def test_peer_copy_is_async_and_ordered_by_events(cp):
    with cp.cuda.Device(0):
        x = cp.empty((4, 8), np.float32)
    out = device_mod.transfer(x, Device("cuda:0"), Device("cuda:1"))
    assert out.device_id == 1 and out.shape == x.shape
    (rec_ready, wait_ready, copy, rec_copied, wait_copied) = cp.log
    s0, s1 = cp.streams[0], cp.streams[1]
    assert rec_ready[0] == "record" and rec_ready[2] == s0.name  # after x's producers on GPU 0
    assert wait_ready == ("wait", s1.name, rec_ready[1])  # GPU 1's stream waits for that, nothing else
    assert copy == ("memcpyPeerAsync", 1, 0, x.nbytes, s1.ptr, 1)  # on GPU 1's stream
    assert rec_copied[0] == "record" and rec_copied[2] == s1.name
    assert wait_copied == ("wait", s0.name, rec_copied[1])  # GPU 0 may reuse x's memory only after the read


def test_peer_copy_uses_the_towers_streams(cp):
    with cp.cuda.Device(0):
        t0, x = cp.cuda.Stream(), cp.empty((3,), np.float16)
    with cp.cuda.Device(1):
        t1 = cp.cuda.Stream()
    t0.name, t1.name = "tower0", "tower1"
    traffic = Traffic()
    copy = CrossTowerCopy()
    copy.forward(x, Device("cuda:0"), Device("cuda:1"), traffic, streams=(t0, t1))
    forward = [e for e in cp.log if e[0] in ("record", "wait")]
    assert [e[2] if e[0] == "record" else e[1] for e in forward] == ["tower0", "tower1", "tower1", "tower0"]
    assert cp.log[2][4] == t1.ptr
    cp.log.clear()
    with cp.cuda.Device(1):
        g = cp.empty((3,), np.float16)
    copy.backward(g)  # the gradient goes back from tower 1 to tower 0: the streams swap roles
    assert [e for e in cp.log if e[0] == "memcpyPeerAsync"] == [("memcpyPeerAsync", 0, 1, g.nbytes, t0.ptr, 0)]
    assert traffic.forward_bytes == traffic.backward_bytes == x.nbytes


def test_masks_go_up_as_bool_through_pinned_memory_without_waiting(cp):
    from minitorch_alex import random as mt_random

    keep = mt_random.keep_mask((16, 32), 0.5, Device("cuda:1"), np.random.default_rng(0))
    assert keep.dtype == np.bool_ and keep.device_id == 1
    (pinned, upload, record) = cp.log
    assert pinned == ("pinned", 16 * 32)  # one byte a unit, not the 8 of a float64 draw
    assert upload == ("upload", "bool", cp.streams[1].name, 1)  # async on GPU 1's current stream
    assert record[0] == "record"
    assert len(device_mod._pinned_in_flight) == 1  # the pinned buffer outlives the copy ...
    device_mod._pinned_in_flight[0][0].done = True
    mt_random.keep_mask((2,), 0.5, Device("cuda:1"))
    assert len(device_mod._pinned_in_flight) == 1  # ... and is let go once its event is done


def test_one_stream_per_gpu_shared_by_towers_on_one_gpu(cp):
    a, b = device_mod.tower_streams((Device("cuda:0"), Device("cuda:0")))
    assert a is b and not a.non_blocking  # blocking: ordered with the default stream the backward uses
    a, b = device_mod.tower_streams((Device("cuda:0"), Device("cuda:1")))
    assert a is not b and (a.device, b.device) == (0, 1)
    assert device_mod.tower_streams((Device("cuda:0"), Device("cpu")))[1] is None


# held to the installed CuPy (tests/gpu/test_cupy_fakes.py holds the suite's other fakes)
def test_the_two_tower_fake_follows_cupy():
    cupy = cupy_api.installed_cupy()
    fake = types.SimpleNamespace(**vars(FakeCupy()))
    assert cupy_api.fake_vs_real(fake, cupy, bookkeeping={"log", "current", "streams", "Array"}) == []
