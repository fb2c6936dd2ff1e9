"""Command line of ``examples/train_imagenet.py``: parse and check flags, find or prepare the data, train.

Every failure ends with one line on stderr, ``error: <what> (expected <...> vs <given>)``, and
exit status 2 for bad usage (flags, devices) or 1 for a runtime failure (data, checkpoint, disk),
without a traceback unless ``--debug``. Every flag and device is checked before any data work.
Ctrl-C, SIGTERM and SIGHUP (``stop_on_signals``) finish the step, checkpoint and end with one line
naming the checkpoint and how to resume (exit status 130, 143, 129).

Under ``mpiexec -n N`` the same command trains data-parallel on N ranks
(:mod:`minitorch_alex.distributed`): rank 0 prints and writes, a usage error is reported once
(by the lowest rank that has it) after all ranks have checked their flags and devices, and a
failure on one rank during the run ends every rank (``MPI_Abort``) with a line naming it.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import shlex
import signal
import sys
import time
import warnings

import numpy as np

from ..distributed.agreement import Disagreement

PAPER = dict(epochs=90, batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4, patience=0, init="paper",
             input_scale=1.0, warmup=0, schedule="plateau", dropout=0.5)
# The built-in data: 10 pattern classes of 256-px JPEGs. A short schedule with a higher
# learning rate, so the paper's network (same layers, init and SGD rule) learns it in minutes.
QUICK = dict(epochs=8, batch_size=32, lr=0.01, momentum=0.9, weight_decay=5e-4, patience=1, init="kaiming",
             input_scale=1 / 64, warmup=50, schedule="plateau", dropout=0.5)
# Fashion-MNIST: the same short-run settings, 4 epochs of 250 steps, validating on 60 batches per
# epoch (the run of benchmarks/RESULTS.md; --evaluate scores the whole test set); flags override.
FASHION = dict(QUICK, epochs=4, max_steps=250, max_val_batches=60)
# --data -> (settings, what the banner calls them); any other data gets the paper's
PRESETS = {"default": (QUICK, "the default data's short-run preset"),
           "fashion-mnist": (FASHION, "Fashion-MNIST's short-run preset")}
QUICK_DATA = dict(num_classes=10, train_per_class=160, val_per_class=40)
# flag dest -> TrainConfig field, for the settings a checkpoint's config carries
SETTINGS = dict(epochs="epochs", batch_size="batch_size", lr="lr", momentum="momentum", weight_decay="weight_decay",
                patience="patience", init="init", input_scale="input_scale", warmup="warmup_steps",
                schedule="schedule", arch="arch", dropout="dropout", freeze="freeze", head_lr_mult="head_lr_mult")
OPTIMIZER_FLAGS = ("lr", "momentum", "weight_decay")

DATA_HELP = """data (--data):
  default         a generated image set (no download): written as JPEGs, then packed
  fashion-mnist   Debian's dataset-fashion-mnist package (stored at 28 px, enlarged to 256 px as read)
  PATH            a prepared store (has manifest.json), an ImageFolder tree
                  (PATH/train/<class>/*, PATH/val/<class>/*) or ILSVRC-2012 (detected from its
                  ground-truth file; --layout forces a layout)

With no flags the run uses the built-in data and a short schedule that finishes in a few minutes
on a laptop CPU; Fashion-MNIST has a short-run preset too (the same settings for 4 epochs of 250
steps: 83.6% top-1 in benchmarks/RESULTS.md); on any other data the defaults are the paper's (batch 128, lr 0.01, momentum 0.9,
weight decay 5e-4, 90 epochs, lr / 10 on plateaus). With --resume, settings not given as flags
come from the checkpoint; --lr, --momentum and --weight-decay given with --resume replace the
checkpoint's values.
"""


class UsageError(Exception):
    """A bad flag or flag combination: exit status 2."""


def default_workers(devices, cpus):
    """Loader processes when --workers is not given: 1 when the CPU trains (its cores run the
    step; more workers take them from it), else half the CPUs, at most 8: on a GPU the training
    batches are augmented there (GPUAugmenter) and the workers make the validation batches."""
    if all(str(d).startswith("cuda") for d in devices):
        return max(1, min(8, cpus // 2))
    return 1


# ----- flag types: each error names what was expected and what was given ------------------------------

def _integer(lo, hi=None):
    expected = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer (expected {expected} vs {text!r})") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"out of range (expected {expected} vs {value})")
        return value
    parse.__name__ = "integer"
    return parse


def _number(lo, hi=math.inf, open_lo=False, open_hi=False):
    rng = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number (expected a finite number in {rng} vs {text!r})") from None
        ok = math.isfinite(value) and (value > lo if open_lo else value >= lo) and (value < hi if open_hi else value <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(f"out of range (expected a finite number in {rng} vs {text})")
        return value
    parse.__name__ = "number"
    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump; exit status 2 (raised, caught in main)
        raise UsageError(_usage_message(message))


def _usage_message(message):
    message = re.sub(r"^argument ([^:]+): ", lambda m: m.group(1).split("/")[-1] + ": ", message)
    m = re.match(r"(\S+): invalid choice: (.+?) \(choose from (.+)\)$", message)
    if m:
        return f"{m.group(1)}: invalid choice (expected one of {m.group(3)} vs {m.group(2)})"
    m = re.match(r"unrecognized arguments: (.+)$", message)
    if m:
        return f"unrecognized arguments (expected the flags of --help vs {m.group(1)})"
    m = re.match(r"(\S+): expected one argument$", message)
    if m:
        return f"{m.group(1)}: missing value (expected one argument vs none)"
    return message


def build_parser():
    from ..models import ARCHITECTURES

    p = _Parser(prog="train_imagenet.py", description="Train AlexNet (Krizhevsky, Sutskever and Hinton, 2012).",
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_HELP)
    p.add_argument("--data", default="default", help="'default', 'fashion-mnist', or a folder (see below)")
    p.add_argument("--layout", choices=["auto", "imagefolder", "ilsvrc"], default="auto",
                   help="layout of a raw image folder given as --data (default: detected)")
    p.add_argument("--dummy", action="store_true",
                   help="random images and labels of ImageNet's sizes instead of --data (times the trainer alone: no decoding)")
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), default="alexnet",
                   help="'alexnet': the paper's network (default); 'alexnet-torchvision': torchvision's single-tower variant")
    p.add_argument("--data-dir", default="data", help="where generated and prepared data go (default: ./data)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what is there: another run's checkpoints and metrics in --out (a new run is "
                        "refused there otherwise), a store in --data-dir packed from another source or with other "
                        "settings")
    p.add_argument("--synset-order", metavar="FILE",
                   help="ILSVRC devkit labels: the class-id order, the devkit's meta.mat or a text file of WNIDs "
                        "(line k = id k); found next to the devkit's ground truth when not given")
    p.add_argument("--epochs", type=_integer(1), help=f"epochs (paper: 90; default data: {QUICK['epochs']})")
    p.add_argument("--batch-size", type=_integer(1), help="images per SGD step (paper: 128)")
    p.add_argument("--lr", type=_number(0, open_lo=True), help="initial learning rate (paper: 0.01)")
    p.add_argument("--momentum", type=_number(0, 1, open_hi=True), help="SGD momentum (paper: 0.9)")
    p.add_argument("--weight-decay", type=_number(0), help="weight decay (paper: 5e-4)")
    p.add_argument("--patience", type=_integer(0), help="epochs without improvement before lr /= 10 (paper: 0)")
    p.add_argument("--schedule", choices=["plateau", "cosine"],
                   help="lr schedule: 'plateau' divides it by 10 when validation error stalls (paper), 'cosine' "
                        f"anneals it to 0 over the run (default data: {QUICK['schedule']})")
    p.add_argument("--warmup", type=_integer(0), help=f"steps of linear lr warm-up (paper: 0; default data: {QUICK['warmup']})")
    p.add_argument("--init", choices=["paper", "kaiming"], help="weight initialisation (paper: N(0, 0.01^2))")
    p.add_argument("--dropout", type=_number(0, 1, open_hi=True),
                   help="dropout rate after fc6 and fc7 (paper: 0.5; 0 turns it off)")
    p.add_argument("--input-scale", type=_number(0, open_lo=True),
                   help="multiplier of the mean-subtracted 0..255 pixels (paper: 1)")
    p.add_argument("--workers", type=_integer(0), default=None,
                   help="data loader processes (0: load in this process; at most the CPU count; default: "
                        "1 on the CPU, whose cores train; on a GPU, which augments its training batches "
                        "itself, half the CPUs up to 8, for validation)")
    p.add_argument("--device", default="cpu", help="device, e.g. cpu or cuda:0")
    p.add_argument("--amp", choices=["float16", "bfloat16"],
                   help="mixed precision on CUDA devices: 16-bit activations and weights, float32 master weights, "
                        "loss scaling (float16; bfloat16 is refused: see the README's GPU section)")
    p.add_argument("--tf32", action="store_true", help="TF32 tensor cores for float32 GEMMs (CUDA devices)")
    p.add_argument("--devices", help="two devices for the paper's two-tower model, e.g. cpu:0,cpu:1 or cuda:0,cuda:1")
    p.add_argument("--grad-sync", choices=["flat", "buckets", "overlap"], default="overlap",
                   help="under mpiexec: how gradients are averaged over the ranks: one allreduce after backward "
                        "('flat'), buckets after backward ('buckets'), or buckets sent during backward as their "
                        "gradients are ready ('overlap', default)")
    p.add_argument("--bucket-mb", type=_number(0, open_lo=True), default=25.0,
                   help="under mpiexec: megabytes per gradient bucket (default 25)")
    p.add_argument("--pretrained", metavar="CKPT",
                   help="fine-tune: start from this checkpoint (a run's, or examples/convert_torchvision.py's): "
                        "every layer whose shape fits is loaded, the classifier head is new for the data's classes; "
                        "--arch and --input-scale default to the checkpoint's")
    p.add_argument("--freeze", metavar="LAYER",
                   help="with --pretrained: the layers up to LAYER (e.g. conv5; conv1..fc7, or the arch's own names) "
                        "get no updates and no weight decay")
    p.add_argument("--head-lr-mult", type=_number(0, open_lo=True),
                   help="lr multiplier of the new classifier head (default 10 with --pretrained, else 1)")
    p.add_argument("--out", default="runs/alexnet",
                   help="folder for checkpoints, metrics and plots (default: runs/alexnet); one run per folder")
    p.add_argument("--resume", nargs="?", const="auto", help="continue from a checkpoint (default: OUT/last.npz)")
    p.add_argument("--evaluate", action="store_true", help="only evaluate the --resume checkpoint on validation")
    p.add_argument("--ten-crop", action="store_true",
                   help="validate with 10 crops (corners, centre, mirrored), in batches of --batch-size/10 images "
                        "(the same number of crops); --max-val-batches still counts --batch-size images")
    p.add_argument("--seed", type=_integer(0), default=0, help="seed of the weights, data order and augmentation")
    p.add_argument("--print-freq", type=_integer(1), default=10,
                   help="every N steps: refresh the progress bar, or print a plain line when stdout is not a "
                        "terminal or with --no-progress")
    p.add_argument("--max-steps", type=_integer(1), help="cap on training steps per epoch (quick runs)")
    p.add_argument("--max-val-batches", type=_integer(1),
                   help="validate on only N x --batch-size images, spread evenly over the classes (quick runs)")
    p.add_argument("--save-every", type=_integer(1), help="also checkpoint every N steps")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (plain lines instead)")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    return p


def explicit_flags(argv):
    """The dests of the flags given on the command line (not defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


# ----- checks before any data work ---------------------------------------------------------------------

def check_device(name, flag):
    """Raise UsageError unless ``name`` is a device this machine has."""
    from ..device import Device, cuda_device_count

    try:
        device = Device(name)
    except (ValueError, TypeError):
        raise UsageError(f"{flag}: unknown device (expected cpu, cpu:N or cuda:N vs {name!r})") from None
    if device.type == "cuda":
        try:
            count = cuda_device_count()
        except RuntimeError as exc:
            reason = "CuPy is not installed" if "not installed" in str(exc) else "no usable CUDA device"
            raise UsageError(f"{flag}: {name} is not available (expected a CUDA device with CuPy vs {reason})") from None
        if device.index >= count:
            raise UsageError(f"{flag}: {name} does not exist (expected cuda:0..cuda:{count - 1} vs {name})")
    return str(device)


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_args(args, explicit, warn):
    """Cross-flag checks; returns the device tuple."""
    if args.devices:
        names = [d.strip() for d in args.devices.split(",")]
        if len(names) != 2:
            raise UsageError(f"--devices: wrong count (expected two devices such as cpu:0,cpu:1 vs {args.devices!r})")
        devices = tuple(check_device(n, "--devices") for n in names)
        if "device" in explicit and check_device(args.device, "--device") not in devices:
            raise UsageError(f"--device: conflicts with --devices (expected one of {args.devices} or no --device "
                             f"vs {args.device})")
        if devices[0] == devices[1]:
            raise UsageError(f"--devices: the same device twice (expected two different devices vs {args.devices!r})")
    else:
        devices = (check_device(args.device, "--device"),)
    if args.amp is not None:
        cpu = [d for d in devices if not d.startswith("cuda")]
        if cpu:  # NumPy has no fast 16-bit GEMM: float16 ran ~40x slower than float32 (issue 18), and the numba kernels take float32/64
            raise UsageError(f"--amp: mixed precision needs CUDA devices (expected cuda:N vs {','.join(cpu)}); on the CPU "
                             "16-bit arrays have no fast kernels or GEMMs, so train in float32 there")
        if args.amp == "bfloat16":
            raise UsageError("--amp: bfloat16 is not supported on CUDA here (expected float16 vs bfloat16): "
                             "see the README's GPU section")
    cpus = cpu_count()
    if args.workers is None:
        args.workers = default_workers(devices, cpus)
    if args.workers > cpus:
        warn(f"warning: --workers {args.workers} is more than the {cpus} CPUs of this machine; using {cpus}")
        args.workers = cpus
    if args.data not in ("default", "fashion-mnist") and not os.path.isdir(args.data):
        raise UsageError(f"--data: no such folder (expected 'default', 'fashion-mnist' or an existing folder "
                         f"vs {args.data!r})")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out: not a folder (expected a folder for the run vs the file {args.out!r})")
    if args.synset_order is not None and not os.path.isfile(args.synset_order):
        raise UsageError(f"--synset-order: no such file (expected meta.mat or a text file of WNIDs vs "
                         f"{args.synset_order!r})")
    if args.pretrained is not None:
        if args.resume is not None or args.evaluate:
            raise UsageError("--pretrained: starts a new run (expected no --resume or --evaluate vs "
                             f"{'--evaluate' if args.evaluate else '--resume'}); a run's own checkpoint is resumed")
        if args.devices:
            raise UsageError(f"--pretrained: not supported with the two-tower model (expected no --devices vs "
                             f"{args.devices})")
        if not os.path.isfile(args.pretrained):
            raise UsageError(f"--pretrained: no checkpoint there (expected an existing .npz file vs {args.pretrained!r})")
    elif args.freeze is not None and args.resume is None:
        raise UsageError(f"--freeze: needs --pretrained (expected --pretrained CKPT vs none; freezing new random "
                         f"layers learns nothing) [--freeze {args.freeze}]")
    if args.evaluate and args.resume is None:
        raise UsageError("--evaluate: no checkpoint to evaluate (expected --resume PATH vs none; "
                         "a random network's score means nothing)")
    return devices


def preset_of(args):
    """(settings, name) of the preset for ``--data``: a short run on the built-in sets, else the paper's."""
    return PRESETS.get(args.data, (PAPER, "the paper's settings"))


def resolve_settings(args, explicit, preset, meta, resume, echo):
    """The run's settings: flags, else the checkpoint's config (on --resume), else the preset."""
    saved = (meta or {}).get("config") or {}
    parsers = {a.dest: a.type for a in build_parser()._actions if a.dest in SETTINGS}
    out = {}
    for dest, field in SETTINGS.items():
        if dest in explicit:
            out[dest] = getattr(args, dest)
        elif field in saved:
            value = saved[field]
            try:  # the checkpoint's value gets the flag's checks
                out[dest] = parsers[dest](str(value)) if parsers[dest] is not None else value
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"checkpoint {resume}: config.{field} {exc}") from None
            choices = {a.dest: a.choices for a in build_parser()._actions}.get(dest)
            if choices and value not in choices:
                raise ValueError(f"checkpoint {resume}: config.{field} invalid (expected one of {choices} vs {value!r})")
        else:
            out[dest] = preset[dest] if dest in preset else getattr(args, dest)  # no preset: the flag's default
    if meta is not None:
        flag = lambda d: "--" + d.replace("_", "-")  # noqa: E731
        for dest in ("arch", "init", "input_scale"):
            if dest in explicit and SETTINGS[dest] in saved and out[dest] != saved[SETTINGS[dest]]:
                raise UsageError(f"{flag(dest)}: cannot change on --resume (expected the checkpoint's "
                                 f"{saved[SETTINGS[dest]]} vs {out[dest]})")
        if "batch_size" in explicit and meta.get("batch") and saved.get("batch_size") not in (None, out["batch_size"]):
            raise UsageError(f"--batch-size: cannot change in the middle of an epoch on --resume (expected the "
                             f"checkpoint's {saved['batch_size']} vs {out['batch_size']})")
        from .checkpoint import optimizer_settings

        optimizer = optimizer_settings(meta)
        for dest in OPTIMIZER_FLAGS:
            if dest in explicit and dest in optimizer and optimizer[dest] != out[dest]:
                echo(f"{flag(dest)} {out[dest]:g} replaces the checkpoint's {optimizer[dest]:g}")
            elif dest not in explicit and dest in optimizer:
                out[dest] = float(optimizer[dest])  # the schedule's current value, not the initial one
    if out["head_lr_mult"] is None:
        out["head_lr_mult"] = 10.0 if args.pretrained else 1.0
    out["new_layers"] = tuple(saved.get("new_layers") or ())
    # per-epoch caps: a flag, else the preset's (--evaluate scores the whole validation set)
    out["max_steps"] = args.max_steps if args.max_steps is not None else preset.get("max_steps")
    out["max_val_batches"] = (args.max_val_batches if args.max_val_batches is not None or args.evaluate
                              else preset.get("max_val_batches"))
    return out


def pretrained_settings(args, explicit, settings):
    """--pretrained: the checkpoint's architecture and input scaling unless flagged (so the loaded
    layers see inputs as they were trained on; torchvision's per-channel std becomes its mean), and
    --freeze checked against the architecture's layers."""
    from .checkpoint import read_meta
    from .trainer import ARCH_LAYERS, layers_up_to

    meta = read_meta(args.pretrained)
    config = meta.get("config") or {}
    if "arch" not in explicit:
        arch = meta.get("arch") or config.get("arch") or "alexnet"
        if arch not in ARCH_LAYERS:
            raise ValueError(f"--pretrained: {args.pretrained} holds an unknown architecture (expected one of "
                             f"{', '.join(ARCH_LAYERS)} vs {arch!r})")
        settings["arch"] = arch
    if "input_scale" not in explicit:
        scale = meta.get("input_scale", config.get("input_scale", 1.0))
        std = float(np.mean(meta.get("std") or 1.0))
        settings["input_scale"] = float(scale) / std
    if args.freeze is not None:
        try:
            layers_up_to(settings["arch"], args.freeze, ARCH_LAYERS[settings["arch"]])
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def pretrained_line(trainer):
    """The start-up line of a fine-tuning run: what was loaded, what is new, what is frozen."""
    report, cfg = trainer.pretrained, trainer.cfg
    total = len(trainer.model.state_dict())
    line = (f"pretrained: {len(report['loaded'])} of {total} tensors from {report['path']} ({cfg.arch}); new for the "
            f"data's {len(trainer.classes)} classes: {', '.join(report['new']) or 'none'} (lr x {cfg.head_lr_mult:g})")
    if trainer.frozen:
        line += f"; frozen (no updates, no weight decay): {', '.join(trainer.frozen)}"
    return line


def make_config(args, settings, devices):
    from .trainer import TrainConfig

    return TrainConfig(
        epochs=settings["epochs"], batch_size=settings["batch_size"], lr=settings["lr"], momentum=settings["momentum"],
        weight_decay=settings["weight_decay"], patience=settings["patience"], init=settings["init"],
        input_scale=settings["input_scale"], warmup_steps=settings["warmup"], schedule=settings["schedule"],
        amp=args.amp, tf32=args.tf32, workers=args.workers, devices=devices,
        out=args.out, seed=args.seed, print_freq=args.print_freq, max_steps=settings["max_steps"],
        max_val_batches=settings["max_val_batches"], save_every=args.save_every, ten_crop=args.ten_crop,
        plots=not args.no_plots, progress=not args.no_progress, arch=settings["arch"], dropout=settings["dropout"],
        grad_sync=args.grad_sync, bucket_mb=args.bucket_mb, pretrained=args.pretrained, freeze=settings["freeze"],
        head_lr_mult=settings["head_lr_mult"], new_layers=settings["new_layers"],
    )


def rank_devices(devices, world):
    """This rank's devices. Under mpiexec the k-th rank of a node shifts each CUDA index by
    k x (devices per rank): ``--device cuda:0`` gives rank k cuda:k, ``--devices cuda:0,cuda:1``
    gives it cuda:2k and cuda:2k+1 (the two-tower model inside each rank, data parallel across
    ranks). CPU devices are the same on every rank."""
    if world.size == 1:
        return devices
    out = []
    for name in devices:
        if not name.startswith("cuda"):
            out.append(name)
            continue
        index = int(name.split(":")[1]) + world.local_rank * len(devices)
        try:
            out.append(check_device(f"cuda:{index}", "--devices" if len(devices) > 1 else "--device"))
        except UsageError as exc:
            raise UsageError(f"{exc} [rank {world.rank} is rank {world.local_rank} of {world.local_size} on its node, "
                             f"each rank taking {len(devices)} GPU(s) from {name} on]") from None
    return tuple(out)


def check_ranks(cfg, world):
    """The global batch must split evenly over the ranks."""
    if cfg.batch_size % world.size:
        raise UsageError(f"--batch-size: does not split over {world.size} ranks (expected a multiple of {world.size} "
                         f"vs {cfg.batch_size}): the batch is the global one, each rank takes batch / ranks")


def threads_per_rank(world):
    """Under mpiexec with no thread count in the environment: the node's CPUs shared out among
    its ranks (each rank's own pool and BLAS), instead of every rank using every core. Returns
    the count set, or None."""
    if world.size == 1:
        return None
    try:
        from minitorch_alex_kernels.cpu import parallel
    except ImportError:  # no numba kernels: the reference backend, NumPy's BLAS only
        return None
    if any(os.environ.get(v) for v in parallel.THREAD_VARS):
        return None
    n = max(1, cpu_count() // world.local_size)
    parallel.limit_threads(n)
    return n


def agree_on_usage(world, failure):
    """All ranks have checked their flags and devices: if any failed, the lowest such rank raises
    its error (printed once) and the others leave quietly with the same status."""
    if world.size == 1:
        if failure is not None:
            raise failure
        return
    failed = np.zeros(world.size, np.int64)
    failed[world.rank] = failure is not None
    world.allreduce_(failed)
    if failed.any():
        first = int(np.argmax(failed))
        if world.rank == first:
            if world.rank != 0 and isinstance(failure, UsageError):
                raise UsageError(f"rank {world.rank} of {world.size}: {failure}")
            raise failure
        raise _Quiet(2 if isinstance(failure, UsageError) or failure is None else 1)


class _Quiet(Exception):
    """Leave with this status without a message: another rank reports the error."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


def resolve_data_on_ranks(args, echo, check, world):
    """``resolve_data`` on every rank, in turn: rank 0 prepares (or checks) the store first; then
    the first rank of each other node opens it, or packs its own copy where the nodes share no
    filesystem; then all the others open it (no lock taken: many ranks open it at once)."""
    if world.size == 1:
        return resolve_data(args, echo, check)
    store = None
    for turn in (world.rank == 0, world.rank != 0 and world.local_rank == 0, world.local_rank != 0):
        if turn:
            store = resolve_data(args, echo if world.rank == 0 else _silent, check, reuse=world.rank != 0)
        world.barrier()
    return store


def _silent(*args, **kwargs):
    """The echo of ranks other than 0."""


# TrainConfig fields that may differ between ranks (this rank's devices, loader processes, what rank 0 alone writes)
PER_RANK = ("devices", "workers", "out", "print_freq", "plots", "progress", "extra")


def run_fields(args, cfg, store, meta):
    """What defines the run, in the order a disagreement is reported (``distributed.check_agreement``):
    the code, the mode, every resolved setting (named by its flag), the checkpoint resumed and the
    store's content (``data.store.fingerprint``)."""
    from dataclasses import asdict

    from ..data.store import fingerprint
    from ..distributed.agreement import canonical, code_version, digest

    flags = {field: "--" + dest.replace("_", "-") for dest, field in SETTINGS.items()}
    fields = [("the code", code_version()), ("--evaluate", bool(args.evaluate))]
    fields += [(flags.get(k, "--" + k.replace("_", "-")), v) for k, v in asdict(cfg).items() if k not in PER_RANK]
    # the device indices are each rank's own; their number and kinds decide the collectives (NCCL or MPI, towers)
    fields.append(("--device/--devices", [d.split(":")[0] for d in cfg.devices]))
    fields.append(("the checkpoint (--resume)", None if meta is None else
                   f"epoch {meta.get('epoch')} step {meta.get('step')} meta sha256 {digest(canonical(meta).encode())[:12]}"))
    return fields + fingerprint(store)


def _nothing_to_do(echo, resume, meta, cfg):
    echo(f"nothing to do: {resume} has finished {meta['epoch']} of {cfg.epochs} epochs "
         f"(pass --epochs N with N > {meta['epoch']} to train longer)")
    return []


# ----- data ------------------------------------------------------------------------------------------

def resolve_data(args, echo=print, check=None, reuse=False):
    """Return a ``Store`` for ``--data``, generating or packing it first when needed.
    ``check(counts)`` is called with the listed images per split before any packing.
    ``reuse``: open a store already packed at the destination as it is, without taking its lock
    (the ranks after rank 0, which has packed it or checked its settings)."""
    from ..data import open_store, prepare

    def packed(dst):
        return reuse and os.path.isfile(os.path.join(dst, "manifest.json"))

    # the packing and statistics bars (on stderr) only on a terminal: in a redirected log they are \r fragments
    progress = not args.no_progress and sys.stderr.isatty()
    if args.dummy:
        from ..data.dummy import dummy_store

        echo("data: --dummy, random 256px images of 1000 classes (ImageNet's split sizes)")
        store = dummy_store(num_classes=1000)
        if check is not None:
            check({split: len(getattr(store, split)) for split in ("train", "val")})
        return store
    if args.data == "default":
        src = os.path.join(args.data_dir, "default-src")
        dst = os.path.join(args.data_dir, "default-store")
        echo(f"data: the built-in generated set ({QUICK_DATA['num_classes']} classes) in {dst}")
        if packed(dst):
            return open_store(dst)
        return open_store(prepare(src, dst, layout="synthetic", synthetic_options=dict(QUICK_DATA, seed=0),
                                  progress=progress, check=check, overwrite=args.overwrite))
    if args.data == "fashion-mnist":
        from ..data.resized import upscale_store

        dst = os.path.join(args.data_dir, "fashion-mnist-28px-store")  # 28 x 28, as the data set is
        if packed(dst):
            return upscale_store(open_store(dst), 256)
        return upscale_store(open_store(prepare(None, dst, layout="fashion-mnist", size=28, progress=progress,
                                                check=check, overwrite=args.overwrite)), 256)
    path = args.data
    if os.path.exists(os.path.join(path, "manifest.json")):
        store = open_store(path)
        if check is not None:
            check({split: len(getattr(store, split)) for split in ("train", "val")})
        return store
    layout = args.layout
    if layout == "auto":
        from ..data.readers import _find_ground_truth

        flat_val = os.path.isdir(os.path.join(path, "val")) and not any(
            e.is_dir() for e in os.scandir(os.path.join(path, "val")))
        layout = "ilsvrc" if flat_val and _find_ground_truth(os.path.abspath(path)) else "imagefolder"
    dst = os.path.join(args.data_dir, os.path.basename(os.path.normpath(path)) + "-store")
    if packed(dst):
        return open_store(dst)
    if os.path.isfile(os.path.join(dst, "manifest.json")):
        echo(f"data: {path} ({layout}), packed earlier in {dst}")
    else:
        echo(f"data: packing {path} ({layout}) into {dst} (once: later runs reuse it)")
    return open_store(prepare(path, dst, layout=layout, progress=progress, check=check, overwrite=args.overwrite,
                              synset_order=args.synset_order))


def store_fingerprint(store):
    """``sha256:...`` of what the store was packed from: its manifest's packing settings (layout, source,
    size, classes, the digest of the listed files and labels), else its classes and split sizes."""
    config = (store.manifest or {}).get("config")
    if not config:
        config = {"classes": list(store.classes), "train": len(store.train), "val": len(store.val)}
    return "sha256:" + hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def data_source(args, store):
    """What a run trains on, kept in its checkpoints' meta (``data_source``): ``--data`` as given and
    resolved, the layout, the packed store and its fingerprint."""
    if args.dummy:
        return {"data": "dummy", "resolved": "dummy", "layout": "dummy", "store": None,
                "fingerprint": store_fingerprint(store)}
    named = args.data in ("default", "fashion-mnist")
    return {"data": args.data, "resolved": args.data if named else os.path.abspath(args.data),
            "layout": (store.manifest or {}).get("layout") or args.layout, "store": os.path.abspath(store.root),
            "fingerprint": store_fingerprint(store)}


def remembered_data(args, explicit, meta, resume):
    """On ``--resume``/``--evaluate`` without ``--data``: point ``args`` at the checkpoint's data source
    (its packed store when it is still there, else its images) and return the record; None when
    ``--data``/``--dummy`` is given or the checkpoint predates the record."""
    source = meta.get("data_source")
    if source is None or explicit & {"data", "dummy"}:
        return None
    given, store = source["data"], source.get("store")
    if given == "dummy":
        args.dummy = True
    elif given in ("default", "fashion-mnist"):
        args.data = given
        if store and "data_dir" not in explicit:
            args.data_dir = os.path.dirname(store)
    elif store and os.path.isfile(os.path.join(store, "manifest.json")):
        args.data = store
    elif os.path.isdir(source["resolved"]):
        args.data = source["resolved"]
        args.layout = source["layout"] if source["layout"] in ("imagefolder", "ilsvrc") else "auto"
    else:
        raise ValueError(f"--data: the data of {resume} is gone (expected its store {store} or its images "
                         f"{source['resolved']} vs neither exists); pass --data")
    return source


# ----- the run folder ------------------------------------------------------------------------------------

RUN_FILES = ("last.npz", "best.npz", "metrics.jsonl", "metrics.csv", "curves.png", "conv1_filters.png", "top5.png")


def check_out_is_free(args, world):
    """A new run must not replace another run's checkpoints in ``--out``: refuse, naming the command
    that resumes that run, unless ``--overwrite``."""
    from .checkpoint import read_meta

    found = [n for n in ("last.npz", "best.npz") if os.path.isfile(os.path.join(args.out, n))]
    if not found:
        return
    done = ""
    with contextlib.suppress(ValueError, OSError):
        meta = read_meta(os.path.join(args.out, found[0]), ("epoch",))
        done = f", {meta['epoch']} epochs done"
    launcher = ["mpiexec", "-n", str(world.size)] if world.size > 1 else []
    out = [] if args.out == build_parser().get_default("out") else ["--out", args.out]
    command = " ".join(shlex.quote(a) for a in [*launcher, "python", "examples/train_imagenet.py", *out, "--resume"])
    raise UsageError(f"--out: {args.out} holds another run (expected a folder without checkpoints vs "
                     f"{', '.join(found)}{done}); resume it with: {command}; or add --overwrite to replace it, "
                     "or give another --out")


def clear_run(folder):
    """Remove a previous run's files from ``folder`` (``--overwrite``, the lock held)."""
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, name))


# ----- the run -------------------------------------------------------------------------------------------

def _one_line(exc):
    if isinstance(exc, OSError) and exc.strerror:  # "[Errno 28] ...: path" without the errno noise
        filename = exc.filename
        text = exc.strerror if filename is None or str(filename) in exc.strerror else f"{exc.strerror}: {filename}"
        return text
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


# the signals that end a run, and the exit status of each (128 + the signal's number, as a shell reports it)
STOP_SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


@contextlib.contextmanager
def stop_on_signals(state):
    """Ctrl-C (SIGINT), SIGTERM (SLURM, Kubernetes, ``kill``) and SIGHUP (a closed terminal), with
    handlers of our own (so they work as PID 1 too, where the default actions do nothing): the
    first asks a training run to finish its step, write ``last.npz`` where it stands and stop
    (``Trainer.request_stop``); with no run training yet (packing data, evaluating) it stops at
    once, as does a second signal. Stopping at once raises ``Interrupted`` in the main thread, so
    a checkpoint being written is abandoned and its temporary file removed."""
    import threading

    from .trainer import Interrupted

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        trainer = state.get("trainer")
        first = state.get("signal") is None
        state["signal"] = signum
        if first and trainer is not None and trainer.fitting:
            trainer.request_stop(signum)
            return
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv=None, echo=print):
    """Run the command line; returns the metric rows (or the evaluation). Exits with status 2
    on bad usage, 1 on a runtime failure, 130/143/129 on SIGINT (Ctrl-C)/SIGTERM/SIGHUP, after
    one line on stderr."""
    argv = list(sys.argv[1:] if argv is None else argv)
    state = {"trainer": None, "debug": "--debug" in argv, "world": None, "agreed": False, "signal": None}
    try:
        with warnings.catch_warnings(), stop_on_signals(state):
            # A blow-up is reported once, by the trainer ("the loss became nan at step ..."); kernels
            # running in worker threads, outside the trainer's np.errstate, would warn first.
            warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) encountered", RuntimeWarning)
            return _run(argv, echo, state)
    except _Quiet as exc:
        raise SystemExit(exc.status) from None
    except UsageError as exc:
        if state["debug"]:
            raise
        _fail(state, f"error: {exc}", 2)
    except Disagreement as exc:  # the same verdict on every rank, outside any collective
        if state["debug"]:
            raise
        _fail(state, f"error: {exc}", 2 if exc.field.startswith("--") else 1, everywhere=True, together=True)
    except KeyboardInterrupt as exc:
        if state["debug"]:
            raise
        signum = getattr(exc, "signum", signal.SIGINT)
        saved = getattr(exc, "saved", False)  # every rank stopped after the same step: no abort needed
        _fail(state, _interrupted(argv, state, exc), STOP_SIGNALS.get(signum, 128 + signum), everywhere=True,
              together=saved)
    except Exception as exc:  # noqa: BLE001 (the CLI's contract: one line, not a traceback)
        if state["debug"]:
            raise
        from .trainer import TrainingDiverged

        diverged = isinstance(exc, TrainingDiverged)  # every rank stops at the same step: the sums are global
        _fail(state, f"error: {_one_line(exc)}", 1, everywhere=diverged, together=diverged)


def _fail(state, line, status, everywhere=False, together=False):
    """Print ``line`` and leave with ``status``. On N ranks after the usage checks, a failure of
    one rank ends them all (``MPI_Abort``: the others may be waiting for it in a collective),
    its line naming the rank. A failure ``everywhere`` at once (a diverged loss, or Ctrl-C, which
    mpiexec hands to every rank) is printed by rank 0 alone; when the ranks also stop
    ``together`` (at the same step, outside any collective) they exit normally."""
    world = state.get("world")
    if world is None or world.size == 1 or not state.get("agreed"):
        print(line, file=sys.stderr)
        raise SystemExit(status) from None
    if everywhere:
        if world.is_main:
            print(line, file=sys.stderr, flush=True)
        if together:
            raise SystemExit(status) from None
    else:
        head, _, rest = line.partition(": ")
        print(f"{head}: rank {world.rank} of {world.size} failed: {rest}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    world.abort(status)


def _interrupted(argv, state, exc=None):
    trainer = state.get("trainer")
    last = trainer.last_checkpoint if trainer is not None else None
    signum = getattr(exc, "signum", signal.SIGINT)
    by = "interrupted" + (f" by {signal.Signals(signum).name}" if signum != signal.SIGINT else "")
    if trainer is None and state.get("packing"):
        return f"{by} while preparing the data (the same command again continues where packing stopped)"
    if last is None:
        return f"{by}: no checkpoint was written yet (run the same command again to start over)"
    path = last[0]
    rest, i = [], 0
    while i < len(argv):  # the same command without its --resume (and --resume's value)
        a = argv[i]
        if a == "--resume":
            i += 2 if i + 1 < len(argv) and not argv[i + 1].startswith("-") else 1
            continue
        if not a.startswith("--resume="):
            rest.append(a)
        i += 1
    world = state.get("world")
    launcher = ["mpiexec", "-n", str(world.size)] if world is not None and world.size > 1 else []
    command = " ".join(shlex.quote(a) for a in [*launcher, "python", "examples/train_imagenet.py", *rest, "--resume", path])
    if getattr(exc, "saved", False):
        return f"{by}: saved {path} ({trainer.position()}); resume with: {command}"
    return f"{by}: the last checkpoint is {path} ({trainer.position()}); resume with: {command}"


def _run(argv, echo, state):
    from .. import distributed as dist
    from .checkpoint import TRAINER_KEYS, read_meta
    from .run_folder import locked
    from .trainer import Trainer, has_top5, summary_table

    world = state["world"] = dist.init()  # a world of one without mpiexec (no mpi4py needed)
    if not world.is_main:
        echo = _silent
    failure = None
    try:  # every check that needs no data, on every rank, then one verdict (agree_on_usage)
        args = build_parser().parse_args(argv)
        explicit = explicit_flags(argv)
        warn = (lambda text: print(text, file=sys.stderr)) if world.is_main else _silent  # noqa: E731
        devices = rank_devices(check_args(args, explicit, warn), world)
        t_start = time.perf_counter()
        resume = os.path.join(args.out, "last.npz") if args.resume == "auto" else args.resume
        meta = remembered = None
        if resume is not None:
            if not os.path.isfile(resume):
                raise UsageError(f"--resume: no checkpoint there (expected an existing .npz file vs {resume!r})")
            meta = read_meta(resume, () if args.evaluate else TRAINER_KEYS)
            remembered = remembered_data(args, explicit, meta, resume)
        preset, preset_name = preset_of(args)
        if resume is None and not args.overwrite:
            check_out_is_free(args, world)
        settings = resolve_settings(args, explicit, preset, meta, resume, echo)
        if args.pretrained is not None:
            pretrained_settings(args, explicit, settings)
        cfg = make_config(args, settings, devices)
        check_ranks(cfg, world)
    except Exception as exc:  # noqa: BLE001 (reported by agree_on_usage, once)
        if world.size == 1 or state["debug"]:
            raise
        failure = exc
    agree_on_usage(world, failure)
    state["agreed"] = True
    threads = threads_per_rank(world)
    finished = meta is not None and not args.evaluate and meta.get("epoch", 0) >= cfg.epochs and not meta.get("batch")
    if finished and world.size == 1:  # on N ranks, once they agree on the checkpoint (below)
        return _nothing_to_do(echo, resume, meta, cfg)

    def check_counts(counts):
        for split, n in counts.items():
            if n == 0:
                raise ValueError(f"the {split} split of --data {args.data} has no images (expected >= 1 vs 0)")
        if cfg.batch_size > counts["train"]:
            raise UsageError(f"--batch-size: larger than the training set (expected <= {counts['train']} "
                             f"vs {cfg.batch_size})")

    lock = locked(cfg.out) if not args.evaluate and world.is_main else contextlib.nullcontext()
    with lock:  # before any data work: a second run on the same --out stops here
        state["packing"] = True
        if remembered is not None:
            echo(f"data: the checkpoint's, {remembered['data']} (store {remembered['store']})")
        store = resolve_data_on_ranks(args, echo, check_counts, world)
        if remembered is not None and remembered["fingerprint"] != store_fingerprint(store):
            raise ValueError(f"--data: the data changed since {resume} was written (expected the store "
                             f"{remembered['store']} of fingerprint {remembered['fingerprint'][:19]} vs "
                             f"{store_fingerprint(store)[:19]} in {store.root}); pass --data to train or evaluate on it")
        check_counts({"train": len(store.train), "val": len(store.val)})
        if world.size > 1:  # before any rank trains (the fields cost a read of the source and the labels)
            dist.check_agreement(world, run_fields(args, cfg, store, meta))
        if finished:
            return _nothing_to_do(echo, resume, meta, cfg)
        lr_note = " (the checkpoint's)" if resume is not None and "lr" not in explicit else ""
        echo(f"{len(store.train)} training and {len(store.val)} validation images of {store.train.size}px, "
             f"{len(store.classes)} classes; "
             + preset_name + " unless flagged"
             + (" or resumed" if resume is not None else "")
             + f": epochs {cfg.epochs}, batch {cfg.batch_size}, lr {cfg.lr}{lr_note}, momentum {cfg.momentum}, "
             f"weight decay {cfg.weight_decay}, {cfg.schedule} schedule, warm-up {cfg.warmup_steps} steps, "
             f"init {cfg.init}, input scale {cfg.input_scale:g}, dropout {cfg.dropout:g}, devices {','.join(cfg.devices)}"
             + (f"; data parallel on {world.size} ranks of {cfg.batch_size // world.size} images, gradients "
                f"averaged by '{cfg.grad_sync}'" + (f", {threads} thread{'s' if threads > 1 else ''} each" if threads else "")
                if world.size > 1 else ""))
        from ..data.readers import find_class_names

        names = find_class_names(store.manifest.get("source") or store.root, store.classes)
        trainer = state["trainer"] = Trainer(cfg, store.train, store.val, store.classes, class_names=names)
        trainer.data_source = remembered or data_source(args, store)
        if trainer.pretrained is not None:
            echo(pretrained_line(trainer))
        if args.evaluate:
            trainer.load_weights(resume)
            result = trainer.evaluate(ten_crop=cfg.ten_crop)
            crops = (f"10-crop, {result['images']} images in batches of {result['batch_images']} images = "
                     f"{10 * result['batch_images']} crops" if cfg.ten_crop else f"centre crop, {result['images']} images")
            echo(f"validation ({crops}): "
                 f"loss {result['loss']:.4f}, top-1 error {100 * result['top1_err']:.2f}%"
                 + (f", top-5 error {100 * result['top5_err']:.2f}%" if has_top5(len(store.classes)) else
                    f" (no top-5: {len(store.classes)} classes)"))
            return result
        if resume is None and args.overwrite and world.is_main:
            clear_run(cfg.out)
        rows = trainer.fit(resume_from=resume, echo=echo, override=[d for d in OPTIMIZER_FLAGS if d in explicit])
    echo("\n" + summary_table(rows, len(store.classes)))
    final = rows[-1]
    top5 = f" (top-5 {100 * (1 - final['val_top5_err']):.1f}%)" if has_top5(len(store.classes)) else ""
    echo(f"\nfinal validation top-1 accuracy {100 * (1 - final['val_top1_err']):.1f}%{top5}, "
         f"total time {time.perf_counter() - t_start:.0f} s; "
         f"{'checkpoints, metrics and plots' if cfg.plots else 'checkpoints and metrics'} in {cfg.out}")
    return rows


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main() and 0)
