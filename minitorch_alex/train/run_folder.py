"""The run folder (``--out``) belongs to one run at a time.

A new run does not replace another's checkpoints there (``check_out_is_free``, before any data
work) unless ``--overwrite``, which removes that run's files once the lock is held (``clear_run``).

``locked(folder)`` holds an exclusive ``fcntl.flock`` on ``folder/.lock`` for as long as a run
writes there (:mod:`minitorch_alex.data.locks`); a second run on the same folder is refused with
``RunFolderBusy`` naming the process that holds it (pid and command line). The lock goes away
with its process, however it ends (SIGKILL included). Once the lock is held, temporary files left
by a write that was killed half-way (``.tmp-last.npz*``) are removed: no other process can be
writing them.
"""
from __future__ import annotations

import contextlib
import os
import shlex

from ..data.locks import Busy
from ..data.locks import locked as _locked
from ..serialization import remove_temps
from .options import UsageError, build_parser

LOCK = ".lock"
RunFolderBusy = Busy


@contextlib.contextmanager
def locked(folder):
    """Hold ``folder``'s lock (re-entrant in this process) and clear its stale temp files."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    with _locked(os.path.join(folder, LOCK), f"run folder {folder}"):
        remove_temps(folder)
        yield


RUN_FILES = ("last.npz", "best.npz", "metrics.jsonl", "metrics.csv", "curves.png", "conv1_filters.png", "top5.png")


def check_out_is_free(args, world):
    """A new run must not replace another run's checkpoints in ``--out``: refuse, naming the command
    that resumes that run, unless ``--overwrite``."""
    from ..checkpoint import read_meta

    found = [n for n in ("last.npz", "best.npz") if os.path.isfile(os.path.join(args.out, n))]
    if not found:
        return
    done = ""
    with contextlib.suppress(ValueError, OSError):
        meta = read_meta(os.path.join(args.out, found[0]), ("epoch",))
        done = f", {meta['epoch']} epochs done"
    out = [] if args.out == build_parser().get_default("out") else ["--out", args.out]
    command = resume_command(world.size, [*out, "--resume"])
    raise UsageError(f"--out: {args.out} holds another run (expected a folder without checkpoints vs "
                     f"{', '.join(found)}{done}); resume it with: {command}; or add --overwrite to replace it, "
                     "or give another --out")


def resume_command(world_size, flags):
    """The training command with ``flags``, as a shell takes it (under ``mpiexec -n N`` on N ranks):
    what a refused or stopped run tells its user to type."""
    launcher = ["mpiexec", "-n", str(world_size)] if world_size > 1 else []
    return " ".join(shlex.quote(a) for a in [*launcher, "python", "examples/train_imagenet.py", *flags])


def clear_run(folder):
    """Remove a previous run's files from ``folder`` (``--overwrite``, the lock held)."""
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, name))
