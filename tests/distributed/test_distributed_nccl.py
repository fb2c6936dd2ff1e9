"""The NCCL path of minitorch_alex.distributed, on the CPU: fakes of the few CuPy/NCCL calls it
makes, with host arrays standing in for device memory. Two ranks run as two threads whose fake
NCCL communicators really sum each other's buffers, so the stream ordering, the unique-id
broadcast and the gradient averaging are checked end to end. The real NCCL library runs in
test_nccl_on_a_gpu (a one-rank communicator; skipped without CuPy and a GPU)."""
import importlib.util
import threading

import numpy as np
import pytest
from fake_nccl import FakeNccl, fake_cupy, real_nccl

import minitorch_alex as mt
import minitorch_alex.distributed as dist
import minitorch_alex.nn.functional as F
from minitorch_alex.distributed import nccl as nccl_module


class FakeWorld:
    """An MPI world of ``size`` threads: broadcast_ through shared memory."""

    def __init__(self, group, rank, size):
        self.group, self.rank, self.size, self.local_rank = group, rank, size, rank

    def broadcast_(self, array, root=0):
        if self.rank == root:
            self.group["bcast"] = array.copy()
        self.group["barrier"].wait()
        array[...] = self.group["bcast"]
        self.group["barrier"].wait()
        return array


@pytest.fixture
def host_pointers(monkeypatch):
    """Let host arrays play device arrays: their address instead of the CUDA array interface."""
    monkeypatch.setattr(nccl_module, "_device_pointer", lambda a, what: a.__array_interface__["data"][0])


def run_ranks(size, body):
    """Run ``body(rank, comm, log, cupy)`` in ``size`` threads; returns their results."""
    group = {"barrier": threading.Barrier(size), "bufs": [None] * size, "uids": [None] * size}
    results, errors = [None] * size, []

    def rank_main(rank):
        try:
            log = []
            cupy = fake_cupy(log)
            comm = dist.NcclComm(FakeWorld(group, rank, size), cupy=cupy, nccl=FakeNccl(group, log))
            results[rank] = body(rank, comm, log, cupy)
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            errors.append(e)
            group["barrier"].abort()

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results, group


def test_unique_id_goes_from_rank_0_to_every_rank(host_pointers):
    results, group = run_ranks(2, lambda rank, comm, log, cupy: (comm.rank, comm.size, cupy.devices))
    expected = FakeNccl(None, None).get_unique_id()
    assert group["uids"] == [expected, expected]
    assert results == [(0, 2, [0]), (1, 2, [1])]  # each rank on its own GPU: cuda:<local rank>


@pytest.mark.skipif(real_nccl() is None, reason="needs CuPy and libnccl (pip install -e '.[dev]' brings both)")
def test_the_real_nccl_takes_the_id_ncclcomm_passes():
    """CuPy's real get_unique_id and NcclCommunicator (their argument types are checked before any
    GPU is touched): without a GPU the call gets past the types to NCCL's own CUDA error; with
    one it makes a one-rank communicator. A tuple id (CuPy < 14) is a TypeError here."""
    nccl = real_nccl()
    assert isinstance(nccl.get_unique_id(), bytes)
    group = {"barrier": threading.Barrier(1)}
    try:
        comm = dist.NcclComm(FakeWorld(group, 0, 1), cupy=fake_cupy([]), nccl=nccl)
    except nccl.NcclError as e:  # no GPU on this machine: NCCL itself refused, not the argument types
        assert "CUDA" in str(e).upper()
    else:
        assert comm.size == 1


def test_allreduce_runs_on_the_side_stream_after_the_current_one(host_pointers):
    def body(rank, comm, log, cupy):
        log.clear()
        buf = np.full(5, rank + 1.0, np.float32)
        handle = comm.iallreduce_(buf)
        handle.wait()
        return buf, list(log), comm.stream.ptr

    results, _ = run_ranks(2, body)
    for buf, log, side in results:
        assert buf.tolist() == [3.0] * 5
        (rec1, s1, ready), (w1, s2, ready2), (op, count, dtype, stream), (rec2, s3, done), (w2, s4, done2) = log
        # the side stream waits for the work queued so far on the current stream ...
        assert (rec1, s1, w1, s2, ready2) == ("record", "current", "wait", "side", ready)
        # ... runs NCCL's allreduce on the side stream, not the current one ...
        assert (op, count, dtype, stream) == ("allReduce", 5, FakeNccl.NCCL_FLOAT32, side)
        # ... and wait() orders the current stream after it, without blocking the host
        assert (rec2, s3, w2, s4, done2) == ("record", "side", "wait", "current", done)


def test_nccl_rejects_host_arrays_and_unknown_dtypes(host_pointers, monkeypatch):
    def body(rank, comm, log, cupy):
        with pytest.raises(TypeError, match="NCCL has no type for dtype complex64"):
            comm.iallreduce_(np.zeros(3, np.complex64))
        return True

    run_ranks(1, body)
    monkeypatch.undo()
    with pytest.raises(TypeError, match="expected a C-contiguous CuPy array, got ndarray"):
        nccl_module._device_pointer(np.zeros(3), "iallreduce_")


@pytest.mark.parametrize("mode", dist.MODES)
def test_gradient_averaging_over_nccl(host_pointers, mode):
    """Two ranks, each its own data and its own initial weights: after the broadcast and the
    averaging, both hold rank 0's weights and the mean of the two ranks' gradients."""
    def grads_of(seed_weights, data_seed):
        mt.manual_seed(seed_weights)
        model = mt.nn.Sequential(mt.nn.Linear(6, 5, dtype=np.float64), mt.nn.ReLU(), mt.nn.Linear(5, 3, dtype=np.float64))
        x = np.random.default_rng(data_seed).normal(size=(4, 6))
        return model, x

    ranks = [grads_of(10 + rank, rank) for rank in (0, 1)]  # here: the global generator is not per thread

    def body(rank, comm, log, cupy):
        model, x = ranks[rank]
        dist.broadcast_parameters(model.parameters(), comm=comm)
        averager = dist.GradientAverager(model.parameters(), comm=comm, mode=mode, bucket_mb=0.0001)
        with averager.sync():
            F.cross_entropy(model(mt.tensor(x)), [0, 1, 2, 0]).backward()
        return [p.data.copy() for p in model.parameters()], [p.grad.data.copy() for p in model.parameters()]

    results, _ = run_ranks(2, body)
    expected_grads = []
    for rank in (0, 1):  # each rank's gradient with rank 0's weights, computed alone
        model, _ = grads_of(10, 0)
        _, x = grads_of(10, rank)
        F.cross_entropy(model(mt.tensor(x)), [0, 1, 2, 0]).backward()
        expected_grads.append([p.grad.data for p in model.parameters()])
        weights = [p.data for p in model.parameters()]
    for params, grads in results:
        for p, w in zip(params, weights):
            assert np.array_equal(p, w)
        for g, g0, g1 in zip(grads, *expected_grads):
            np.testing.assert_allclose(g, (g0 + g1) / 2, rtol=1e-13)


def _have_gpu():
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy
        from cupy.cuda import nccl  # noqa: F401
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no driver, no NCCL: skip
        return False


@pytest.mark.skipif(not _have_gpu(), reason="needs CuPy with NCCL and a GPU")
def test_nccl_on_a_gpu():
    """The real library, one rank (NCCL refuses two ranks on one GPU): pointers, types, streams."""
    import cupy

    comm = dist.NcclComm(dist.World(), device_id=0)
    x = cupy.arange(10, dtype=cupy.float32)
    comm.allreduce_(x)
    comm.broadcast_(x, 0)
    assert cupy.asnumpy(x).tolist() == list(range(10))
    lin = mt.nn.Linear(4, 3, device="cuda:0")
    F.cross_entropy(lin(mt.tensor(np.ones((2, 4), np.float32), device="cuda:0")), [0, 2]).backward()
    expected = [cupy.asnumpy(p.grad.data) for p in lin.parameters()]
    averager = dist.GradientAverager(lin.parameters(), comm=comm, mode="buckets", bucket_mb=1e-5)
    averager.begin(weight=0.5)  # a world of one with weight 1/2: the buffers do go through NCCL
    averager.finish()
    cupy.cuda.get_current_stream().synchronize()
    for p, g in zip(lin.parameters(), expected):
        np.testing.assert_allclose(cupy.asnumpy(p.grad.data), 0.5 * g, rtol=1e-6)
