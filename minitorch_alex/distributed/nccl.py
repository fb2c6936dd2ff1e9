"""GPU collectives: a NCCL communicator (CuPy's ``cupy.cuda.nccl``) per rank, one GPU per rank.

MPI only starts the processes and carries NCCL's 128-byte unique id from rank 0 to the others
(a ``Bcast`` of a uint8 array, no pickle); the gradients then go GPU to GPU through NCCL,
without host copies. Each collective runs on a side stream: it first waits for the work
already queued on the current stream (an event), so the caller's backward kernels keep
running while a bucket travels; ``wait()`` makes the current stream wait for the collective's
completion event, so later kernels see the result without blocking the host.

``NcclComm`` has the interface :class:`GradientAverager` and :func:`broadcast_parameters` use
(``size``, ``rank``, ``allreduce_``, ``iallreduce_``, ``broadcast_``), on CuPy arrays.
The ``cupy`` and ``nccl`` modules can be passed in, so that the logic is tested on a machine
without a GPU with fakes of the few calls used here.
"""
from __future__ import annotations

import numpy as np

UNIQUE_ID_BYTES = 128  # NCCL_UNIQUE_ID_BYTES

# dtype name -> name of the NCCL constant in cupy.cuda.nccl
_NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
               "bfloat16": "NCCL_BFLOAT16", "int32": "NCCL_INT32", "int64": "NCCL_INT64",
               "uint8": "NCCL_UINT8", "int8": "NCCL_INT8"}


class _NcclHandle:
    """A collective queued on the side stream; ``wait()`` orders the current stream after it."""

    def __init__(self, cupy, done):
        self._cupy, self._done = cupy, done

    def wait(self):
        self._cupy.cuda.get_current_stream().wait_event(self._done)

    def test(self) -> bool:
        return self._done.done


class NcclComm:
    """NCCL communicator over the ranks of ``world`` (an MPI :class:`World`), on GPU
    ``device_id`` (default: ``world.local_rank``, the usual one GPU per rank)."""

    def __init__(self, world, device_id: int | None = None, cupy=None, nccl=None):
        if cupy is None:
            import cupy
        if nccl is None:
            from cupy.cuda import nccl
        self._cupy, self._nccl = cupy, nccl
        self.rank, self.size = world.rank, world.size
        self.device_id = world.local_rank if device_id is None else device_id
        uid = np.zeros(UNIQUE_ID_BYTES, np.uint8)
        if world.rank == 0:
            uid[:] = _unique_id_bytes(nccl.get_unique_id())
        world.broadcast_(uid, 0)
        with cupy.cuda.Device(self.device_id):
            # NcclCommunicator(int ndev, bytes commId, int rank): bytes only since CuPy 14
            self.comm = nccl.NcclCommunicator(self.size, uid.tobytes(), self.rank)
            self.stream = cupy.cuda.Stream(non_blocking=True)

    def _type(self, array):
        name = _NCCL_TYPES.get(str(array.dtype))
        if name is None or not hasattr(self._nccl, name):
            raise TypeError(f"NcclComm: NCCL has no type for dtype {array.dtype}; expected one of "
                            f"{sorted(n for n, c in _NCCL_TYPES.items() if hasattr(self._nccl, c))}")
        return getattr(self._nccl, name)

    def _after_current_stream(self):
        """Make the side stream wait for everything queued so far on the current stream."""
        ready = self._cupy.cuda.Event(disable_timing=True)
        ready.record(self._cupy.cuda.get_current_stream())
        self.stream.wait_event(ready)

    def _finished(self):
        done = self._cupy.cuda.Event(disable_timing=True)
        done.record(self.stream)
        return _NcclHandle(self._cupy, done)

    def iallreduce_(self, array):
        """Queue the in-place sum of the contiguous CuPy ``array`` over all ranks; returns a
        handle whose ``wait()`` orders the current stream after it."""
        ptr = _device_pointer(array, "iallreduce_")
        self._after_current_stream()
        self.comm.allReduce(ptr, ptr, array.size, self._type(array), self._nccl.NCCL_SUM, self.stream.ptr)
        return self._finished()

    def allreduce_(self, array):
        """In-place sum over all ranks; the current stream is ordered after it. Returns ``array``."""
        self.iallreduce_(array).wait()
        return array

    def broadcast_(self, array, root: int = 0):
        """Overwrite ``array`` with rank ``root``'s, in place (ordered as ``allreduce_``)."""
        ptr = _device_pointer(array, "broadcast_")
        self._after_current_stream()
        self.comm.broadcast(ptr, ptr, array.size, self._type(array), root, self.stream.ptr)
        self._finished().wait()
        return array


def _unique_id_bytes(given) -> np.ndarray:
    """NCCL's unique id as 128 uint8s. CuPy >= 14 returns it as ``bytes`` (cupy_backends/cuda/libs/
    nccl.pyx, ``get_unique_id``: "versionchanged 14.0: previously a tuple of integers")."""
    if not isinstance(given, bytes) or len(given) != UNIQUE_ID_BYTES:
        what = f"{len(given)} bytes" if isinstance(given, bytes) else type(given).__name__
        raise RuntimeError(f"NcclComm: expected cupy.cuda.nccl.get_unique_id() to return {UNIQUE_ID_BYTES} bytes "
                           f"(CuPy >= 14), got {what}")
    return np.frombuffer(given, np.uint8)


def _device_pointer(array, what) -> int:
    """Address of a C-contiguous device array (CuPy, or anything with the CUDA array interface)."""
    interface = getattr(array, "__cuda_array_interface__", None)
    if interface is None or not array.flags.c_contiguous:
        raise TypeError(f"NcclComm.{what}: expected a C-contiguous CuPy array, got {type(array).__name__}"
                        f"{' (not contiguous)' if interface is not None else ''}")
    return interface["data"][0]
