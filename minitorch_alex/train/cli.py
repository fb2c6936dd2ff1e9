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

This module is the flow (``main``, ``_run``) and how a run ends; its parts live beside it: the
flags and settings in :mod:`.options`, the data in :mod:`.data_source`, the ranks' coordination in
:mod:`.ranks`, the run folder's checks in :mod:`.run_folder`.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import warnings

from ..distributed.agreement import Disagreement
from .data_source import data_source, remembered_data, store_fingerprint
from .options import (
    OPTIMIZER_FLAGS,
    UsageError,
    build_parser,
    check_args,
    explicit_flags,
    make_config,
    preset_of,
    pretrained_settings,
    resolve_settings,
)
from .pretrained import pretrained_line
from .ranks import Quiet, agree_on_usage, check_ranks, fail, rank_devices, resolve_data_on_ranks, run_fields, threads_per_rank
from .report import has_top5, silent, summary_table
from .run_folder import check_out_is_free, clear_run, locked, resume_command


def one_line_error(exc):
    """An exception as the one line a user sees (an OSError without its errno; a multi-line
    message as its first and last lines)."""
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
    except Quiet as exc:
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
        _fail(state, f"error: {one_line_error(exc)}", 1, everywhere=diverged, together=diverged)


def _fail(state, line, status, everywhere=False, together=False):
    """Print ``line`` and leave with ``status``; on N ranks after the usage checks, as
    ``ranks.fail`` says (``everywhere``: the failure is every rank's; ``together``: at the same step)."""
    world = state.get("world")
    if world is None or world.size == 1 or not state.get("agreed"):
        print(line, file=sys.stderr)
        raise SystemExit(status) from None
    fail(world, line, status, everywhere, together)


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
    command = resume_command(world.size if world is not None else 1, [*rest, "--resume", path])
    if getattr(exc, "saved", False):
        return f"{by}: saved {path} ({trainer.position()}); resume with: {command}"
    return f"{by}: the last checkpoint is {path} ({trainer.position()}); resume with: {command}"


def _nothing_to_do(echo, resume, meta, cfg):
    echo(f"nothing to do: {resume} has finished {meta['epoch']} of {cfg.epochs} epochs "
         f"(pass --epochs N with N > {meta['epoch']} to train longer)")
    return []


def _run(argv, echo, state):
    from .. import distributed as dist
    from ..checkpoint import TRAINER_KEYS, read_meta
    from .trainer import Trainer

    world = state["world"] = dist.init()  # a world of one without mpiexec (no mpi4py needed)
    if not world.is_main:
        echo = silent
    failure = None
    try:  # every check that needs no data, on every rank, then one verdict (agree_on_usage)
        args = build_parser().parse_args(argv)
        explicit = explicit_flags(argv)
        warn = (lambda text: print(text, file=sys.stderr)) if world.is_main else silent  # noqa: E731
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
