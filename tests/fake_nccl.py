"""Fakes of the CuPy/NCCL calls ``minitorch_alex.distributed.nccl`` makes, on host arrays (as CuPy
14.2 takes them: tests/gpu/test_cupy_fakes.py holds them to the installed CuPy), and
``real_nccl()``, CuPy's own NCCL module where the installed wheels load it. Used by
tests/distributed/test_distributed_nccl.py and tests/benchmarks/test_gpu_check.py."""
import types

import numpy as np

_TYPES = {7: np.float32, 8: np.float64}


class FakeEvent:
    def __init__(self, log, disable_timing=False):
        self.log, self.stream, self.done = log, None, False

    def record(self, stream=None):
        self.stream, self.done = stream, True  # fake streams run synchronously
        self.log.append(("record", stream.name, id(self)))


class FakeStream:
    def __init__(self, log, name="side", non_blocking=False):
        self.log, self.name, self.ptr, self.non_blocking = log, name, 1000 + len(log), non_blocking

    def wait_event(self, event):
        self.log.append(("wait", self.name, id(event)))


class FakeNcclCommunicator:
    """One rank's communicator; ``group`` is shared by the ranks of a job, so allReduce sums
    the buffers of all ranks (threads) like NCCL would. Types as in CuPy v14.2.0's
    cupy_backends/cuda/libs/nccl.pyx: ``NcclCommunicator(int ndev, bytes commId, int rank)``,
    a 128-byte ``commId`` (ValueError otherwise), ``bytes`` only (Cython's TypeError otherwise)."""

    def __init__(self, group, log, ndev, commId, rank):
        if not isinstance(commId, bytes):
            raise TypeError(f"Argument 'commId' has incorrect type (expected bytes, got {type(commId).__name__})")
        if len(commId) != 128:
            raise ValueError(f"commId length {len(commId)} != 128.")
        self.group, self.log, self.ndev, self.uid, self.rank = group, log, int(ndev), commId, int(rank)
        group["uids"][rank] = commId

    def _view(self, ptr, count, datatype):
        ctype = np.ctypeslib.as_ctypes_type(_TYPES[datatype])
        return np.ctypeslib.as_array((ctype * count).from_address(ptr))

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        assert op == FakeNccl.NCCL_SUM and sendbuf == recvbuf
        self.log.append(("allReduce", count, datatype, stream))
        mine, barrier = self._view(sendbuf, count, datatype), self.group["barrier"]
        self.group["bufs"][self.rank] = mine
        barrier.wait()
        total = sum(b.copy() for b in self.group["bufs"])  # every rank has written its buffer
        barrier.wait()
        mine[...] = total
        barrier.wait()

    def broadcast(self, sendbuff, recvbuff, count, datatype, root, stream):
        self.log.append(("broadcast", count, datatype, root, stream))
        mine, barrier = self._view(recvbuff, count, datatype), self.group["barrier"]
        self.group["bufs"][self.rank] = mine
        barrier.wait()
        source = self.group["bufs"][root].copy()
        barrier.wait()
        mine[...] = source
        barrier.wait()


class FakeNccl:
    """``cupy.cuda.nccl`` of CuPy v14.2.0 (cupy_backends/cuda/libs/nccl.pyx): ``get_unique_id()``
    returns the id as ``bytes`` ("versionchanged 14.0: previously a tuple of integers"), NUL
    bytes included. tests/gpu/test_cupy_fakes.py holds these types to the installed library's."""
    NCCL_SUM, NCCL_FLOAT32, NCCL_FLOAT64 = 0, 7, 8

    def __init__(self, group, log):
        self.group, self.log = group, log

    def get_unique_id(self):
        uid = np.random.default_rng(5).integers(0, 256, 128).astype(np.uint8)
        uid[:3] = 0  # the real id starts with a family field, zero bytes included
        return uid.tobytes()

    def NcclCommunicator(self, ndev, commId, rank):
        return FakeNcclCommunicator(self.group, self.log, ndev, commId, rank)


def fake_cupy(log):
    """The calls NcclComm makes, as CuPy v14.2.0 takes them (cupy/cuda/stream.pyx, device.pyx);
    tests/gpu/test_cupy_fakes.py holds them to the installed CuPy."""
    current = FakeStream(log, "current")
    devices = []

    class Device:
        def __init__(self, device=None):
            self.i = device

        def __enter__(self):
            devices.append(self.i)

        def __exit__(self, *exc):
            return False

    # keyword-only, as the code calls them: CuPy's first parameters are Stream(null=...), Event(block=...)
    cuda = types.SimpleNamespace(Device=Device, Stream=lambda *, non_blocking=False: FakeStream(log, "side", non_blocking),
                                 Event=lambda *, disable_timing=False: FakeEvent(log, disable_timing),
                                 get_current_stream=lambda: current)
    return types.SimpleNamespace(cuda=cuda, devices=devices)


def real_nccl():
    """CuPy's own ``cupy.cuda.nccl`` when the installed wheels load it (the dev extra brings
    nvidia-nccl-cu13): its id and its argument types need no GPU."""
    try:
        from cupy.cuda import nccl
    except Exception:  # noqa: BLE001 - no CuPy, or CuPy without libnccl
        return None
    return nccl if getattr(nccl, "available", False) else None
