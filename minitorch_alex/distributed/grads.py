"""Averaging gradients over ranks, broadcasting parameters, reducing metrics.

:class:`GradientAverager` packs the parameters' gradients into flat buffers (one per bucket),
sums them over the ranks with the communicator's allreduce and writes the result back into
``p.grad``. Each rank's gradient enters with a weight (default ``1 / world_size``;
``Shard.weight`` when the ranks' batches differ in size), so after :meth:`finish` every rank
holds the gradient of the mean loss over the global batch, as a single process would.

Modes (``mode=``), all giving the same numbers:

* ``"flat"``: after backward, one blocking allreduce of one flat buffer per dtype/device.
* ``"buckets"``: after backward, buckets of about ``bucket_mb`` MB in reverse parameter order
  (the order backward produces them), each launched with a non-blocking allreduce as soon as it
  is packed, so the packing of later buckets and the unpacking of earlier ones overlap the
  communication of the others.
* ``"overlap"``: buckets launched *during* backward, as soon as every gradient in them is
  final. The autograd engine has no public hook on leaf-gradient accumulation; this mode wraps
  each parameter's ``_add_grad`` (the one method ``autograd.backward`` calls to accumulate a
  leaf's gradient) on the instance. The minimal public hook autograd would need is
  ``Tensor.register_grad_accumulated_hook(fn)``: call ``fn(tensor)`` right after
  ``_add_grad`` in ``autograd.backward``.

Buckets are always launched in bucket order on every rank (a ready bucket waits for the ones
before it), since MPI and NCCL need all ranks to issue their collectives in the same order.
``"overlap"`` assumes each parameter receives its gradient once per backward (as in PyTorch's
DDP); a parameter used twice in one forward is reported with a clear error: use ``"buckets"``.
"""
from __future__ import annotations

import types

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor
from .world import _Done, get_world

MODES = ("flat", "buckets", "overlap")
_DONE = _Done()  # the handle of a blocking collective


class _Bucket:
    """Parameters whose gradients travel in one flat buffer (one dtype, one device)."""

    def __init__(self, items, param):
        self.items = items  # [(param index, offset, size)]
        with param.device.context():  # on the parameters' GPU, whichever one is current
            self.buffer = param.xp.empty(sum(n for _, _, n in items), dtype=param.dtype)
        self.ready = 0
        self.handle = None


class GradientAverager:
    """Average the gradients of ``params`` over the ranks of ``comm`` (default: the MPI world;
    an :class:`NcclComm` for CuPy parameters). Build it after the model is on its device.

    Use per step, between ``loss.backward()`` and ``optimizer.step()``::

        averager.begin(weight=shard.weight)   # before backward (needed by mode="overlap")
        loss.backward()
        averager.finish()                     # p.grad is now the global-batch gradient

    or ``with averager.sync(shard.weight): loss.backward()``. In a world of one both are no-ops.
    A rank whose shard is empty still calls ``begin``/``finish`` (without backward): it
    contributes zeros and receives the others' average.
    """

    def __init__(self, params, comm=None, mode: str = "buckets", bucket_mb: float = 25.0):
        if mode not in MODES:
            raise ValueError(f"GradientAverager: mode must be one of {MODES}, got {mode!r}")
        if bucket_mb <= 0:
            raise ValueError(f"GradientAverager: bucket_mb must be > 0, got {bucket_mb}")
        self.params = list(params)
        if not self.params:
            raise ValueError("GradientAverager: got an empty parameter list")
        self.comm = get_world() if comm is None else comm
        self.mode, self.size = mode, self.comm.size
        limit = float("inf") if mode == "flat" else bucket_mb * 2 ** 20
        self.buckets = self._make_buckets(limit)
        self._where = {}  # param index -> (bucket, offset, size)
        for bucket in self.buckets:
            for i, off, n in bucket.items:
                self._where[i] = (bucket, off, n)
        self._weight, self._active, self._next = None, False, 0
        self._seen = [False] * len(self.params)
        if mode == "overlap" and self.size > 1:
            for i, p in enumerate(self.params):
                p._add_grad = self._hooked_add_grad(p, i)

    def _make_buckets(self, limit):
        """Buckets of consecutive parameters in reverse order, split by size, dtype and device."""
        buckets, items, key, nbytes = [], [], None, 0
        for i in reversed(range(len(self.params))):
            p = self.params[i]
            k = (p.dtype, str(p.device))
            size_bytes = p.size * p.dtype.itemsize
            if items and (k != key or nbytes + size_bytes > limit):
                buckets.append(_Bucket(items, self.params[items[0][0]]))
                items, nbytes = [], 0
            items.append((i, sum(n for _, _, n in items), p.size))
            key, nbytes = k, nbytes + size_bytes
        buckets.append(_Bucket(items, self.params[items[0][0]]))
        return buckets

    # -- the hook (mode="overlap") ----------------------------------------------------------------
    def _hooked_add_grad(self, p, i):
        averager = self

        def add_grad(tensor, g, owned=False):
            type(tensor)._add_grad(tensor, g, owned)
            # a bound method: a copy of the parameter (copy.deepcopy) gets its own, which
            # accumulates into the copy and does not report to this averager
            if averager._active and tensor is averager.params[i]:
                averager._gradient_final(i)
        return types.MethodType(add_grad, p)

    def _gradient_final(self, i):
        bucket, off, n = self._where[i]
        if self._seen[i]:
            raise RuntimeError(f"GradientAverager(mode='overlap'): parameter {i} of shape {self.params[i].shape} "
                               "received a second gradient in one backward (used twice in the forward?); "
                               "use mode='buckets'")
        self._seen[i] = True
        self._pack(i, off, n, bucket)
        bucket.ready += 1
        self._launch_ready()
        for b in self.buckets[:self._next]:  # let launched buckets progress (MPI needs calls)
            if b.handle is not None:
                b.handle.test()

    def close(self) -> None:
        """Remove the hooks (mode="overlap")."""
        for p in self.params:
            p.__dict__.pop("_add_grad", None)

    # -- per step -----------------------------------------------------------------------------
    def begin(self, weight: float | None = None) -> None:
        """Start a step: this rank's gradient will enter the sum times ``weight`` (default
        ``1 / world_size``; pass ``Shard.weight``)."""
        if self._active:
            raise RuntimeError("GradientAverager.begin: the previous step was not finished")
        self._weight = 1.0 / self.size if weight is None else float(weight)
        self._active, self._next = True, 0
        self._seen = [False] * len(self.params)
        for b in self.buckets:
            b.ready, b.handle = 0, None

    @no_grad()
    def finish(self) -> None:
        """Sum the weighted gradients over all ranks; afterwards ``p.grad`` holds the result on
        every rank (also for parameters that got no gradient here). Call after backward."""
        if not self._active:
            self.begin()
        if self.size == 1 and self._weight == 1.0:  # a world of one: nothing to do, nothing copied
            self._active = False
            return
        for bucket in self.buckets:  # pack what the hook did not (all of it unless "overlap")
            for i, off, n in bucket.items:
                if not self._seen[i]:
                    self._seen[i] = True
                    self._pack(i, off, n, bucket)
                    bucket.ready += 1
            if self.mode == "flat":
                self.comm.allreduce_(bucket.buffer)
                bucket.handle = _DONE
                self._next += 1
            else:
                self._launch_ready()
        for bucket in self.buckets:
            bucket.handle.wait()
            for i, off, n in bucket.items:
                p, view = self.params[i], bucket.buffer[off:off + n].reshape(self.params[i].shape)
                with p.device.context():
                    if p.grad is None:
                        p.grad = Tensor._wrap(view.copy(), p.device)
                    else:
                        p.grad.data[...] = view
        self._active = False

    def cancel(self) -> None:
        """Abandon the step begun (an exception in backward): the next ``begin`` starts afresh."""
        self._active = False

    def sync(self, weight: float | None = None):
        """Context manager: ``begin(weight)`` on entry, ``finish()`` on a normal exit."""
        return _Sync(self, weight)

    def _pack(self, i, off, n, bucket):
        p, out = self.params[i], bucket.buffer[off:off + n]
        with p.device.context():
            if p.grad is None:
                out[...] = 0
            else:
                p.xp.multiply(p.grad.data.reshape(-1), self._weight, out=out)

    def _launch_ready(self):
        while self._next < len(self.buckets):
            bucket = self.buckets[self._next]
            if bucket.ready < len(bucket.items):
                return
            bucket.handle = self.comm.iallreduce_(bucket.buffer)
            self._next += 1


class _Sync:
    def __init__(self, averager, weight):
        self.averager, self.weight = averager, weight

    def __enter__(self):
        self.averager.begin(self.weight)
        return self.averager

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.averager.finish()
        else:
            self.averager.cancel()
        return False


@no_grad()
def broadcast_parameters(params, comm=None, root: int = 0) -> None:
    """Overwrite every parameter (and buffer tensor) with rank ``root``'s values, in place, so
    all ranks start from the same initialization."""
    comm = get_world() if comm is None else comm
    if comm.size == 1:
        return
    for p in params:
        data = p.data if isinstance(p, Tensor) else p
        if data.flags.c_contiguous:
            comm.broadcast_(data, root)
        else:
            tmp = data.copy()
            comm.broadcast_(tmp, root)
            data[...] = tmp


def all_reduce_sum(values, comm=None) -> np.ndarray:
    """Sum of ``values`` (numbers or an array) over all ranks, as a new float64 or int64 array
    on every rank: e.g. ``correct, total = all_reduce_sum([correct, total])`` for accuracy over
    the whole validation set, each image counted once."""
    comm = get_world() if comm is None else comm
    a = np.asarray(values)
    a = np.ascontiguousarray(a, dtype=np.int64 if np.issubdtype(a.dtype, np.integer) else np.float64).copy()
    return comm.allreduce_(a)
