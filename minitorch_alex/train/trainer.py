"""The training loop of the paper (section 5): SGD with momentum and weight decay, the learning
rate divided by 10 when the validation error stops improving, checkpoints every epoch.

``Trainer`` owns the model, optimizer, schedule, loaders, metrics log and checkpoints;
``examples/train_imagenet.py`` only parses flags and calls it. What it leans on lives beside it:
the settings (``train_config.TrainConfig``), the data-parallel side (``parallel.DataParallel``),
fine-tuning (``pretrained``), the checks of data and checkpoints against the run (``checks``), the
numbers of a step and an epoch (``metrics``) and the text it prints (``report``).

Data parallel (``mpiexec -n N``, :mod:`minitorch_alex.distributed`): every rank runs a Trainer
on its rows of each global batch (``batch_size`` stays the global batch), the gradients are
averaged over the ranks before each step, and the per-step metrics are summed over them, so
every rank holds the same weights, generator, schedule and metric sums as a single process
would. Only rank 0 prints, draws progress bars and writes the run folder; a checkpoint is the
same for any number of ranks, and a run resumes on any number that divides the batch.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import time
from dataclasses import asdict

import numpy as np

from .. import distributed as dist
from .. import random as mt_random
from ..autograd import no_grad
from ..checkpoint import TRAINER_KEYS, load_checkpoint, read_meta, save_checkpoint
from ..config import config as mt_config
from ..data.augment import default_crop
from ..data.loader import shard_bounds
from ..device import Device
from ..distributed.sampler import check_global_batch
from ..models import alexnet, get_model
from ..nn import functional as F
from ..optim import SGD
from ..serialization import link_atomic
from . import plots, run_folder
from .checks import check_input_size, check_labels, check_resumable, check_same_run
from .lr_policy import LRPolicy
from .metrics import MetricsLog, UnreadSums, ValidationSums, add_to_running, epoch_metrics, fresh_running, step_sums
from .parallel import DataParallel
from .pretrained import load_pretrained, param_groups
from .report import bar_fields, chance_warning, diverged_text, format_row, position_text, progress_bar, progress_line, silent, use_bars
from .train_config import TrainConfig

# after this many steps, a training loss still at chance level (ln classes) is reported with advice
CHANCE_CHECK_STEPS = 300


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Interrupted(KeyboardInterrupt):
    """Stopped by ``signum`` (SIGINT, SIGTERM, SIGHUP); ``saved``: after the step, with a checkpoint of
    where the run stood (``Trainer.request_stop``), else at once."""

    def __init__(self, signum=signal.SIGINT, saved=False):
        super().__init__(signum)
        self.signum, self.saved = int(signum), saved


def _run_settings(method):
    """Run ``method`` with the run's own generator (weights, dropout masks) and TF32 setting,
    both scoped to the call: a Trainer changes nothing process-wide."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with mt_random.use_generator(self.rng), mt_config.using(tf32=bool(self.cfg.tf32)):
            return method(self, *args, **kwargs)

    return run


def build_model(cfg, num_classes, generator):
    """The network of ``cfg.arch`` (``TrainConfig``) for ``num_classes``, its weights drawn from
    ``generator``: the paper's by its own name, ``alexnet`` (tests stand a small one in for it;
    two towers when two devices are given), the others by name (``models.get_model``)."""
    build = alexnet if cfg.arch == "alexnet" else functools.partial(get_model, cfg.arch)
    return build(num_classes=num_classes, devices=tuple(cfg.devices), init=cfg.init, generator=generator,
                 dropout=cfg.dropout)


def spread_over_classes(labels, n):
    """Indices of ``n`` samples taking the classes in turn (first of each class, then second ...),
    sorted: a capped validation pass or a figure sees every class, not the first one of a
    class-sorted split."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    ranked = labels[order]
    rank = np.arange(len(labels)) - np.searchsorted(ranked, ranked, side="left")
    return np.sort(order[np.lexsort((ranked, rank))][:n])


class Trainer:
    def __init__(self, config: TrainConfig, train_split, val_split, classes, model=None, class_names=None,
                 world=None):
        """``model``: by default the paper's AlexNet (two towers when two devices are given);
        any Module mapping (N, 3, C, C) to (N, classes) logits works (tests use small ones).
        ``class_names``: human-readable names, one per class (default: ``classes``), kept in
        the checkpoints for inference. ``world``: the ranks to train with (default:
        ``distributed.get_world()``, a world of one unless launched by mpiexec); ``config.devices``
        are this rank's."""
        self.cfg = config
        self.world = dist.get_world() if world is None else world
        check_global_batch(config.batch_size, self.world.size)
        self.train_split, self.val_split, self.classes = train_split, val_split, list(classes)
        self.rng = np.random.default_rng(config.seed)  # the run's own; the global generator is left alone
        model = build_model(config, len(self.classes), self.rng) if model is None else model
        check_input_size(model, config.arch, train_split.size)
        self.model = model
        self.pretrained = None  # load_pretrained's report
        if config.pretrained:
            self.pretrained = load_pretrained(model, config.pretrained)
            config.new_layers = tuple(self.pretrained["new"])
        self.parallel = DataParallel(self.world, model, config.grad_sync, config.bucket_mb)
        self.parallel.broadcast_start()
        self.input_device = tuple(config.devices)[0]
        self.mp = None  # the MixedPrecision wrapper with --amp
        if config.amp:
            from ..amp import MixedPrecision

            self.mp = MixedPrecision(model, config.amp)
        # what runs the batches, and what checkpoints hold: the float32 masters under --amp
        self.net = self.mp if self.mp is not None else model
        # fine-tuning: self.frozen (layer names), and each group's lr multiplier (param_groups)
        groups, self.frozen, lr_mults = param_groups(self.model, list(self.net.parameters()), config)
        self.optimizer = SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        self.parallel.average_gradients()  # the parameters backward fills exist now (the 16-bit ones under --amp)
        self.lr_policy = LRPolicy(self.optimizer, config, lr_mults)  # the paper's rule, warm-up, cosine
        self.steps_per_epoch = None  # known once the training loader exists (for the cosine schedule)
        self.epoch = 0  # epochs completed
        self.batch = 0  # batches done in the current epoch
        self.step = 0  # optimizer steps taken
        self.running = fresh_running()
        self.best_val_top1_err = math.inf
        if self.world.is_main:
            os.makedirs(config.out, exist_ok=True)
        self.log = None
        self.last_checkpoint = None  # (path, epoch, step) of the newest checkpoint written or resumed from
        self.data_source = None  # what the CLI trains on (data_source.data_source), kept in the checkpoints' meta
        self.last_position = None  # (epoch, batch) of last_checkpoint, for position()
        self.fitting = False  # inside fit(): a stop request is honoured after the current step
        self.stop_signal = None  # set by request_stop (the CLI's signal handler)
        self._run_start = None  # (time, position, steps per epoch) where this process began training (run_eta)
        self._echo = print
        self.class_names = list(class_names) if class_names is not None else list(self.classes)
        for split in (train_split, val_split):
            check_labels(split, len(self.classes))

    @property
    def lr(self):
        """The base learning rate (of the layers at multiplier 1, before the per-step schedule)."""
        return self.lr_policy.base

    @lr.setter
    def lr(self, value):
        self.lr_policy.set_base(float(value))

    # ----- checkpoints ------------------------------------------------------------------------------
    def _meta(self):
        """The checkpoint's meta (schema: ``checkpoint.SCHEMA``); "nothing yet" (inf) is null."""
        size = int(self.train_split.size)
        return {
            "epoch": self.epoch, "batch": self.batch, "step": self.step, "running": self.running,
            "best_val_top1_err": self.best_val_top1_err if math.isfinite(self.best_val_top1_err) else None,
            **self.lr_policy.state_dict(), "rng": self.rng.bit_generator.state,
            "loss_scaler": self.mp.scaler.state_dict() if self.mp is not None else None,
            "classes": self.classes, "config": {k: v for k, v in asdict(self.cfg).items() if k != "extra"},
            "world_size": self.world.size,  # for the record: the checkpoint is the same on any number of ranks
            # what inference needs: preprocess as in evaluate(), then name the argmax
            "class_names": self.class_names, "input_scale": self.cfg.input_scale, "image_size": size,
            "crop_size": default_crop(size),  # the loaders' crop: what inference must cut
            "mean_rgb": np.asarray(self.train_split.mean, np.float64).reshape(-1, 3).mean(axis=0).tolist(),
            **({"data_source": self.data_source} if self.data_source is not None else {}),
        }

    def save(self, name="last.npz"):
        """Checkpoint to ``out/name`` (rank 0 writes; every rank holds the same state)."""
        path = os.path.join(self.cfg.out, name)
        if self.world.is_main:
            save_checkpoint(path, self.net, self.optimizer, self._meta(),
                            arrays={"data/mean": np.asarray(self.train_split.mean, np.float32)})
        if name == "last.npz":
            self.last_checkpoint = (path, self.epoch, self.step)
            self.last_position = (self.epoch, self.batch)
        return path

    def position(self, epoch=None, batch=None):
        """Where the run stands (default: the last checkpoint), numbered as the progress lines are:
        "epoch 2/8, step 40/160" in the middle of an epoch, "epoch 2/8 done" at its end."""
        if epoch is None:
            epoch, batch = self.last_position if self.last_position is not None else (self.epoch, self.batch)
        return position_text(epoch, batch, self.cfg.epochs, self.steps_per_epoch)

    def request_stop(self, signum):
        """Ask a running ``fit`` to stop after the current step: it checkpoints where the run stands
        (``last.npz``, in the middle of an epoch too; it resumes exactly) and raises ``Interrupted``.
        Safe to call from a signal handler (it only sets a flag)."""
        self.stop_signal = int(signum)

    def _stop(self):
        """Honour ``request_stop`` (on every rank at the same step): checkpoint, then raise."""
        self.save()
        if self.world.size > 1:
            self.world.barrier()  # rank 0's checkpoint is complete before any rank leaves
        raise Interrupted(self.stop_signal or signal.SIGTERM, saved=True)

    def load_weights(self, path):
        """Load only the model's weights from a checkpoint (for evaluation: no optimizer state is
        needed, so a two-tower checkpoint loads into the one-device model and back)."""
        path = os.fspath(path)
        check_same_run(path, read_meta(path, ("classes",)), self.classes, self.cfg.input_scale)
        return load_checkpoint(path, self.net)

    def resume(self, path, override=()):
        """Continue from the checkpoint at ``path``. ``override``: optimizer settings ('lr',
        'momentum', 'weight_decay') whose values in the config win over the checkpoint's."""
        path = os.fspath(path)
        meta = read_meta(path, TRAINER_KEYS)  # cheap: refuse a wrong run before reading weights
        check_same_run(path, meta, self.classes, self.cfg.input_scale)
        check_resumable(path, meta, len(self.train_split), self.cfg.batch_size)
        meta = load_checkpoint(path, self.net, self.optimizer, required=TRAINER_KEYS)
        if self.mp is not None and meta.get("loss_scaler"):
            self.mp.scaler.load_state_dict(meta["loss_scaler"])
        self.epoch, self.batch, self.step = int(meta["epoch"]), int(meta["batch"]), int(meta["step"])
        self.running = dict(meta["running"])
        best = meta["best_val_top1_err"]
        self.best_val_top1_err = math.inf if best is None else float(best)
        self.lr_policy.load_state_dict(meta)
        self.rng.bit_generator.state = meta["rng"]
        for name in override:
            if name == "lr":
                self.lr_policy.set_base(float(self.cfg.lr))
            else:
                for group in self.optimizer.param_groups:
                    group[name] = float(getattr(self.cfg, name))
        self.last_checkpoint = (path, self.epoch, self.step)
        self.last_position = (self.epoch, self.batch)
        return meta

    # ----- one epoch ------------------------------------------------------------------------------------
    def _loader(self, split, train, ten_crop=False):
        """The batches of ``split``: on a CUDA device the training batches are augmented there
        (``GPUAugmenter``: uint8 pixels up, the same batches bit for bit, labels left on the host);
        otherwise, and for validation, the CPU ``StoreLoader`` with ``cfg.workers`` processes."""
        from ..data import StoreLoader
        from ..data.gpu_augment import GPUAugmenter

        if train and Device(self.input_device).type == "cuda":
            return GPUAugmenter(split, batch_size=self.cfg.batch_size, device=self.input_device, seed=self.cfg.seed,
                                scale=self.cfg.input_scale, rank=self.world.rank, world_size=self.world.size)
        # copy=False: each batch goes straight into the model before the next is asked for
        # batch_size is the global batch: each rank gets its rows of it
        return StoreLoader(split, batch_size=self.cfg.batch_size // (10 if ten_crop else 1) or 1, train=train,
                          workers=self.cfg.workers, seed=self.cfg.seed, ten_crop=ten_crop, copy=False,
                          scale=self.cfg.input_scale, rank=self.world.rank, world_size=self.world.size)

    def _tensor(self, images):
        from .. import from_numpy

        return from_numpy(images, self.input_device)

    def _steps_in(self, loader):
        """Training steps of an epoch over ``loader`` (``max_steps`` caps them)."""
        return len(loader) if self.cfg.max_steps is None else min(len(loader), self.cfg.max_steps)

    @_run_settings
    def train_epoch(self, loader):
        """One pass over the training data (from ``self.batch`` on, when resuming mid-epoch);
        returns the epoch's training metrics."""
        self.model.train()
        stop = self._steps_in(loader)
        loader.set_epoch(self.epoch, start_batch=min(self.batch, stop), stop_batch=stop)
        run = self.running  # sums over the epoch so far (restored by a mid-epoch resume)
        traffic = getattr(self.model, "traffic", None)
        if traffic is not None:
            traffic.reset()
        t0, images_now = time.perf_counter(), 0
        self.parallel.sync_seconds = 0.0
        bars = use_bars(self.cfg) and self.world.is_main
        bar = progress_bar(loader, bars, desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", unit="step",
                           total=stop - min(self.batch, stop), leave=True)
        data_time, t_last, first_batch = 0.0, time.perf_counter(), self.batch
        if self._run_start is None:  # an epoch run outside fit(): its own start
            self._run_start = (t0, self._position(stop), stop)
        # This rank's step sums since the last read, where the logits are (metrics.step_sums). On a GPU
        # they are read (and summed over the ranks) only where needed: the print steps, a
        # checkpoint, the epoch's end; each read waits for the GPU's queue to drain. On the host
        # (reading is free) every step, so a blow-up is caught before its backward.
        unread = UnreadSums()
        every = 1 if self.read_every_step else max(1, self.cfg.print_freq)
        for images, labels in bar:
            data_time += time.perf_counter() - t_last  # waiting for the loader
            sums = self._train_step(images, labels, unread, stop, every)
            if sums is not None:
                images_now += add_to_running(run, sums)
            if self.batch % max(1, self.cfg.print_freq) == 0:
                self._show_progress(bar if bars else None, stop, run, time.perf_counter() - t0, data_time, images_now,
                                    self.batch - first_batch)
            if self.cfg.save_every and self.step % self.cfg.save_every == 0:
                self.save()
            if self.step == CHANCE_CHECK_STEPS and self.world.is_main:
                self._warn_if_at_chance(run)
            if self.fitting and (self.stop_signal is not None if self.world.size == 1 else sums is not None and sums[4]):
                if unread.sums is not None:  # one process on a GPU: the steps not read yet go into the checkpoint
                    images_now += add_to_running(run, self._read_sums(unread, every))  # never checkpoint a blown-up run
                self._stop()
            t_last = time.perf_counter()
        out = epoch_metrics(run, images_now, time.perf_counter() - t0)
        if self.parallel.averagers:  # time a step waited for the gradients of the other ranks
            out["sync_seconds"] = self.parallel.sync_seconds
        if traffic is not None:
            out["cross_device_bytes_per_step"] = traffic.total_bytes / max(stop, 1)
        return out

    def _train_step(self, images, labels, unread, stop, every):
        """One SGD step on this rank's rows of the global batch (none, in a last batch shorter than
        the ranks); its step sums go to ``unread``. Returns the sums read at this step, if it is one
        where they are read (``_read_sums``: every ``every`` steps, the epoch's end, a checkpoint)."""
        world = self.world
        total = min(self.cfg.batch_size, len(self.train_split) - self.batch * self.cfg.batch_size)  # all ranks' rows
        first, last = shard_bounds(total, world.size, world.rank)  # our rows (the loader's)
        self.optimizer.zero_grad()
        with np.errstate(over="ignore", invalid="ignore"), self.parallel.averaged((last - first) / total), \
                mt_random.batch_rows(first, last, total):  # a blow-up is reported below, once
            if len(labels):  # a rank may have no rows of a last, short batch
                logits = self.net(self._tensor(images))
                loss = F.cross_entropy(logits, labels)
                unread.add(step_sums(logits, loss, labels), len(labels))
            # [loss sum, images, top-1, top-5 correct, ranks asked to stop] since the last read,
            # summed over the ranks (every rank reads at the same steps: the collective is
            # matched); a stop asked of any rank stops every rank after the step of that read
            sums = None
            if (self.batch + 1) % every == 0 or self.batch + 1 == stop or (
                    self.cfg.save_every and (self.step + 1) % self.cfg.save_every == 0):
                sums = self._read_sums(unread, every, self.stop_signal is not None)
            if len(labels):
                if self.mp is not None:
                    self.mp.backward(loss)
                else:
                    loss.backward()
        if total < world.size:  # some rank drew no dropout masks
            self.parallel.sync_generator(self.rng)
        self._optimizer_step()
        self.step += 1
        self.batch += 1
        return sums

    @property
    def read_every_step(self):
        """Whether the step sums are read every step: on the host (free), not on a GPU."""
        return Device(self.input_device).type != "cuda"

    def _read_sums(self, unread, every, stop_asked=False):
        """The step sums since the last read (``unread``, emptied: ``UnreadSums.read``), summed over the
        ranks (one small collective). A NaN or infinite loss among them stops the run, on every rank
        alike (the sums are global)."""
        sums = unread.read(stop_asked)
        if self.world.size > 1:
            sums = self.parallel.sum_over_ranks(sums, self.step + 1, f"training step {self.step + 1}")
        loss = sums[0] / sums[1]
        if not math.isfinite(loss):
            raise TrainingDiverged(diverged_text(loss, self.step, every, self.epoch, self.batch, self.last_checkpoint))
        return sums

    def _warn_if_at_chance(self, run):
        """One line when the loss has not moved from chance level (``report.chance_warning``)."""
        warning = chance_warning(run, len(self.classes), self.step, self.cfg.init, bool(self.pretrained))
        if warning is not None:
            self._echo(warning)

    def _position(self, per_epoch):
        """Training steps of the run done so far, with ``per_epoch`` steps an epoch: whole epochs, then
        batches of this one."""
        return self.epoch * per_epoch + min(self.batch, per_epoch)

    def run_eta(self):
        """Seconds until the whole run ends: the steps left in it at the rate of this process so far
        (its wall time per step since it began training, validation passes included once one has run;
        the steps a resumed checkpoint had already taken count neither as done nor as left)."""
        t_start, start, per_epoch = self._run_start
        done = self._position(per_epoch) - start
        left = self.cfg.epochs * per_epoch - self._position(per_epoch)
        return left * (time.perf_counter() - t_start) / max(done, 1)

    def _show_progress(self, bar, stop, run, elapsed, data_time, images, steps):
        """The fields of ``bar``, or with no bar one plain line (``report.progress_line``); the ETA is
        the whole run's (``run_eta``)."""
        if bar is not None:
            bar.set_postfix(**bar_fields(run, images, elapsed, self.run_eta()))
        else:
            self._echo(progress_line(self.epoch, self.cfg.epochs, self.batch, stop, run, elapsed, data_time, images, steps,
                                     len(self.classes), self.run_eta()))

    def _optimizer_step(self):
        """One SGD step at the rates the per-step schedule gives ``self.step``."""
        self.lr_policy.set_step(self.step)
        if self.mp is not None:
            self.mp.step(self.optimizer)  # skipped (and the loss scale lowered) on overflow
        else:
            self.optimizer.step()

    @_run_settings
    @no_grad()
    def evaluate(self, split=None, ten_crop=False):
        """Loss and top-1/top-5 error on ``split`` (default: validation). With ``ten_crop`` the
        softmax is averaged over the 4 corner and centre crops and their mirror images."""
        split = self.val_split if split is None else split
        if self.cfg.max_val_batches is not None:
            split = self._capped(split)
        self.parallel.sync_buffers()
        self.model.eval()
        scores = ValidationSums()
        with self._loader(split, train=False, ten_crop=ten_crop) as loader:
            for images, labels in progress_bar(loader, use_bars(self.cfg) and self.world.is_main, desc="evaluate",
                                               unit="batch", leave=False):
                if self.fitting and self.stop_signal is not None and self.world.size == 1:
                    self._stop()  # (on N ranks the next training step stops them together)
                if len(labels):  # else this rank has no rows of a last, short batch
                    scores.add(self._probabilities(images, ten_crop), labels)
        if self.world.size > 1:  # over the whole split: each image was one rank's
            scores = ValidationSums(*self.parallel.sum_over_ranks(scores.values(), -1, "validation").tolist())
        return {**scores.result(), "batch_images": (self.cfg.batch_size // 10 or 1) if ten_crop else self.cfg.batch_size}

    def _probabilities(self, images, ten_crop=False):
        """The softmax of the network on a batch; with ``ten_crop`` (images (B, 10, ...)) averaged
        over each image's 10 crops."""
        if not ten_crop:
            return F.softmax(self.net(self._tensor(images)), axis=1).numpy()
        b = images.shape[0]
        logits = self.net(self._tensor(images.reshape(b * 10, *images.shape[2:])))
        return F.softmax(logits, axis=1).numpy().reshape(b, 10, -1).mean(axis=1)

    def _capped(self, split):
        """``--max-val-batches`` batches' worth of ``split``'s images, spread evenly over the classes
        (the same images with and without ten-crop); cached, as it is asked for every epoch."""
        n = self.cfg.max_val_batches * self.cfg.batch_size
        if n >= len(split):
            return split
        key = (id(split), n)
        if getattr(self, "_capped_cache", (None,))[0] != key:
            from ..data.store import subset

            self._capped_cache = (key, subset(split, spread_over_classes(split.labels, n)))  # by index, no copy
        return self._capped_cache[1]

    # ----- the whole run ------------------------------------------------------------------------------
    def fit(self, resume_from=None, echo=print, override=()):
        """Train to ``cfg.epochs`` (from ``resume_from`` if given; ``override`` as in ``resume``),
        holding the run folder's lock (``run_folder.locked``) throughout; returns the metric rows."""
        mt_config.apply_retain_freed_memory()  # process-wide, so only a run does it (mt.config, kernels/cpu/memory.py)
        main = self.world.is_main  # the one rank that writes the run folder
        with run_folder.locked(self.cfg.out) if main else contextlib.nullcontext():
            self.fitting = True
            try:
                return self._fit(resume_from, echo if main else silent, override)
            finally:
                self.fitting, self._run_start = False, None

    def _fit(self, resume_from, echo, override):
        self._echo = echo
        if resume_from is not None:
            self.resume(resume_from, override)
        self.log = MetricsLog(self.cfg.out, resume=resume_from is not None, write=self.world.is_main)
        if resume_from is not None:
            self.log.truncate(self.epoch)
            echo(f"resumed from {resume_from}: {self.epoch} epochs, {self.step} steps done, lr {self.lr_policy.base:g}")
        with self._loader(self.train_split, train=True) as loader:
            self.steps_per_epoch = self._steps_in(loader)
            self.lr_policy.start(self.steps_per_epoch)
            # the ETA's rate: this process's steps only
            self._run_start = (time.perf_counter(), self._position(self.steps_per_epoch), self.steps_per_epoch)
            while self.epoch < self.cfg.epochs:
                if self.stop_signal is not None and self.world.size == 1:
                    self._stop()  # asked while the last epoch's checkpoint was written
                # the lr of the epoch's first and last steps (they differ in a warm-up or a cosine schedule);
                # the plateau rule changes the base lr only between epochs, so both are known now
                first = self.epoch * self.steps_per_epoch
                row = {"epoch": self.epoch + 1, "lr": self.lr_policy.at(first + self.steps_per_epoch - 1),
                       "lr_first": self.lr_policy.at(first)}
                row.update(self.train_epoch(loader))
                val = self.evaluate(ten_crop=self.cfg.ten_crop)
                row.update({f"val_{k}": v for k, v in val.items() if k != "images"})
                self.epoch, self.batch, self.running = self.epoch + 1, 0, fresh_running()
                self.lr_policy.end_epoch(val["top1_err"])
                improved = val["top1_err"] < self.best_val_top1_err
                if improved:
                    self.best_val_top1_err = val["top1_err"]
                # The row first: a crash before last.npz redoes the epoch, and resuming drops its row.
                self.log.append(row)
                # last.npz before best.npz: a full disk must not cost the checkpoint --resume needs
                last = self.save("last.npz")
                if improved and self.world.is_main:
                    link_atomic(last, os.path.join(self.cfg.out, "best.npz"))
                echo(format_row(row, len(self.classes)))
        if self.world.size > 1:  # a rank still training would wait here for ever: fail together instead
            self.parallel.sum_over_ranks([], -2, "the end of the run")
        if self.cfg.plots and self.world.is_main:
            self.write_plots()
        return self.log.rows

    @no_grad()
    def write_plots(self):
        """curves.png, conv1_filters.png and top5.png (the first validation images) in --out."""
        split, sample = self.val_split, None
        if len(split):
            self.model.eval()
            idx = spread_over_classes(split.labels, min(8, len(split)))  # one image per class where there are 8 classes
            sample = plots.top5_sample(split, idx, self.cfg.input_scale, self._probabilities)
        return plots.write_all(self.cfg.out, self.log.rows if self.log else [], self.model, sample, self.classes)

