"""The flags of ``examples/train_imagenet.py``: the parser, the checks that need no data, and the
run's settings resolved from flags, a ``--resume`` checkpoint and the data's preset (``TrainConfig``).

Each error names what was expected and what was given, as one line: ``UsageError`` (exit status 2).
"""
from __future__ import annotations

import argparse
import math
import os
import re

import numpy as np

from ..device import Device
from .pretrained import ARCH_LAYERS, layers_up_to
from .train_config import TrainConfig

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

def integer_in(lo, hi=None):
    """An argparse ``type``: an integer >= ``lo`` (and <= ``hi``), else a one-line usage error
    naming the range and the text given. The example scripts parse with it too."""
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


def number_in(lo, hi=math.inf, open_lo=False, open_hi=False):
    """An argparse ``type``: a finite number in [lo, hi] (or open at either end)."""
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


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (``UsageError``), for the CLI and the example scripts."""

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

    p = OneLineParser(prog="train_imagenet.py", description="Train AlexNet (Krizhevsky, Sutskever and Hinton, 2012).",
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
    p.add_argument("--epochs", type=integer_in(1), help=f"epochs (paper: 90; default data: {QUICK['epochs']})")
    p.add_argument("--batch-size", type=integer_in(1), help="images per SGD step (paper: 128)")
    p.add_argument("--lr", type=number_in(0, open_lo=True), help="initial learning rate (paper: 0.01)")
    p.add_argument("--momentum", type=number_in(0, 1, open_hi=True), help="SGD momentum (paper: 0.9)")
    p.add_argument("--weight-decay", type=number_in(0), help="weight decay (paper: 5e-4)")
    p.add_argument("--patience", type=integer_in(0), help="epochs without improvement before lr /= 10 (paper: 0)")
    p.add_argument("--schedule", choices=["plateau", "cosine"],
                   help="lr schedule: 'plateau' divides it by 10 when validation error stalls (paper), 'cosine' "
                        f"anneals it to 0 over the run (default data: {QUICK['schedule']})")
    p.add_argument("--warmup", type=integer_in(0), help=f"steps of linear lr warm-up (paper: 0; default data: {QUICK['warmup']})")
    p.add_argument("--init", choices=["paper", "kaiming"], help="weight initialisation (paper: N(0, 0.01^2))")
    p.add_argument("--dropout", type=number_in(0, 1, open_hi=True),
                   help="dropout rate after fc6 and fc7 (paper: 0.5; 0 turns it off)")
    p.add_argument("--input-scale", type=number_in(0, open_lo=True),
                   help="multiplier of the mean-subtracted 0..255 pixels (paper: 1)")
    p.add_argument("--workers", type=integer_in(0), default=None,
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
    p.add_argument("--bucket-mb", type=number_in(0, open_lo=True), default=25.0,
                   help="under mpiexec: megabytes per gradient bucket (default 25)")
    p.add_argument("--pretrained", metavar="CKPT",
                   help="fine-tune: start from this checkpoint (a run's, or examples/convert_torchvision.py's): "
                        "every layer whose shape fits is loaded, the classifier head is new for the data's classes; "
                        "--arch and --input-scale default to the checkpoint's")
    p.add_argument("--freeze", metavar="LAYER",
                   help="with --pretrained: the layers up to LAYER (e.g. conv5; conv1..fc7, or the arch's own names) "
                        "get no updates and no weight decay")
    p.add_argument("--head-lr-mult", type=number_in(0, open_lo=True),
                   help="lr multiplier of the new classifier head (default 10 with --pretrained, else 1)")
    p.add_argument("--out", default="runs/alexnet",
                   help="folder for checkpoints, metrics and plots (default: runs/alexnet); one run per folder")
    p.add_argument("--resume", nargs="?", const="auto", help="continue from a checkpoint (default: OUT/last.npz)")
    p.add_argument("--evaluate", action="store_true", help="only evaluate the --resume checkpoint on validation")
    p.add_argument("--ten-crop", action="store_true",
                   help="validate with 10 crops (corners, centre, mirrored), in batches of --batch-size/10 images "
                        "(the same number of crops); --max-val-batches still counts --batch-size images")
    p.add_argument("--seed", type=integer_in(0), default=0, help="seed of the weights, data order and augmentation")
    p.add_argument("--print-freq", type=integer_in(1), default=10,
                   help="every N steps: refresh the progress bar, or print a plain line when stdout is not a "
                        "terminal or with --no-progress")
    p.add_argument("--max-steps", type=integer_in(1), help="cap on training steps per epoch (quick runs)")
    p.add_argument("--max-val-batches", type=integer_in(1),
                   help="validate on only N x --batch-size images, spread evenly over the classes (quick runs)")
    p.add_argument("--save-every", type=integer_in(1), help="also checkpoint every N steps")
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
    from ..device import cuda_device_count

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
        from ..checkpoint import optimizer_settings

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
    from ..checkpoint import read_meta

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


def make_config(args, settings, devices):
    """The run's ``TrainConfig``: the resolved ``settings`` and the flags a checkpoint does not carry."""
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

