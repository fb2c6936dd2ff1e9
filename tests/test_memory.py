"""Memory of building a model and of the evaluation forward (issue 16): the same numbers, fewer bytes.

Peak RSS itself is measured by ``benchmarks/bench_cpu.py``; these tests pin the mechanisms with
tracemalloc (NumPy reports its allocations to it), which does not depend on the machine's load.
"""
import importlib
import threading
import tracemalloc

import numpy as np
import pytest

import minitorch_alex as mt
from minitorch_alex import random as mt_random

GENERATORS = [
    lambda seed: np.random.default_rng(seed),  # PCG64
    lambda seed: np.random.Generator(np.random.Philox(seed)),
    lambda seed: np.random.Generator(np.random.MT19937(seed)),
]


@pytest.mark.parametrize("make", GENERATORS)
@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
@pytest.mark.parametrize("shape", [(3, 5, 7), (1000, 3), (0,), ()])
def test_chunked_draws_are_one_draw(monkeypatch, make, chunk, shape):
    """normal/uniform_between draw chunk by chunk into the output; the values, and the generator's
    state afterwards, are bit for bit those of one float64 draw of the whole array, cast."""
    monkeypatch.setattr(mt_random, "_CHUNK", chunk)
    for dtype in (np.float32, np.float64):
        g_chunked, g_whole = make(3), make(3)
        got = mt_random.normal(shape, 0.5, 0.01, dtype, generator=g_chunked)
        want = g_whole.normal(0.5, 0.01, size=shape).astype(dtype)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        got = mt_random.uniform_between(shape, -0.3, 0.3, dtype, generator=g_chunked)
        want = (-0.3 + (0.3 - -0.3) * g_whole.random(shape)).astype(dtype)
        assert got.tobytes() == want.tobytes()
        assert g_chunked.random(3).tobytes() == g_whole.random(3).tobytes()  # same place in the stream


def test_chunked_draws_cross_the_real_chunk_size():
    n = mt_random._CHUNK * 2 + 5  # three chunks, the last one short
    got = mt_random.normal((n,), 0.0, 1.0, np.float32, generator=np.random.default_rng(0))
    assert got.tobytes() == np.random.default_rng(0).normal(0.0, 1.0, size=n).astype(np.float32).tobytes()


def test_normal_never_holds_the_float64_array():
    """Drawing a float32 array peaks near its own size (+ one chunk of float64 draws), not at 3x
    it (the whole array's float64 draws + the cast)."""
    shape = (4096, 2048)  # 32 MB as float32, 64 MB as float64; a chunk is 8 MB
    generator = np.random.default_rng(0)
    tracemalloc.start()
    try:
        values = mt_random.normal(shape, 0.0, 0.01, np.float32, generator=generator)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * values.nbytes, f"peak {peak / 2**20:.0f} MB for {values.nbytes / 2**20:.0f} MB of values"


def test_building_alexnet_peaks_below_two_copies_of_its_weights_and_a_float64_one():
    """Before issue 16 the build held every weight twice plus fc6 as float64 draws (3.7x the
    parameters at 1000 classes); drawn and loaded one parameter at a time it stays under 2.5x."""
    mt.manual_seed(0)
    tracemalloc.start()
    try:
        model = mt.models.alexnet(num_classes=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    weights = sum(p.data.nbytes for p in model.parameters())
    assert peak < 2.5 * weights, f"build peak {peak / 2**20:.0f} MB for {weights / 2**20:.0f} MB of parameters"


def test_eval_forward_leaves_nothing_behind():
    """After an evaluation forward only its output is new: no activation, and no scratch buffer
    of the convolutions (kept across calls for training, in every worker thread), stays alive."""
    mt.manual_seed(0)
    model = mt.models.alexnet(num_classes=10)
    model.eval()
    rng = np.random.default_rng(0)
    with mt.no_grad():  # loads every kernel (numba) at a smaller batch first
        model(mt.tensor(rng.standard_normal((1, 3, 224, 224), dtype=np.float32)))
    x = mt.tensor(rng.standard_normal((4, 3, 224, 224), dtype=np.float32))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with mt.no_grad():
            logits = model(x).numpy()
        left = tracemalloc.get_traced_memory()[0] - before - logits.nbytes
    finally:
        tracemalloc.stop()
    assert left < (256 << 10), f"{left / 2**20:.1f} MB still held after the forward"


def test_transient_workspaces_are_dropped_in_every_thread():
    """Scratch made inside ``transient()`` (here and in another thread) is gone after it; a buffer
    that was already big enough is reused and kept."""
    ws = importlib.import_module("minitorch_alex_kernels.cpu.workspace")
    f32, f64 = np.dtype(np.float32).str, np.dtype(np.float64).str
    ws.clear_workspaces()
    kept = ws.workspace("test.kept", (100,), np.float32)
    seen = {}

    def other_thread():
        ws.workspace("test.other", (1000,), np.float32)
        seen["pool"] = dict(ws._local.__dict__["pool"]), ws._local.__dict__["pool"]

    try:
        with ws.transient():
            assert ws.workspace("test.kept", (50,), np.float32).base is kept.base
            ws.workspace("test.grown", (10,), np.float64)
            t = threading.Thread(target=other_thread)
            t.start()
            t.join()
        pool = ws._local.__dict__["pool"]
        assert ("test.kept", f32) in pool and ("test.grown", f64) not in pool
        inside, after = seen["pool"]
        assert ("test.other", f32) in inside and ("test.other", f32) not in after
        assert ws._transient == {"depth": 0, "made": []}
    finally:
        ws.clear_workspaces()


def test_convolution_without_backward_keeps_no_scratch():
    """conv2d_forward(saved=None) runs in ``transient()``; with a saved dict (training) the
    scratch stays for the next step, as before."""
    ws = importlib.import_module("minitorch_alex_kernels.cpu.workspace")
    conv = importlib.import_module("minitorch_alex_kernels.cpu.conv")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 13, 13)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    ws.clear_workspaces()
    conv.conv2d_forward(x, w, None, (1, 1), (1, 1), 1)
    assert ws.workspace_bytes() == 0
    conv.conv2d_forward(x, w, None, (1, 1), (1, 1), 1, saved={})
    assert ws.workspace_bytes() > 0
    ws.clear_workspaces()


@pytest.mark.parametrize("n, dtype, relu", [(3, np.float32, True), (5, np.float64, False)])
def test_polyphase_forward_splits_per_chunk_with_the_same_bits(n, dtype, relu):
    """conv1's polyphase forward splits each chunk's images itself instead of the whole batch
    first (173 MB at batch 128): the output is bit for bit that of the whole-batch split."""
    conv = importlib.import_module("minitorch_alex_kernels.cpu.conv")
    polyphase = importlib.import_module("minitorch_alex_kernels.cpu.polyphase")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3, 47, 47)).astype(dtype)
    w = rng.standard_normal((8, 3, 11, 11)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    whole = conv._split_phases(x, (11, 11), (4, 4), (2, 2))
    want = conv._winograd_forward(whole, polyphase.split_weight(w, (4, 4)), b, (0, 0), 1, relu,
                                  conv.WINOGRAD[conv.winograd_for(dtype)])
    got = conv.conv2d_forward(x, w, b, (4, 4), (2, 2), 1, relu=relu, algorithm="polyphase")
    assert got.tobytes() == want.tobytes()
