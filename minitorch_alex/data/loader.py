"""Batches of augmented images from a store split, optionally made by
worker processes.

Determinism: the epoch's sample order comes from
``default_rng([seed, epoch, 0, 0])`` and the augmentation of batch ``b``
from ``default_rng([seed, epoch, 1, b])``. No random state depends on
which process makes a batch, so for a given seed the batches are identical
for any number of workers (``workers=0`` included) and come out in order.

Worker design: the parent allocates a ring of ``workers * prefetch`` batch
*slots* in shared memory before starting the workers. Each task sent to a
worker is four small integers (iteration id, epoch, batch index, slot);
the worker writes the batch straight into that slot and answers with the
slot number. Pixels never go through a queue (no pickling of arrays). Batch
``b`` always goes to worker ``b % workers``; the parent yields batches in
order, re-using a slot once its batch has been handed out.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
import traceback
from collections import deque

import numpy as np

from .augment import center_crop, crop_to_chw, default_crop, pca_shift, sample_train_params, ten_crop
from .store import Store, StoreChanged, StoreSplit, check_unchanged


def epoch_range(epoch, start_batch, stop_batch, batches):
    """``(epoch, start, stop)`` for iterating batches ``start .. stop - 1`` of an epoch of
    ``batches`` batches (``stop_batch`` None: to the end); raises ValueError when out of range."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    stop = batches if stop_batch is None else min(stop_batch, batches)
    if not 0 <= start_batch <= stop:
        raise ValueError(f"need 0 <= start_batch <= stop_batch <= {batches}, got {start_batch} and {stop_batch}")
    return epoch, start_batch, stop


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The order in which the ``n`` samples are visited in ``epoch``, (n,) int64."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch, 0, 0]).permutation(n)


def shard_bounds(rows: int, world_size: int, rank: int) -> tuple[int, int]:
    """Rows ``start, stop`` of a batch of ``rows`` that ``rank`` of ``world_size`` takes: B / N
    each of a full batch (B a multiple of N); of a last, partial batch of m rows the first
    ``m % N`` ranks take one row more (a rank may get none when m < N)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0..{world_size - 1}, got {rank}")
    base, extra = divmod(rows, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def make_batch(split: StoreSplit, idx: np.ndarray, start: int, global_size: int, seed: int, epoch: int, b: int,
               train: bool, crop: int, ten_crop_mode: bool, alpha_std: float, scale: float,
               out: np.ndarray) -> np.ndarray:
    """Samples ``idx`` (k,), rows ``start:start + k`` of the ``global_size`` rows of batch ``b``
    of ``epoch``, into ``out`` ``(k, 3, C, C)`` (``(k, 10, 3, C, C)`` with ``ten_crop_mode``).

    Training draws the crops, flips and PCA coefficients of the *whole* global batch from
    ``default_rng([seed, epoch, 1, b])`` and applies only these rows, so every image is
    augmented alike on any number of ranks (one rank: ``start = 0``, ``k = global_size``)."""
    if train:
        p = sample_train_params(np.random.default_rng([seed, epoch, 1, b]), global_size, split.size, crop, alpha_std)
        mine = slice(start, start + len(idx))
        shifts = pca_shift(p.alphas[mine], split.eigvals, split.eigvecs)
        return crop_to_chw(split.images, p.ys[mine], p.xs[mine], p.flips[mine], crop, split.mean, shifts, scale,
                           out, idx)
    if ten_crop_mode:
        return ten_crop(split.images, split.mean, crop, scale, out=out, index=idx)
    return center_crop(split.images, split.mean, crop, scale, out=out, index=idx)


def _exit_status(code):
    """A worker's exit code as words: 'killed by SIGBUS' for -7."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"exit code {code}"


def shared_memory_check(nbytes: int) -> None:
    """Refuse (``OSError(ENOSPC)``, one line) batch slots that fit neither in /dev/shm nor in the
    temporary folder, where ``multiprocessing`` places them: it makes a sparse file there, and
    writing into it when the filesystem is full kills the process with SIGBUS, no message."""
    import errno
    import multiprocessing.heap
    import tempfile

    places = list(getattr(multiprocessing.heap.Arena, "_dir_candidates", [])) + [tempfile.gettempdir()]
    free = {}
    for place in places:
        try:
            st = os.statvfs(place)
        except OSError:
            continue
        free[place] = st.f_bavail * st.f_frsize
        if free[place] >= nbytes:
            return
    shown = " and ".join(f"{b} bytes free in {p}" for p, b in free.items())
    raise OSError(errno.ENOSPC, f"the StoreLoader's batch slots need {nbytes} bytes of shared memory (expected >= "
                                f"{nbytes} bytes free vs {shown}): lower --workers or --batch-size, or give /dev/shm "
                                "more room (docker run --shm-size)")


class _BatchMaker:
    """Everything needed to build (this rank's rows of) batch ``b`` of ``epoch`` anywhere: it
    is handed to each worker once, at start-up. ``batch_size`` is the global batch."""

    def __init__(self, split: StoreSplit, batch_size, shuffle, train, seed, drop_last, crop,
                 ten_crop, alpha_std, scale, rank=0, world_size=1):
        self.split, self.batch_size, self.shuffle, self.train = split, batch_size, shuffle, train
        self.seed, self.drop_last, self.crop, self.ten_crop = seed, drop_last, crop, ten_crop
        self.alpha_std, self.scale = alpha_std, scale
        self.rank, self.world_size = rank, world_size
        self._order_epoch, self._order = None, None

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def rows_per_slot(self) -> int:
        """The most rows this rank takes of one batch (the first ranks' share of a split batch)."""
        return -(-self.batch_size // self.world_size)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        one = (3, self.crop, self.crop)
        return (10,) + one if self.ten_crop else one

    def indices(self, epoch: int, b: int) -> np.ndarray:
        if self._order_epoch != epoch:  # cached: every batch of an epoch needs it
            self._order = epoch_order(len(self.split), self.seed, epoch, self.shuffle)
            self._order_epoch = epoch
        return self._order[b * self.batch_size:(b + 1) * self.batch_size]

    def fill(self, epoch: int, b: int, images_out: np.ndarray, labels_out: np.ndarray) -> int:
        """Write this rank's rows of batch ``b`` into the first rows of the given buffers;
        returns their number."""
        check_unchanged(self.split)  # a truncated memory map would kill the process with SIGBUS
        rows = self.indices(epoch, b)
        start, stop = shard_bounds(len(rows), self.world_size, self.rank)
        n = stop - start
        make_batch(self.split, rows[start:stop], start, len(rows), self.seed, epoch, b, self.train, self.crop,
                   self.ten_crop, self.alpha_std, self.scale, images_out[:n])
        labels_out[:n] = self.split.labels[rows[start:stop]]
        return n


def _worker_loop(maker, images_buf, labels_buf, n_slots, tasks, results, parent_pid):
    """Body of a worker process: fill the slots it is told to fill."""
    # Ctrl-C and a closed terminal reach the whole process group, SLURM's SIGTERM every process of
    # the job: the parent decides how to shut down (it finishes its step and checkpoints), so the
    # workers must not die with a traceback each (they stop with the parent).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    shape = (n_slots, maker.rows_per_slot) + maker.sample_shape
    images = np.frombuffer(images_buf, dtype=np.float32).reshape(shape)
    labels = np.frombuffer(labels_buf, dtype=np.int64).reshape(n_slots, maker.rows_per_slot)
    while True:
        try:
            task = tasks.get(timeout=0.5)
        except queue.Empty:
            if os.getppid() != parent_pid:  # orphaned: the parent died without closing us
                return
            continue
        if task is None:
            return
        gen, epoch, b, slot = task
        try:
            n = maker.fill(epoch, b, images[slot], labels[slot])
            results.put((gen, b, slot, n, None))
        except Exception:  # report, keep serving; the parent raises
            results.put((gen, b, slot, 0, traceback.format_exc()))


class StoreLoader:
    """Iterate ``(images, labels)`` batches over a :class:`StoreSplit`
    (or a whole :class:`Store`: then ``store.train`` if ``train`` else
    ``store.val``).

    ``images``: float32 ``(B, 3, C, C)``, or ``(B, 10, 3, C, C)`` with
    ``ten_crop=True`` (test time); ``labels``: int64 ``(B,)``. The last
    batch is smaller unless ``drop_last``.

    * ``train=True``: random crop, flip, PCA jitter, mean subtraction
      (:func:`augment.train_augment`); ``train=False``: centre crop (or
      ten crops), mean subtraction. ``shuffle`` defaults to ``train``.
    * ``crop``: C, default 224/256 of the store size.
    * ``workers``: 0 makes batches in this process; N > 0 uses N processes
      ('fork' where available, else 'spawn'; or ``start_method``) with
      ``prefetch`` batches in flight per worker. Same output either way.
    * ``seed`` and :meth:`set_epoch` fix the order and augmentation.
    * ``copy=False`` yields views of the shared slot instead of copies,
      saving one memory copy per batch; they are only valid until the next
      batch is requested.

    * ``scale``: multiplies the mean-subtracted 0..255 values (e.g. 1/255).
    * ``rank``, ``world_size``: data parallel; ``batch_size`` is then the *global* batch and
      each batch yields only this rank's rows of it (:func:`shard_bounds`), augmented exactly
      as the 1-rank loader augments them (:func:`make_batch`). Every rank yields the same
      number of batches; one may be empty (a last batch of fewer rows than ranks).

    Shared memory used: ``workers * prefetch`` slots of one batch each,
    e.g. 4 * 2 * 128 * 3 * 224 * 224 * 4 bytes = 616 MB; ten-crop batches
    are ten times larger, so use a smaller ``batch_size`` for them.

    Call :meth:`close` (or use ``with StoreLoader(...) as loader:``) to stop
    the workers; they also stop if this process dies. With 'fork', create
    the loader before anything starts threads that the workers would
    inherit in a locked state; the workers only use NumPy.
    """

    def __init__(self, split: StoreSplit | Store, batch_size: int, shuffle: bool | None = None, train: bool = True,
                 workers: int = 0, seed: int = 0, prefetch: int = 2, drop_last: bool = False,
                 crop: int | None = None, ten_crop: bool = False, alpha_std: float = 0.1,
                 scale: float = 1.0, copy: bool = True, start_method: str | None = None,
                 timeout: float = 600.0, rank: int = 0, world_size: int = 1):
        if batch_size < 1 or workers < 0 or prefetch < 1:
            raise ValueError("need batch_size >= 1, workers >= 0, prefetch >= 1")
        if seed < 0:
            raise ValueError("seed must be >= 0")
        shard_bounds(0, world_size, rank)  # checks the rank
        if isinstance(split, Store):
            split = split.train if train else split.val
        if ten_crop and train:
            raise ValueError("ten_crop is a test-time mode: use train=False")
        crop = default_crop(split.size) if crop is None else crop
        if not 0 < crop <= split.size:
            raise ValueError(f"crop {crop} must be in 1..{split.size}")
        self._maker = _BatchMaker(split, batch_size, train if shuffle is None else shuffle, train, seed,
                                  drop_last, crop, ten_crop, alpha_std, scale, rank, world_size)
        self.workers, self.prefetch, self.copy, self.timeout = workers, prefetch, copy, timeout
        self.start_method = start_method or (
            "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        self.epoch, self.start_batch, self.stop_batch = 0, 0, len(self._maker)
        self._procs: list = []
        self._gen = 0  # id of the current iteration; results of older ones are drained
        self._in_flight = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self._maker)

    @property
    def batch_size(self) -> int:
        return self._maker.batch_size

    def set_epoch(self, epoch: int, start_batch: int = 0, stop_batch: int | None = None) -> None:
        """Select the epoch whose order/augmentation the next iteration uses, and optionally
        iterate only batches ``start_batch`` .. ``stop_batch - 1`` of it (to resume a run in
        the middle of an epoch, or cap a quick one): they are the same batches a full
        iteration would give at those positions."""
        self.epoch, self.start_batch, self.stop_batch = epoch_range(epoch, start_batch, stop_batch, len(self))

    def __iter__(self):
        if self._closed:
            raise RuntimeError("StoreLoader is closed")
        if self.workers == 0:
            return self._iter_here()
        return self._iter_workers()

    # -- workers = 0 -------------------------------------------------------------

    def _iter_here(self):
        maker, epoch = self._maker, self.epoch
        shape = (maker.rows_per_slot,) + maker.sample_shape
        images, labels = None, None
        for b in range(self.start_batch, self.stop_batch):
            if images is None or self.copy:
                images, labels = np.empty(shape, np.float32), np.empty(maker.rows_per_slot, np.int64)
            n = maker.fill(epoch, b, images, labels)
            yield images[:n], labels[:n]

    # -- workers > 0 -------------------------------------------------------------

    def _start(self) -> None:
        ctx = multiprocessing.get_context(self.start_method)
        maker = self._maker
        self._n_slots = self.workers * self.prefetch
        per_slot = maker.rows_per_slot * int(np.prod(maker.sample_shape))
        shared_memory_check(self._n_slots * (per_slot * 4 + maker.rows_per_slot * 8))
        # RawArray lives in shared memory that the workers inherit; it falls
        # back to a temp file when /dev/shm is small (as in Docker).
        images_buf = ctx.RawArray("f", self._n_slots * per_slot)
        labels_buf = ctx.RawArray("q", self._n_slots * maker.rows_per_slot)
        self._slot_images = np.frombuffer(images_buf, dtype=np.float32).reshape(
            (self._n_slots, maker.rows_per_slot) + maker.sample_shape)
        self._slot_labels = np.frombuffer(labels_buf, dtype=np.int64).reshape(self._n_slots, maker.rows_per_slot)
        self._results = ctx.Queue()
        self._tasks = [ctx.Queue() for _ in range(self.workers)]
        for w in range(self.workers):
            p = ctx.Process(target=_worker_loop, daemon=True, name=f"StoreLoader-worker-{w}",
                            args=(maker, images_buf, labels_buf, self._n_slots, self._tasks[w],
                                  self._results, os.getpid()))
            p.start()
            self._procs.append(p)

    def _next_result(self):
        """One (gen, batch, slot, n, error) result; raises if workers died."""
        waited = 0.0
        while True:
            try:
                result = self._results.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    codes = {p.name: _exit_status(p.exitcode) for p in dead}
                    self.close()
                    check_unchanged(self._maker.split)  # the usual cause of a SIGBUS: the store was truncated
                    raise RuntimeError(f"StoreLoader worker(s) died unexpectedly: {codes}") from None
                waited += 1.0
                if waited > self.timeout:
                    raise TimeoutError(f"no batch from the workers in {self.timeout} s") from None
                continue
            self._in_flight -= 1
            return result

    def _drain(self) -> None:
        """Wait for tasks of an abandoned iteration, so their slots are free."""
        while self._in_flight > 0:
            self._next_result()

    def _iter_workers(self):
        if not self._procs:
            self._start()
        self._drain()
        self._gen += 1
        gen, epoch, first, n_batches = self._gen, self.epoch, self.start_batch, self.stop_batch
        free = deque(range(self._n_slots))
        ready: dict[int, tuple[int, int]] = {}
        next_to_send = first

        def send_more():
            nonlocal next_to_send
            while free and next_to_send < n_batches:
                self._tasks[next_to_send % self.workers].put((gen, epoch, next_to_send, free.popleft()))
                self._in_flight += 1
                next_to_send += 1

        send_more()
        for b in range(first, n_batches):
            if self._gen != gen:  # a newer iteration has taken over the slots
                raise RuntimeError("the StoreLoader was iterated again while this iteration was running")
            while b not in ready:
                _, got, slot, n, error = self._next_result()
                if error is not None:
                    last = error.strip().splitlines()[-1]
                    if last.startswith(f"{StoreChanged.__module__}.{StoreChanged.__name__}: "):
                        raise StoreChanged(last.split(": ", 1)[1])  # the worker's one line, not its traceback
                    raise RuntimeError(f"StoreLoader worker failed on batch {got}:\n{error}")
                ready[got] = (slot, n)
            slot, n = ready.pop(b)
            images, labels = self._slot_images[slot, :n], self._slot_labels[slot, :n]
            if self.copy:
                images, labels = images.copy(), labels.copy()
                free.append(slot)
                send_more()
                yield images, labels
            else:
                yield images, labels
                free.append(slot)  # the caller has moved on: the slot may be overwritten
                send_more()

    # -- shutdown ----------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        if self._closed:
            return
        self._closed = True
        procs, self._procs = self._procs, []
        for q in getattr(self, "_tasks", []):
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 5.0
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(timeout=1.0)
        for q in getattr(self, "_tasks", []) + ([self._results] if hasattr(self, "_results") else []):
            q.cancel_join_thread()  # never block exit on unread queue data
            q.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn modules down
            pass
