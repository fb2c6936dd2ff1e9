"""The training loop of the paper (section 5): SGD with momentum and weight decay, the learning
rate divided by 10 when the validation error stops improving, checkpoints every epoch.

``Trainer`` owns the model, optimizer, schedule, loaders, metrics log and checkpoints;
``examples/train_imagenet.py`` only parses flags and calls it.

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
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import distributed as dist
from .. import random as mt_random
from ..autograd import no_grad
from ..checkpoint import TRAINER_KEYS, check_position, load_checkpoint, read_meta, save_checkpoint
from ..config import config as mt_config
from ..data.augment import default_crop
from ..data.loader import shard_bounds
from ..device import Device
from ..distributed.sampler import check_global_batch
from ..models import alexnet, get_model
from ..nn import functional as F
from ..optim import SGD, ReduceLROnPlateau
from ..optim.lr_scheduler import ChainedScheduler, CosineAnnealingLR, LinearLR
from ..serialization import link_atomic
from . import plots, run_folder
from .metrics import MetricsLog, topk_correct

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


@dataclass
class TrainConfig:
    epochs: int = 90
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    workers: int = 2
    devices: tuple = ("cpu",)
    out: str = "runs/alexnet"
    seed: int = 0
    print_freq: int = 10
    max_steps: int | None = None  # cap on training steps per epoch (quick runs)
    max_val_batches: int | None = None
    save_every: int | None = None  # also checkpoint every this many steps
    patience: int = 0  # epochs without improvement before the lr is divided by 10
    warmup_steps: int = 0  # the lr ramps linearly from lr/warmup_steps up to lr over these first steps
    schedule: str = "plateau"  # "plateau": lr / 10 when validation error stalls (paper); "cosine": lr * (1 + cos(pi t / T)) / 2
    max_lr_drops: int = 3
    ten_crop: bool = False  # validation with 10 crops (slower)
    init: str = "paper"  # or "kaiming" (see models.alexnet.initial_values)
    arch: str = "alexnet"  # a key of models.ARCHITECTURES: the paper's, or "alexnet-torchvision"
    dropout: float = 0.5  # the paper's rate after fc6 and fc7 (0: none, e.g. to compare runs step for step)
    grad_sync: str = "overlap"  # data parallel: a distributed.MODES gradient averaging ("flat", "buckets", "overlap")
    bucket_mb: float = 25.0  # data parallel: size of a gradient bucket (modes "buckets" and "overlap")
    input_scale: float = 1.0  # multiplies the mean-subtracted 0..255 pixels
    amp: str | None = None  # "float16" or "bfloat16": mixed precision with float32 masters (minitorch_alex.amp)
    tf32: bool = False  # float32 GEMMs on TF32 tensor cores (CUDA devices only)
    pretrained: str | None = None  # fine-tuning: start from this checkpoint's layers that fit (load_pretrained)
    freeze: str | None = None  # fine-tuning: the layers up to this one (e.g. "conv5") get no updates, no decay
    head_lr_mult: float = 1.0  # lr multiplier of the layers the pretrained checkpoint did not supply
    new_layers: tuple = ()  # those layers (set by load_pretrained; kept in checkpoints for --resume)
    plots: bool = True
    progress: bool = True
    extra: dict = field(default_factory=dict)


def _tqdm(iterable, enabled, **kw):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


def _run_settings(method):
    """Run ``method`` with the run's own generator (weights, dropout masks) and TF32 setting,
    both scoped to the call: a Trainer changes nothing process-wide."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with mt_random.use_generator(self.rng), mt_config.using(tf32=bool(self.cfg.tf32)):
            return method(self, *args, **kwargs)

    return run


def _bars(cfg):
    """Progress bars only on a terminal: in a redirected log they are ``\\r`` fragments (plain
    lines every ``print_freq`` steps are printed instead)."""
    return bool(cfg.progress) and sys.stdout.isatty()


def spread_over_classes(labels, n):
    """Indices of ``n`` samples taking the classes in turn (first of each class, then second ...),
    sorted: a capped validation pass or a figure sees every class, not the first one of a
    class-sorted split."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    ranked = labels[order]
    rank = np.arange(len(labels)) - np.searchsorted(ranked, ranked, side="left")
    return np.sort(order[np.lexsort((ranked, rank))][:n])


def _duration(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


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
        self._nccl = {}  # device -> NcclComm of this rank's parameters there (data parallel on GPUs)
        check_global_batch(config.batch_size, self.world.size)
        self.train_split, self.val_split, self.classes = train_split, val_split, list(classes)
        self.rng = np.random.default_rng(config.seed)  # the run's own; the global generator is left alone
        devices = tuple(config.devices)
        if model is None:
            # the paper's network by its own name (tests stand a small one in for it), others by name
            build = alexnet if config.arch == "alexnet" else functools.partial(get_model, config.arch)
            model = build(num_classes=len(self.classes), devices=devices, init=config.init, generator=self.rng,
                          dropout=config.dropout)
        _check_input_size(model, config.arch, train_split.size)
        self.model = model
        self.pretrained = None  # load_pretrained's report
        if config.pretrained:
            self.pretrained = load_pretrained(model, config.pretrained)
            config.new_layers = tuple(self.pretrained["new"])
        if self.world.size > 1:  # the same seed made the same weights everywhere; rank 0's make sure
            for device, params in self._parameters_by_device().items():
                dist.broadcast_parameters(params, comm=self._comm_for(device))
            self._sync_buffers()
        self.input_device = devices[0]
        self.mp = None  # the MixedPrecision wrapper with --amp
        if config.amp:
            from ..amp import MixedPrecision

            self.mp = MixedPrecision(model, config.amp)
        # what runs the batches, and what checkpoints hold: the float32 masters under --amp
        self.net = self.mp if self.mp is not None else model
        self.base_lr = config.lr  # the plateau rule's rate: a group's rate is base_lr x its multiplier
        self.optimizer = SGD(self._param_groups(), lr=config.lr, momentum=config.momentum,
                             weight_decay=config.weight_decay)
        self.averagers = self._make_averagers() if self.world.size > 1 else []
        if config.schedule not in ("plateau", "cosine"):
            raise ValueError(f"schedule must be 'plateau' or 'cosine', got {config.schedule!r}")
        self.steps_per_epoch = None  # known once the training loader exists (for the cosine schedule)
        self.lr_schedule = None  # the per-step schedule (warm-up, cosine), made by fit() (_make_lr_schedule)
        self.schedule = ReduceLROnPlateau(self.optimizer, factor=0.1, patience=config.patience,
                                          max_reductions=config.max_lr_drops)
        self.epoch = 0  # epochs completed
        self.batch = 0  # batches done in the current epoch
        self.step = 0  # optimizer steps taken
        self.running = _fresh_running()
        self.best_val_top1_err = math.inf
        if self.world.is_main:
            os.makedirs(config.out, exist_ok=True)
        self.log = None
        self.last_checkpoint = None  # (path, epoch, step) of the newest checkpoint written or resumed from
        self.data_source = None  # what the CLI trains on (cli.data_source), kept in the checkpoints' meta
        self.last_position = None  # (epoch, batch) of last_checkpoint, for position()
        self.fitting = False  # inside fit(): a stop request is honoured after the current step
        self.stop_signal = None  # set by request_stop (the CLI's signal handler)
        self._run_start = None  # (time, position, steps per epoch) where this process began training (run_eta)
        self._echo = print
        self.class_names = list(class_names) if class_names is not None else list(self.classes)
        for split in (train_split, val_split):
            _check_labels(split, len(self.classes))

    def _param_groups(self):
        """The optimizer's parameter groups. Fine-tuning: the layers up to ``cfg.freeze`` at lr 0
        (frozen: no update, no decay), the new ones at lr x ``head_lr_mult``. Groups are runs of
        parameters with one multiplier, in the model's order, so checkpoints keep the velocities'
        order; sets ``self.frozen`` (layer names) and ``self.lr_mults`` (one per group)."""
        cfg = self.cfg
        params = list(self.net.parameters())
        self.frozen, self.lr_mults = [], [1.0]
        if not cfg.freeze and (not cfg.new_layers or cfg.head_lr_mult == 1):
            return [{"params": params, "lr": cfg.lr}]
        names = [n for n, _ in self.model.named_parameters()]
        if len(names) != len(params):
            raise ValueError(f"--freeze/--head-lr-mult: the model's {len(names)} named parameters do not match the "
                             f"optimizer's {len(params)}")
        layers = [n.rsplit(".", 1)[0] for n in names]
        self.frozen = layers_up_to(cfg.arch, cfg.freeze, layers) if cfg.freeze else []
        new = set(cfg.new_layers)
        groups, self.lr_mults = [], []
        for p, layer in zip(params, layers):
            mult = 0.0 if layer in self.frozen else float(cfg.head_lr_mult) if layer in new else 1.0
            if not self.lr_mults or self.lr_mults[-1] != mult:
                groups.append({"params": [], "lr": cfg.lr * mult})
                self.lr_mults.append(mult)
            groups[-1]["params"].append(p)
        return groups

    @property
    def lr(self):
        """The base learning rate (of the layers at multiplier 1, before the per-step schedule)."""
        return self.base_lr

    @lr.setter
    def lr(self, value):
        self._set_base_lr(float(value))

    def _set_base_lr(self, base):
        """Every group's rate (and the per-step schedule's starting rate) from ``base``."""
        self.base_lr = base
        for group, mult in zip(self.optimizer.param_groups, self.lr_mults):
            group["lr"] = group["initial_lr"] = base * mult

    # ----- data parallel ----------------------------------------------------------------------------
    def _comm_for(self, device):
        """The communicator of this rank's parameters on ``device``: NCCL for a GPU (its
        gradients never leave it), MPI for host memory."""
        device = Device(device)
        if device.type != "cuda" or self.world.size == 1:
            return self.world
        if device not in self._nccl:
            self._nccl[device] = dist.NcclComm(self.world, device_id=device.index)
        return self._nccl[device]

    def _parameters_by_device(self):
        """The model's parameters (the ones backward fills: the 16-bit copies under --amp) by
        device, in order: two groups for the two-tower model."""
        by_device = {}
        for p in self.model.parameters():
            by_device.setdefault(str(p.device), []).append(p)
        return by_device

    def _sync_buffers(self):
        """Rank 0's floating buffers (batch norm's running statistics) on every rank, as PyTorch
        DDP's ``broadcast_buffers``: while training each rank updates its own from its own rows
        (they are not gradients: never averaged), and evaluation and the checkpoints (rank 0
        writes them) use rank 0's. Called at the start and before each evaluation; integer
        buffers (the batch counters) advance alike on every rank and are left alone."""
        if self.world.size == 1:
            return
        by_device = {}
        for b in self.model.buffers():
            if b.dtype.kind == "f":
                by_device.setdefault(str(b.device), []).append(b)
        for device, buffers in by_device.items():
            dist.broadcast_parameters(buffers, comm=self._comm_for(device))

    def _make_averagers(self):
        """One GradientAverager per device (with the two-tower model each tower's gradients are
        averaged over the ranks on its own GPU)."""
        return [dist.GradientAverager(params, comm=self._comm_for(device), mode=self.cfg.grad_sync,
                                      bucket_mb=self.cfg.bucket_mb) for device, params in self._parameters_by_device().items()]

    @contextlib.contextmanager
    def _averaged(self, weight):
        """Average the gradients of the block's backward over the ranks (weighted by this
        rank's share of the global batch); the time spent finishing goes to ``sync_seconds``."""
        if not self.averagers:
            yield
            return
        for a in self.averagers:
            a.begin(weight)
        try:
            yield
        except BaseException:
            for a in self.averagers:
                a.cancel()
            raise
        t0 = time.perf_counter()
        for a in self.averagers:
            a.finish()
        self.sync_seconds += time.perf_counter() - t0

    def _sum_over_ranks(self, values, tag, where):
        """``values`` summed over the ranks, in one allreduce that also sums ``tag`` (the step
        number, or -1 for validation, -2 for the end of the run): ranks at different places in
        the run (one left the loop early) meet in the same collective and all fail here, naming
        it, instead of mixing unrelated sums or waiting for each other without end."""
        sums = dist.all_reduce_sum(np.append(np.asarray(values, np.float64), float(tag)), comm=self.world)
        if sums[-1] != tag * self.world.size:
            raise RuntimeError(f"rank {self.world.rank} of {self.world.size} reached {where} while another rank was "
                               f"elsewhere in the run (expected every rank there vs not): the ranks do not agree on "
                               "the run's length")
        return sums[:-1]

    def _sync_generator(self):
        """Give every rank rank 0's generator state. Needed after a step in which a rank had no
        rows (a last batch smaller than the number of ranks) and so drew no dropout masks."""
        buffer = np.zeros(1024, np.uint8)
        if self.world.is_main:
            text = json.dumps(self.rng.bit_generator.state).encode()
            buffer[:len(text)] = np.frombuffer(text, np.uint8)
        self.world.broadcast_(buffer, 0)
        self.rng.bit_generator.state = json.loads(bytes(buffer).rstrip(b"\0").decode())

    # ----- checkpoints ------------------------------------------------------------------------------
    def _meta(self):
        """The checkpoint's meta (schema: ``checkpoint.SCHEMA``); "nothing yet" (inf) is null."""
        schedule = self.schedule.state_dict()
        schedule["best"] = schedule["best"] if math.isfinite(schedule["best"]) else None
        size = int(self.train_split.size)
        return {
            "epoch": self.epoch, "batch": self.batch, "step": self.step, "running": self.running,
            "best_val_top1_err": self.best_val_top1_err if math.isfinite(self.best_val_top1_err) else None,
            "schedule": schedule, "base_lr": self.base_lr, "rng": self.rng.bit_generator.state,
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
        if not batch:
            return f"epoch {epoch}/{self.cfg.epochs} done" if epoch else "before the first step"
        total = f"/{self.steps_per_epoch}" if self.steps_per_epoch else ""
        return f"epoch {epoch + 1}/{self.cfg.epochs}, step {batch}{total}"

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

    def _check_run(self, path, meta):
        if meta["classes"] != self.classes:
            raise ValueError(f"checkpoint {path} was trained on other classes (expected the data's "
                             f"{len(self.classes)} {self.classes[:3]}... vs {len(meta['classes'])} {meta['classes'][:3]}...)")
        scale = meta.get("input_scale", (meta.get("config") or {}).get("input_scale"))
        if scale is not None and scale != self.cfg.input_scale:
            raise ValueError(f"checkpoint {path} was trained with another input scale (expected {scale:g} "
                             f"vs {self.cfg.input_scale:g})")

    def load_weights(self, path):
        """Load only the model's weights from a checkpoint (for evaluation: no optimizer state is
        needed, so a two-tower checkpoint loads into the one-device model and back)."""
        path = os.fspath(path)
        meta = read_meta(path, ("classes",))
        self._check_run(path, meta)
        return load_checkpoint(path, self.net)

    def resume(self, path, override=()):
        """Continue from the checkpoint at ``path``. ``override``: optimizer settings ('lr',
        'momentum', 'weight_decay') whose values in the config win over the checkpoint's."""
        path = os.fspath(path)
        meta = read_meta(path, TRAINER_KEYS)  # cheap: refuse a wrong run before reading weights
        self._check_run(path, meta)
        check_position(meta, path, len(self.train_split), self.cfg.batch_size)
        old_batch = (meta.get("config") or {}).get("batch_size")
        if meta["batch"] and old_batch is not None and old_batch != self.cfg.batch_size:
            raise ValueError(f"checkpoint {path} stopped in the middle of an epoch with batch size {old_batch}; "
                             f"finishing it needs the same batch size (expected {old_batch} vs {self.cfg.batch_size})")
        meta = load_checkpoint(path, self.net, self.optimizer, required=TRAINER_KEYS)
        if self.mp is not None and meta.get("loss_scaler"):
            self.mp.scaler.load_state_dict(meta["loss_scaler"])
        self.epoch, self.batch, self.step = int(meta["epoch"]), int(meta["batch"]), int(meta["step"])
        self.running = dict(meta["running"])
        best = meta["best_val_top1_err"]
        self.best_val_top1_err = math.inf if best is None else float(best)
        schedule = dict(meta["schedule"])
        schedule["best"] = math.inf if schedule["best"] is None else schedule["best"]
        self.schedule.load_state_dict(schedule)
        self.rng.bit_generator.state = meta["rng"]
        self.base_lr = float(meta.get("base_lr", self.optimizer.param_groups[0]["lr"]))  # v1: one group
        for name in override:
            if name == "lr":
                self._set_base_lr(float(self.cfg.lr))
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

    @_run_settings
    def train_epoch(self, loader):
        """One pass over the training data (from ``self.batch`` on, when resuming mid-epoch);
        returns the epoch's training metrics."""
        self.model.train()
        stop = len(loader) if self.cfg.max_steps is None else min(len(loader), self.cfg.max_steps)
        loader.set_epoch(self.epoch, start_batch=min(self.batch, stop), stop_batch=stop)
        run = self.running  # sums over the epoch so far (restored by a mid-epoch resume)
        traffic = getattr(self.model, "traffic", None)
        if traffic is not None:
            traffic.reset()
        t0, images_now = time.perf_counter(), 0
        self.sync_seconds = 0.0
        world, n_train = self.world, len(self.train_split)
        bars = _bars(self.cfg) and world.is_main
        bar = _tqdm(loader, bars, desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", unit="step",
                    total=stop - min(self.batch, stop), leave=True)
        data_time, t_last, first_batch = 0.0, time.perf_counter(), self.batch
        if self._run_start is None:  # an epoch run outside fit(): its own start
            self._run_start = (t0, self._position(stop), stop)
        # This rank's step sums since the last read, where the logits are (_step_sums). On a GPU
        # they are read (and summed over the ranks) only where needed: the print steps, a
        # checkpoint, the epoch's end; each read waits for the GPU's queue to drain. On the host
        # (reading is free) every step, so a blow-up is caught before its backward.
        pending, pending_images = None, 0
        every = 1 if self.read_every_step else max(1, self.cfg.print_freq)
        for images, labels in bar:
            data_time += time.perf_counter() - t_last  # waiting for the loader
            total = min(self.cfg.batch_size, n_train - self.batch * self.cfg.batch_size)  # all ranks' rows (a last batch is short)
            first, last = shard_bounds(total, world.size, world.rank)  # our rows (the loader's)
            self.optimizer.zero_grad()
            with np.errstate(over="ignore", invalid="ignore"), self._averaged((last - first) / total), \
                    mt_random.batch_rows(first, last, total):  # a blow-up is reported below, once
                if len(labels):  # a rank may have no rows of a last, short batch
                    logits = self.net(self._tensor(images))
                    loss = F.cross_entropy(logits, labels)
                    step = self._step_sums(logits, loss, labels)
                    pending = step if pending is None else pending + step
                    pending_images += len(labels)
                # [loss sum, images, top-1, top-5 correct, ranks asked to stop] since the last read,
                # summed over the ranks (every rank reads at the same steps: the collective is
                # matched); a stop asked of any rank stops every rank after the step of that read
                sums = None
                if (self.batch + 1) % every == 0 or self.batch + 1 == stop or (
                        self.cfg.save_every and (self.step + 1) % self.cfg.save_every == 0):
                    sums = self._read_sums(pending, pending_images, self.stop_signal is not None)
                    pending, pending_images = None, 0
                    self._check_finite(sums[0] / sums[1], every)
                if len(labels):
                    if self.mp is not None:
                        self.mp.backward(loss)
                    else:
                        loss.backward()
            if total < world.size:  # some rank drew no dropout masks
                self._sync_generator()
            self._optimizer_step()
            self.step += 1
            self.batch += 1
            if sums is not None:
                images_now += _add_to_running(run, sums)
            if self.batch % max(1, self.cfg.print_freq) == 0:
                elapsed = time.perf_counter() - t0
                if bars:  # tqdm's own time left is the epoch's; run_ETA is the whole run's
                    bar.set_postfix(loss=f"{run['loss_sum'] / run['seen']:.3f}",
                                    top1_err=f"{1 - run['correct1'] / run['seen']:.3f}",
                                    img_s=f"{images_now / elapsed:.1f}", run_ETA=_duration(self.run_eta()))
                else:
                    self._progress_line(stop, run, elapsed, data_time, images_now, self.batch - first_batch)
            if self.cfg.save_every and self.step % self.cfg.save_every == 0:
                self.save()
            if self.step == CHANCE_CHECK_STEPS and world.is_main:
                self._warn_if_at_chance(run)
            if self.fitting and (self.stop_signal is not None if world.size == 1 else sums is not None and sums[4]):
                if pending is not None:  # one process on a GPU: the steps not read yet go into the checkpoint
                    late = self._read_sums(pending, pending_images)
                    pending, pending_images = None, 0
                    self._check_finite(late[0] / late[1], every)  # never checkpoint a blown-up run
                    images_now += _add_to_running(run, late)
                self._stop()
            t_last = time.perf_counter()
        seconds = time.perf_counter() - t0
        seen = max(run["seen"], 1)
        out = {"train_loss": run["loss_sum"] / seen, "train_top1_err": 1 - run["correct1"] / seen,
               "train_top5_err": 1 - run["correct5"] / seen, "images_per_s": images_now / max(seconds, 1e-9),
               "train_seconds": seconds}
        if self.averagers:  # time a step waited for the gradients of the other ranks
            out["sync_seconds"] = self.sync_seconds
        if traffic is not None:
            out["cross_device_bytes_per_step"] = traffic.total_bytes / max(stop, 1)
        return out

    @property
    def read_every_step(self):
        """Whether the step sums are read every step: on the host (free), not on a GPU."""
        return Device(self.input_device).type != "cuda"

    @staticmethod
    def _step_sums(logits, loss, labels):
        """[loss * n, top-1 correct, top-5 correct] of one step (float64), where the logits are:
        a NumPy array on the host, a device array on a GPU (no read of the device)."""
        scores = logits.data
        if not hasattr(scores, "__cuda_array_interface__"):
            correct = topk_correct(np.asarray(scores), labels)
            return np.array([float(loss.item()) * len(labels), correct[1], correct[5]])
        return device_step_sums(logits.xp, scores, loss.data, labels)

    def _read_sums(self, pending, images, stop_asked=False):
        """The step sums since the last read, as host floats [loss sum, images, top-1, top-5
        correct, ranks asked to stop], summed over the ranks (one small collective)."""
        sums = np.zeros(5)
        if pending is not None:
            host = pending.get() if hasattr(pending, "get") else np.asarray(pending)  # the one read of the device
            sums[0], sums[2], sums[3] = host
        sums[1], sums[4] = images, float(stop_asked)
        if self.world.size > 1:
            sums = self._sum_over_ranks(sums, self.step + 1, f"training step {self.step + 1}")
        return sums

    def _check_finite(self, value, every):
        """Stop (on every rank alike: the sums are global) when the loss is NaN or infinite."""
        if math.isfinite(value):
            return
        good = (f"the last good checkpoint is {self.last_checkpoint[0]} (step {self.last_checkpoint[2]})"
                if self.last_checkpoint else "no checkpoint was written before it")
        when = (f"at step {self.step + 1}" if every == 1 else
                f"in steps {max(self.step + 2 - every, 1)}-{self.step + 1} (read every {every} steps on the GPU)")
        raise TrainingDiverged(
            f"the loss became {value} {when} (epoch {self.epoch + 1}, batch {self.batch + 1}); "
            f"stopped without saving: {good}")

    def _warn_if_at_chance(self, run):
        """One line when the loss has not moved from chance level (a small folder with the paper's
        settings does that: tiny initial weights start slowly), saying what to try."""
        loss, chance = run["loss_sum"] / max(run["seen"], 1), math.log(max(len(self.classes), 2))
        if loss < 0.95 * chance:
            return
        advice = [] if self.pretrained else ["fine-tune ImageNet weights (--pretrained, see the README)"]
        if self.cfg.init != "kaiming" and not self.pretrained:
            advice.insert(0, "the built-in set's short-run settings (--init kaiming --input-scale 0.015625 "
                             "--warmup 50 --batch-size 32)")
        advice.append("a lower --lr" if loss > 1.1 * chance else "a higher --lr or more epochs")
        self._echo(f"warning: the training loss is {loss:.3f} after {self.step} steps, still at chance level "
                   f"(ln {len(self.classes)} = {chance:.3f}): the network is not learning yet; try "
                   + " or ".join(advice))

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

    def _progress_line(self, stop, run, elapsed, data_time, images, steps):
        """One plain line (pytorch/examples style) when there is no progress bar; the ETA is the
        whole run's (``run_eta``)."""
        per_step = elapsed / max(steps, 1)
        seen = max(run["seen"], 1)
        self._echo(f"epoch {self.epoch + 1}/{self.cfg.epochs} step {self.batch}/{stop} | {per_step:.3f} s/step "
                   f"(data {data_time / max(steps, 1):.3f} s) | loss {run['loss_sum'] / seen:.4f} | "
                   + errors_text(1 - run["correct1"] / seen, 1 - run["correct5"] / seen, len(self.classes))
                   + f" | {images / max(elapsed, 1e-9):.1f} img/s | ETA {_duration(self.run_eta())}")

    def _make_lr_schedule(self):
        """The per-step schedule (``mt.optim.lr_scheduler`` objects), or None: the linear warm-up
        from base/W over the first W steps (``LinearLR``), with ``schedule="cosine"`` times the half
        cosine from 1 down to 0 over the run (``CosineAnnealingLR``); both: their product."""
        cfg, chain = self.cfg, []
        if cfg.warmup_steps > 1:  # step k of W at base * (k + 1) / W
            chain.append(LinearLR(self.optimizer, 1.0 / cfg.warmup_steps, 1.0, cfg.warmup_steps - 1))
        if cfg.schedule == "cosine":
            chain.append(CosineAnnealingLR(self.optimizer, max(1, cfg.epochs * self.steps_per_epoch)))
        self._set_base_lr(self.base_lr)  # making a schedule sets the rates of its step 0
        return None if not chain else chain[0] if len(chain) == 1 else ChainedScheduler(chain)

    def lr_at(self, step):
        """The rate (of the layers at multiplier 1) the schedules give training step ``step``."""
        if self.lr_schedule is None:
            return self.base_lr
        return self.lr_schedule.lr_at(step, self.base_lr, self.optimizer.param_groups[0])

    def _optimizer_step(self):
        """One SGD step at the rates the per-step schedule gives ``self.step``."""
        if self.lr_schedule is not None:
            self.lr_schedule.set_step(self.step)
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
        self._sync_buffers()
        self.model.eval()
        loss_sum, seen, correct = 0.0, 0, {1: 0, 5: 0}
        with self._loader(split, train=False, ten_crop=ten_crop) as loader:
            for images, labels in _tqdm(loader, _bars(self.cfg) and self.world.is_main, desc="evaluate",
                                        unit="batch", leave=False):
                if self.fitting and self.stop_signal is not None and self.world.size == 1:
                    self._stop()  # (on N ranks the next training step stops them together)
                if not len(labels):  # this rank has no rows of a last, short batch
                    continue
                if ten_crop:
                    b = images.shape[0]
                    logits = self.net(self._tensor(images.reshape(b * 10, *images.shape[2:])))
                    probs = F.softmax(logits, axis=1).numpy().reshape(b, 10, -1).mean(axis=1)
                else:
                    probs = F.softmax(self.net(self._tensor(images)), axis=1).numpy()
                loss_sum += float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-30)).sum())
                seen += len(labels)
                for k, c in topk_correct(probs, labels).items():
                    correct[k] += c
        if self.world.size > 1:  # over the whole split: each image was one rank's
            loss_sum, seen, correct[1], correct[5] = self._sum_over_ranks([loss_sum, seen, correct[1], correct[5]],
                                                                          -1, "validation").tolist()
            seen, correct = int(seen), {1: int(correct[1]), 5: int(correct[5])}
        result = {"loss": loss_sum / max(seen, 1), "top1_err": 1 - correct[1] / max(seen, 1),
                  "top5_err": 1 - correct[5] / max(seen, 1), "images": seen,
                  "batch_images": (self.cfg.batch_size // 10 or 1) if ten_crop else self.cfg.batch_size}
        return result

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
                return self._fit(resume_from, echo if main else _silent, override)
            finally:
                self.fitting, self._run_start = False, None

    def _fit(self, resume_from, echo, override):
        self._echo = echo
        if resume_from is not None:
            self.resume(resume_from, override)
        self.log = MetricsLog(self.cfg.out, resume=resume_from is not None, write=self.world.is_main)
        if resume_from is not None:
            self.log.truncate(self.epoch)
            echo(f"resumed from {resume_from}: {self.epoch} epochs, {self.step} steps done, lr {self.base_lr:g}")
        with self._loader(self.train_split, train=True) as loader:
            self.steps_per_epoch = len(loader) if self.cfg.max_steps is None else min(len(loader), self.cfg.max_steps)
            self.lr_schedule = self._make_lr_schedule()
            # the ETA's rate: this process's steps only
            self._run_start = (time.perf_counter(), self._position(self.steps_per_epoch), self.steps_per_epoch)
            while self.epoch < self.cfg.epochs:
                if self.stop_signal is not None and self.world.size == 1:
                    self._stop()  # asked while the last epoch's checkpoint was written
                # the lr of the epoch's first and last steps (they differ in a warm-up or a cosine schedule);
                # the plateau rule changes the base lr only between epochs, so both are known now
                first = self.epoch * self.steps_per_epoch
                row = {"epoch": self.epoch + 1, "lr": self.lr_at(first + self.steps_per_epoch - 1),
                       "lr_first": self.lr_at(first)}
                row.update(self.train_epoch(loader))
                val = self.evaluate(ten_crop=self.cfg.ten_crop)
                row.update({f"val_{k}": v for k, v in val.items() if k != "images"})
                self.epoch, self.batch, self.running = self.epoch + 1, 0, _fresh_running()
                if self.cfg.schedule == "plateau" and self.schedule.step(val["top1_err"]):
                    self._set_base_lr(self.base_lr * self.schedule.factor)  # the same for every group
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
            self._sum_over_ranks([], -2, "the end of the run")
        if self.cfg.plots and self.world.is_main:
            self.write_plots()
        return self.log.rows

    @no_grad()
    def write_plots(self):
        """curves.png, conv1_filters.png and top5.png (the first validation images) in --out."""
        from ..data import center_crop

        split, count = self.val_split, min(8, len(self.val_split))
        sample = None
        if count:
            self.model.eval()
            crop = default_crop(split.size)
            idx = spread_over_classes(split.labels, count)  # one image per class where there are 8 classes
            x = center_crop(split.images, split.mean, crop, scale=self.cfg.input_scale, index=idx)
            probs = F.softmax(self.net(self._tensor(x)), axis=1).numpy()
            o = (split.size - crop) // 2
            sample = (np.asarray(split.images[idx, o:o + crop, o:o + crop]), np.asarray(split.labels)[idx], probs)
        return plots.write_all(self.cfg.out, self.log.rows if self.log else [], self.model, sample, self.classes)


def _silent(*args, **kwargs):
    """The echo of ranks other than 0."""


def device_step_sums(xp, scores, loss, labels):
    """[loss * n, top-1 correct, top-5 correct] (float64) of (N, C) ``scores`` on ``xp``'s device,
    without reading it: the ranks of the top k by a stable sort (ties: the lower class first, as
    ``topk_correct``'s argpartition may not; only exact ties can differ)."""
    n, classes = scores.shape
    k = min(5, classes)
    top = xp.argsort(-scores, axis=1)[:, :k]
    hits = top == xp.asarray(np.asarray(labels))[:, None]
    out = xp.zeros(3, dtype=xp.float64)
    out[0] = loss.astype(xp.float64) * n
    out[1] = hits[:, :1].any(axis=1).sum()
    out[2] = hits.any(axis=1).sum()
    return out


# the layers of each architecture, input to output; the paper's names work for either (by position)
ARCH_LAYERS = {
    "alexnet": ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"),
    "alexnet-torchvision": ("features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1",
                            "classifier.4", "classifier.6"),
}


def layers_up_to(arch, upto, layers):
    """The layers of ``layers`` (in model order, repeats allowed) from the first up to ``upto``, which
    is one of them or a paper name (``conv5``: torchvision's ``features.10``). The last layer (the
    classifier head) cannot be frozen."""
    order = list(dict.fromkeys(layers))
    paper = ARCH_LAYERS["alexnet"]
    layer = upto
    if upto not in order and upto in paper and arch in ARCH_LAYERS:
        layer = ARCH_LAYERS[arch][paper.index(upto)]
    if layer not in order[:-1]:
        names = ", ".join(order[:-1] + ([n for n in paper[:-1] if n not in order] if arch in ARCH_LAYERS else []))
        raise ValueError(f"--freeze: no such layer before the head (expected one of {names} vs {upto!r})")
    return order[:order.index(layer) + 1]


def load_pretrained(model, path):
    """Fine-tuning: copy into ``model`` every tensor of the checkpoint at ``path`` (a training
    checkpoint, or examples/convert_torchvision.py's) whose name and shape match; the others (the
    classifier head, for other classes) keep their new initial values. The copied ones must have
    the model's dtype and be finite. Returns ``{"path", "loaded": names, "new": layers,
    "unused": the checkpoint's names not loaded}``."""
    from ..serialization import load

    path = os.fspath(path)
    try:
        source = load(path, state_dict=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"--pretrained: {path} does not exist") from None
    except ValueError as exc:
        raise ValueError(f"--pretrained: {exc}") from None
    own = model.state_dict()
    merged, loaded, new = {}, [], []
    for name, value in own.items():
        theirs = source.get(name)
        if theirs is None or tuple(theirs.shape) != tuple(value.shape):
            merged[name] = value
            new.append(name)
            continue
        if np.dtype(theirs.dtype) != np.dtype(value.dtype):
            raise ValueError(f"--pretrained: {path}: {name} has another dtype (expected the model's {value.dtype} "
                             f"vs {theirs.dtype})")
        if not np.isfinite(theirs).all():
            raise ValueError(f"--pretrained: {path}: {name} holds NaN or infinite values (expected finite weights)")
        merged[name] = theirs
        loaded.append(name)
    if not loaded:
        raise ValueError(f"--pretrained: no tensor of {path} fits this model (expected names and shapes such as "
                         f"{next(iter(own))} {tuple(own[next(iter(own))].shape)} vs {list(source)[:2]})")
    model.load_state_dict(merged)
    return {"path": path, "loaded": loaded, "new": list(dict.fromkeys(n.rsplit(".", 1)[0] for n in new)),
            "unused": [n for n in source if n not in loaded]}


def _check_labels(split, num_classes):
    labels = np.asarray(split.labels)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(f"{getattr(split, 'name', 'split')} labels out of range (expected 0..{num_classes - 1} "
                         f"for {num_classes} classes vs {int(bad[0])}, {len(bad)} such labels)")


def _check_input_size(model, arch, store_size):
    """Refuse, before any training, a store whose crops the network cannot take (``input_sizes``
    of the model: AlexNet's fc6 takes 256 x 6 x 6, i.e. 224-px crops of 256-px images), rather
    than fail in the first forward pass ("kernel 3x3 is larger than the padded input 2x2")."""
    def fits(crop):
        return sizes[0] <= crop and (sizes[1] is None or crop <= sizes[1])

    sizes = getattr(model, "input_sizes", None)
    crop = default_crop(store_size)
    if sizes is None or fits(crop):
        return
    ok = [s for s in range(1, 4 * (sizes[1] or sizes[0]) + 2) if fits(default_crop(s))]
    crops = f"crops of >= {sizes[0]} px" if sizes[1] is None else f"crops of {sizes[0]} to {sizes[1]} px"
    stores = f">= {ok[0]} px" if sizes[1] is None else f"{ok[0]} to {ok[-1]} px"
    raise ValueError(f"--arch {arch} needs {crops}, cut from images of {stores} (expected a store of {stores}, "
                     f"the paper's 256, vs {store_size}-px images, giving {crop}-px crops): pack the data again at "
                     "256 px (prepare_data.py --size 256)")


def _fresh_running():
    return {"loss_sum": 0.0, "seen": 0, "correct1": 0, "correct5": 0}


def _add_to_running(run, sums):
    """Add read step sums [loss sum, images, top-1, top-5 correct, ...] to the epoch's running
    sums; returns the images they cover."""
    run["loss_sum"] += float(sums[0])
    run["seen"] += int(sums[1])
    run["correct1"] += int(sums[2])
    run["correct5"] += int(sums[3])
    return int(sums[1])


def has_top5(num_classes):
    """Top-5 error says something only with more than 5 classes (with 5 or fewer it is always 0)."""
    return num_classes is None or num_classes > 5


def errors_text(top1, top5, num_classes=None, digits=1):
    """"top-1/top-5 err 12.3%/4.5%", or "top-1 err 12.3%" when top-5 says nothing (``has_top5``)."""
    if has_top5(num_classes):
        return f"top-1/top-5 err {100 * top1:.{digits}f}%/{100 * top5:.{digits}f}%"
    return f"top-1 err {100 * top1:.{digits}f}%"


def lr_text(row):
    """The epoch's lr: "0.01", or "0.0025->0.0075" (its first step's, then its last step's) when a
    warm-up or the cosine schedule changed it during the epoch."""
    first = row.get("lr_first", row["lr"])
    return f"{row['lr']:.2g}" if f"{first:.2g}" == f"{row['lr']:.2g}" else f"{first:.2g}->{row['lr']:.2g}"


def format_row(row, num_classes=None):
    parts = [f"epoch {row['epoch']:3d}", f"lr {lr_text(row)}", f"loss {row['train_loss']:.4f}",
             "train " + errors_text(row["train_top1_err"], row["train_top5_err"], num_classes)]
    if "val_top1_err" in row:
        parts.append("val " + errors_text(row["val_top1_err"], row["val_top5_err"], num_classes))
    parts.append(f"{row['images_per_s']:.1f} img/s")
    if "cross_device_bytes_per_step" in row:
        parts.append(f"{row['cross_device_bytes_per_step'] / 2**20:.1f} MiB across devices/step")
    return " | ".join(parts)


def summary_table(rows, num_classes=None):
    """A plain-text table of every epoch (top-5 only with more than 5 classes); lr: the lr of the
    epoch's last step."""
    top5 = has_top5(num_classes)
    head = (f"{'epoch':>5} {'end lr':>8} {'loss':>8} {'train top1':>10} {'val top1':>9}" + (f" {'val top5':>9}" if top5 else "")
            + f" {'img/s':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['epoch']:5d} {r['lr']:8.2g} {r['train_loss']:8.4f} {100 * r['train_top1_err']:9.1f}% "
                     f"{100 * r.get('val_top1_err', float('nan')):8.1f}% "
                     + (f"{100 * r.get('val_top5_err', float('nan')):8.1f}% " if top5 else "")
                     + f"{r['images_per_s']:7.1f}")
    return "\n".join(lines)
