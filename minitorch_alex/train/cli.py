"""Command line of ``examples/train_imagenet.py``: parse flags, find or prepare the data, train.

Data (``--data``):
  default         a generated image set (no download): written as JPEGs, then packed
  fashion-mnist   Debian's dataset-fashion-mnist package (stored at 28 px, enlarged to 256 px as read)
  PATH            a prepared store (has manifest.json), an ImageFolder tree
                  (PATH/train/<class>/*, PATH/val/<class>/*) or ILSVRC-2012 (--layout ilsvrc)

With no flags the run uses the built-in default data and a short schedule that finishes in a
few minutes on a laptop CPU. Fashion-MNIST has a short-run preset too: the same settings for
4 epochs of 250 steps (83.6% top-1 in benchmarks/RESULTS.md). On any other data the defaults are
the paper's (batch 128, lr 0.01, momentum 0.9, weight decay 5e-4, 90 epochs, lr / 10 on plateaus).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

PAPER = dict(epochs=90, batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4, patience=0, init="paper",
             input_scale=1.0, warmup=0, schedule="plateau")
# The built-in data: 10 pattern classes of 256-px JPEGs. A short schedule with a higher
# learning rate, so the paper's network (same layers, init and SGD rule) learns it in minutes.
QUICK = dict(epochs=8, batch_size=32, lr=0.01, momentum=0.9, weight_decay=5e-4, patience=1, init="kaiming",
             input_scale=1 / 64, warmup=50, schedule="plateau")
# Fashion-MNIST: the same short-run settings, 4 epochs of 250 steps, validating on 60 batches per
# epoch (the run of benchmarks/RESULTS.md; --evaluate scores the whole test set); flags override.
FASHION = dict(QUICK, epochs=4, max_steps=250, max_val_batches=60)
PRESETS = {"default": (QUICK, "the default data's short-run preset"),
           "fashion-mnist": (FASHION, "Fashion-MNIST's short-run preset")}
QUICK_DATA = dict(num_classes=10, train_per_class=160, val_per_class=40)


def build_parser():
    p = argparse.ArgumentParser(prog="train_imagenet.py", description="Train AlexNet (Krizhevsky et al., 2012).",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--data", default="default", help="'default', 'fashion-mnist', or a folder (see below)")
    p.add_argument("--layout", choices=["auto", "imagefolder", "ilsvrc"], default="auto",
                   help="layout of a raw image folder given as --data (default: auto)")
    p.add_argument("--data-dir", default="data", help="where generated and prepared data go (default: ./data)")
    p.add_argument("--epochs", type=int, help="epochs (paper: 90; default data: %d)" % QUICK["epochs"])
    p.add_argument("--batch-size", type=int, help="images per SGD step (paper: 128)")
    p.add_argument("--lr", type=float, help="initial learning rate (paper: 0.01)")
    p.add_argument("--momentum", type=float, help="SGD momentum (paper: 0.9)")
    p.add_argument("--weight-decay", type=float, help="weight decay (paper: 5e-4)")
    p.add_argument("--patience", type=int, help="epochs without improvement before lr /= 10 (paper: 0)")
    p.add_argument("--schedule", choices=["plateau", "cosine"],
                   help="lr schedule: 'plateau' divides it by 10 when validation error stalls (paper), 'cosine' "
                        "anneals it to 0 over the run (default data: %s)" % QUICK["schedule"])
    p.add_argument("--warmup", type=int, help="steps of linear lr warm-up (paper: 0; default data: %d)" % QUICK["warmup"])
    p.add_argument("--init", choices=["paper", "kaiming"], help="weight initialisation (paper: N(0, 0.01^2))")
    p.add_argument("--input-scale", type=float, help="multiplier of the mean-subtracted 0..255 pixels (paper: 1)")
    p.add_argument("--workers", type=int, default=1, help="data loader processes (0: load in this process)")
    p.add_argument("--device", default="cpu", help="device, e.g. cpu or cuda:0")
    p.add_argument("--amp", choices=["float16", "bfloat16"],
                   help="mixed precision: 16-bit activations and weights, float32 master weights, loss scaling")
    p.add_argument("--tf32", action="store_true", help="TF32 tensor cores for float32 GEMMs (CUDA devices)")
    p.add_argument("--devices", help="two devices for the paper's two-tower model, e.g. cpu:0,cpu:1 or cuda:0,cuda:1")
    p.add_argument("--out", default="runs/alexnet", help="folder for checkpoints, metrics and plots")
    p.add_argument("--resume", nargs="?", const="auto", help="continue from a checkpoint (default: OUT/last.npz)")
    p.add_argument("--evaluate", action="store_true", help="only evaluate (the --resume checkpoint) on validation")
    p.add_argument("--ten-crop", action="store_true", help="validate with 10 crops (corners, centre, mirrored)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--print-freq", type=int, default=10, help="refresh the progress line every N steps")
    p.add_argument("--max-steps", type=int, help="cap on training steps per epoch (quick runs)")
    p.add_argument("--max-val-batches", type=int, help="cap on validation batches (quick runs)")
    p.add_argument("--save-every", type=int, help="also checkpoint every N steps")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def resolve_data(args, echo=print):
    """Return a ``Store`` for ``--data``, generating or packing it first when needed."""
    from ..data import open_store, prepare

    progress = not args.no_progress
    if args.data == "default":
        src = os.path.join(args.data_dir, "default-src")
        dst = os.path.join(args.data_dir, "default-store")
        echo(f"data: the built-in generated set ({QUICK_DATA['num_classes']} classes) in {dst}")
        return open_store(prepare(src, dst, layout="synthetic", synthetic_options=dict(QUICK_DATA, seed=0),
                                  progress=progress))
    if args.data == "fashion-mnist":
        from ..data.resized import upscale_store

        dst = os.path.join(args.data_dir, "fashion-mnist-28px-store")  # 28 x 28, as the data set is
        return upscale_store(open_store(prepare(None, dst, layout="fashion-mnist", size=28, progress=progress)), 256)
    path = args.data
    if not os.path.isdir(path):
        raise SystemExit(f"--data: {path!r} is not 'default', 'fashion-mnist' or an existing folder")
    if os.path.exists(os.path.join(path, "manifest.json")):
        return open_store(path)
    layout = args.layout
    if layout == "auto":
        markers = ("LOC_val_solution.csv", "ILSVRC2012_validation_ground_truth.txt")
        layout = "ilsvrc" if any(os.path.exists(os.path.join(path, m)) for m in markers) else "imagefolder"
    dst = os.path.join(args.data_dir, os.path.basename(os.path.normpath(path)) + "-store")
    echo(f"data: packing {path} ({layout}) into {dst} (done once)")
    return open_store(prepare(path, dst, layout=layout, progress=progress))


def make_config(args, preset):
    from .trainer import TrainConfig

    pick = lambda name: getattr(args, name) if getattr(args, name) is not None else preset.get(name)  # noqa: E731
    devices = tuple(d.strip() for d in args.devices.split(",")) if args.devices else (args.device,)
    if len(devices) not in (1, 2):
        raise SystemExit(f"--devices: expected two devices such as cpu:0,cpu:1, got {args.devices!r}")
    return TrainConfig(
        epochs=pick("epochs"), batch_size=pick("batch_size"), lr=pick("lr"), momentum=pick("momentum"),
        weight_decay=pick("weight_decay"), patience=pick("patience"), init=pick("init"),
        input_scale=pick("input_scale"), warmup_steps=pick("warmup"), schedule=pick("schedule"), amp=args.amp, tf32=args.tf32, workers=args.workers, devices=devices,
        out=args.out, seed=args.seed, print_freq=args.print_freq, max_steps=pick("max_steps"),
        max_val_batches=args.max_val_batches if args.evaluate else pick("max_val_batches"),
        save_every=args.save_every, ten_crop=args.ten_crop,
        plots=not args.no_plots, progress=not args.no_progress,
    )


def main(argv=None, echo=print):
    from .trainer import Trainer, TrainingDiverged, summary_table

    args = build_parser().parse_args(argv)
    if args.warmup is not None and args.warmup < 0:
        raise SystemExit(f"--warmup: expected a number of steps >= 0, got {args.warmup}")
    for flag in ("epochs", "batch_size", "workers", "max_steps", "max_val_batches", "save_every", "print_freq"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "workers" else 1):
            raise SystemExit(f"--{flag.replace('_', '-')}: expected a positive number, got {value}")
    t_start = time.perf_counter()
    preset, preset_name = PRESETS.get(args.data, (PAPER, "the paper's settings"))
    cfg = make_config(args, preset)  # bad flags fail before any data work
    store = resolve_data(args, echo)
    echo(f"{len(store.train)} training and {len(store.val)} validation images of {store.train.size}px, "
         f"{len(store.classes)} classes; " + preset_name + " unless flagged" +
         f": epochs {cfg.epochs}, batch {cfg.batch_size}, lr {cfg.lr}, momentum {cfg.momentum}, "
         f"weight decay {cfg.weight_decay}, {cfg.schedule} schedule, warm-up {cfg.warmup_steps} steps, init {cfg.init}, input scale {cfg.input_scale:g}, "
         f"devices {','.join(cfg.devices)}")
    trainer = Trainer(cfg, store.train, store.val, store.classes)
    resume = os.path.join(cfg.out, "last.npz") if args.resume == "auto" else args.resume
    if args.evaluate:
        if resume is not None:
            trainer.resume(resume)
        result = trainer.evaluate(ten_crop=cfg.ten_crop)
        echo(f"validation ({'10-crop' if cfg.ten_crop else 'centre crop'}, {result['images']} images): "
             f"loss {result['loss']:.4f}, top-1 error {100 * result['top1_err']:.2f}%, "
             f"top-5 error {100 * result['top5_err']:.2f}%")
        return result
    try:
        rows = trainer.fit(resume_from=resume, echo=echo)
    except TrainingDiverged as exc:
        raise SystemExit(f"error: {exc}") from None
    echo("\n" + summary_table(rows))
    final = rows[-1]
    echo(f"\nfinal validation top-1 accuracy {100 * (1 - final['val_top1_err']):.1f}% "
         f"(top-5 {100 * (1 - final['val_top5_err']):.1f}%), total time {time.perf_counter() - t_start:.0f} s; "
         f"checkpoints, metrics and plots in {cfg.out}")
    return rows


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main() and 0)
