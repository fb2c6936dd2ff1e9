"""The GPU augmentation's math on NumPy: ``crop_flip_normalize`` is bit-identical to the CPU
path (``augment.crop_to_chw``) for the same crop offsets, flips and PCA shifts, and the batch
plan draws what the CPU ``StoreLoader`` draws. (The CuPy pipeline itself: tests/gpu/test_gpu.py.)"""
import types

import cupy_api
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_alex.data import StoreLoader, StoreSplit
from minitorch_alex.data.augment import crop_to_chw, pca_shift, sample_train_params
from minitorch_alex.data.gpu_augment import GPUAugmenter, batch_plan, crop_flip_normalize


def make_split(rng, n=7, size=12):
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    cov = np.cov(images.reshape(-1, 3).T / 255.0)
    eigvals, eigvecs = np.linalg.eigh(cov)
    return StoreSplit(images=images, labels=rng.integers(0, 5, n), mean=images.mean(0).astype(np.float32),
                      eigvals=eigvals.astype(np.float32), eigvecs=eigvecs.astype(np.float32))


@given(seed=st.integers(0, 2**16), crop=st.integers(1, 12), use_mean=st.booleans(), use_shift=st.booleans(),
       use_index=st.booleans(), scale=st.sampled_from([1.0, 0.5, 1 / 255]))
def test_crop_flip_normalize_is_bit_identical_to_the_cpu_kernel(seed, crop, use_mean, use_shift, use_index, scale):
    rng = np.random.default_rng(seed)
    split = make_split(rng)
    n = 5
    p = sample_train_params(rng, n, 12, crop)
    shifts = pca_shift(p.alphas, split.eigvals, split.eigvecs) if use_shift else None
    mean = split.mean if use_mean else None
    index = rng.integers(0, len(split.images), n) if use_index else None
    images = split.images if use_index else split.images[:n]
    expected = crop_to_chw(images, p.ys, p.xs, p.flips, crop, mean, shifts, scale, index=index)
    got = crop_flip_normalize(np, images, p.ys, p.xs, p.flips, crop, mean, shifts, scale, index=index)
    assert got.dtype == np.float32 and got.shape == (n, 3, crop, crop) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def test_flip_mirrors_columns(rng):
    images = rng.integers(0, 256, (1, 4, 4, 3), dtype=np.uint8)
    plain = crop_flip_normalize(np, images, [0], [1], [False], 3)
    mirrored = crop_flip_normalize(np, images, [0], [1], [True], 3)
    np.testing.assert_array_equal(mirrored, plain[..., ::-1])
    np.testing.assert_array_equal(plain[0], images[0, 0:3, 1:4].transpose(2, 0, 1))


def test_batch_plan_draws_what_the_cpu_loader_draws(rng):
    split = make_split(rng, n=9)
    loader = StoreLoader(split, batch_size=4, train=True, seed=11, crop=10, workers=0)
    loader.set_epoch(2)
    for b, (images, labels) in enumerate(loader):
        images = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
        idx, ys, xs, flips, shifts = batch_plan(split, 4, 11, 2, b, 10)
        got = crop_flip_normalize(np, split.images, ys, xs, flips, 10, split.mean, shifts, index=idx)
        np.testing.assert_array_equal(got, images)
        np.testing.assert_array_equal(split.labels[idx], np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels))
    assert b == 2  # 9 images in batches of 4


def test_gpu_augmenter_needs_a_cuda_device(rng):
    with pytest.raises(ValueError, match="cuda"):
        GPUAugmenter(make_split(rng), device="cpu")


# -- the pipeline itself on a fake CuPy: NumPy arrays, synchronous streams, real event order --------

class FakeDeviceArray(np.ndarray):
    """A NumPy array playing a CuPy one on cuda:0 (``.set`` copies in, as CuPy's does)."""

    device = types.SimpleNamespace(id=0)

    def set(self, arr, stream=None):
        self[...] = arr


def fake_cupy(log):
    """The calls GPUAugmenter makes, as CuPy 14.2 takes them (tests/gpu/test_cupy_fakes.py holds this
    fake to the installed CuPy); streams run synchronously, events are logged."""
    class Stream:
        def __init__(self, null=False, non_blocking=False):
            self.name = "copy" if non_blocking else "current"

        def wait_event(self, event):
            log.append(("wait", self.name, event.id))

    class Event:
        count = 0

        def __init__(self, block=False, disable_timing=False):
            Event.count += 1
            self.id = Event.count

        def record(self, stream=None):
            log.append(("record", stream.name, self.id))

        def synchronize(self):
            log.append(("host waits", self.id))

    current = Stream()

    def dev(a):
        return np.asarray(a).view(FakeDeviceArray)

    cuda = types.SimpleNamespace(Stream=Stream, Event=Event, Device=cupy_api.OneDevice, is_available=lambda: True,
                                 get_current_stream=lambda device_id=-1: current,
                                 runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    fake = types.SimpleNamespace(cuda=cuda, ndarray=FakeDeviceArray, float32=np.float32, uint8=np.uint8,
                                 asarray=lambda a, dtype=None, order=None: dev(np.asarray(a, dtype)),
                                 empty=lambda shape, dtype=float, order="C": dev(np.empty(shape, dtype)),
                                 arange=lambda *a, dtype=None: dev(np.arange(*a, dtype=dtype)),
                                 where=lambda condition, x=None, y=None: dev(np.where(condition, x, y)),
                                 ascontiguousarray=lambda a, dtype=None: dev(np.ascontiguousarray(a, dtype)))
    return fake


@pytest.fixture
def fake_gpu(monkeypatch):
    import importlib

    device_mod = importlib.import_module("minitorch_alex.device")
    gpu_augment = importlib.import_module("minitorch_alex.data.gpu_augment")
    log = []
    fake = fake_cupy(log)
    monkeypatch.setattr(device_mod, "_cupy", fake)
    monkeypatch.setattr(device_mod, "_device_count", 1)
    monkeypatch.setattr(gpu_augment, "_empty_pinned", lambda shape, dtype: np.empty(shape, dtype))
    return fake, log


@pytest.mark.parametrize("world_size, rank", [(1, 0), (2, 0), (2, 1), (3, 2)])
@pytest.mark.parametrize("start, stop", [(0, None), (1, 3), (2, 3)])
def test_the_gpu_pipeline_gives_the_cpu_loaders_batches_bit_for_bit(rng, fake_gpu, world_size, rank, start, stop):
    """Every rank's rows of every batch, from any start batch (a resume), as the CPU StoreLoader
    gives them; labels stay on the host (NumPy int64)."""
    split = make_split(rng, n=11, size=12)
    cpu = StoreLoader(split, batch_size=4, train=True, seed=3, crop=10, workers=0, scale=0.5,
                     rank=rank, world_size=world_size)
    gpu = GPUAugmenter(split, batch_size=4, crop=10, device="cuda:0", seed=3, scale=0.5, rank=rank,
                       world_size=world_size)
    assert len(gpu) == len(cpu) == 3
    for loader in (cpu, gpu):
        loader.set_epoch(2, start_batch=start, stop_batch=stop)
    pairs = list(zip(cpu, gpu))
    assert len(pairs) == (stop or 3) - start
    for (xc, yc), (xg, yg) in pairs:
        assert isinstance(xg, FakeDeviceArray) and type(yg) is np.ndarray and yg.dtype == np.int64
        np.testing.assert_array_equal(np.asarray(xg), xc)
        np.testing.assert_array_equal(yg, yc)
    gpu.close()


def test_the_gpu_pipeline_orders_copies_and_augmentations_by_events(rng, fake_gpu):
    """Each augmentation waits for its batch's copy; each copy into a device slot waits for the
    augmentation that last read it; the host waits only before refilling a pinned slot whose copy
    was queued two batches before."""
    _, log = fake_gpu
    gpu = GPUAugmenter(make_split(rng, n=16, size=12), batch_size=4, crop=10, device="cuda:0", seed=1)
    gpu.set_epoch(0)
    list(gpu)
    gpu.close()
    records = {event: stream for kind, stream, event in (e for e in log if e[0] == "record")}
    copies = [e for e, s in records.items() if s == "copy"]
    augmentations = [e for e, s in records.items() if s == "current"]
    assert len(copies) == len(augmentations) == 4
    waits = [(s, e) for kind, s, e in (e for e in log if e[0] == "wait")]
    assert [e for s, e in waits if s == "current"] == copies  # batch b's augmentation after its copy
    assert [e for s, e in waits if s == "copy"] == augmentations[:2]  # batches 2, 3 reuse slots 0, 1
    assert [e for kind, e in (x for x in log if x[0] == "host waits")] == copies[:2]


def test_the_gpu_pipeline_refuses_bad_settings(rng, fake_gpu):
    split = make_split(rng)
    for kwargs, message in ((dict(crop=13), "crop in 1..12, got 13"), (dict(batch_size=0), "batch_size >= 1"),
                            (dict(rank=2, world_size=2), "rank")):
        with pytest.raises(ValueError, match=message):
            GPUAugmenter(split, device="cuda:0", **kwargs)


def test_the_trainer_feeds_a_cuda_device_through_the_gpu_pipeline(rng, fake_gpu, tmp_path):
    """On a CUDA device the trainer's training batches come from GPUAugmenter, with the run's
    seed, scale and rank, and give the batches of the CPU loader it uses elsewhere; validation
    stays on the CPU loader."""
    import minitorch_alex.nn as nn
    from minitorch_alex.train import TrainConfig, Trainer

    split = make_split(rng, n=10, size=12)
    split.classes = [f"c{i}" for i in range(5)]

    def trainer(devices):
        cfg = TrainConfig(epochs=1, batch_size=4, workers=0, out=str(tmp_path), seed=5, plots=False, progress=False,
                          input_scale=0.5, devices=devices)
        return Trainer(cfg, split, split, split.classes, model=nn.Sequential(nn.Flatten(), nn.Linear(300, 5)))

    on_gpu, on_cpu = trainer(("cuda:0",))._loader(split, train=True), trainer(("cpu",))._loader(split, train=True)
    assert isinstance(on_gpu, GPUAugmenter) and isinstance(on_cpu, StoreLoader)
    assert isinstance(trainer(("cuda:0",))._loader(split, train=False), StoreLoader)
    for loader in (on_gpu, on_cpu):
        loader.set_epoch(1, start_batch=1)
    for (xg, yg), (xc, yc) in zip(on_gpu, on_cpu, strict=True):
        np.testing.assert_array_equal(np.asarray(xg), xc)
        np.testing.assert_array_equal(yg, yc)
    on_gpu.close()


# held to the installed CuPy (tests/gpu/test_cupy_fakes.py holds the suite's other fakes)
def test_the_input_pipeline_fake_follows_cupy():
    cupy = cupy_api.installed_cupy()
    fake = fake_cupy([])
    # (its ndarray is NumPy's, for isinstance checks; its own methods are held to CuPy's below)
    assert cupy_api.fake_vs_real(fake, cupy, bookkeeping={"count", "name", "id", "ndarray"}) == []
    assert cupy_api.fake_vs_real(FakeDeviceArray, cupy.ndarray, {"device"}, "ndarray") == []
