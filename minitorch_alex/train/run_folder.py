"""The run folder (``--out``) belongs to one run at a time.

``locked(folder)`` holds an exclusive ``fcntl.flock`` on ``folder/.lock`` for as long as a run
writes there; a second run on the same folder is refused with ``RunFolderBusy`` naming the
process that holds it (its pid and command line, written into the lock file). The lock goes
away with its process, however it ends (SIGKILL included), so a stale lock file never blocks.
Once the lock is held, temporary files left by a write that was killed half-way
(``.tmp-last.npz*``) are removed: no other process can be writing them.
"""
from __future__ import annotations

import contextlib
import os
import sys

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not protected from each other
    fcntl = None

LOCK = ".lock"
_held: dict = {}  # realpath -> [fd, depth]: the lock is re-entrant within this process


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder."""


def _holder(fd) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not written its pid yet"


def clean_stale(folder) -> list[str]:
    """Remove ``.tmp-*`` files in ``folder`` (interrupted atomic writes); returns their names."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(folder):
            if name.startswith(".tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, name))
                    removed.append(name)
    return removed


@contextlib.contextmanager
def locked(folder, what="run folder"):
    """Hold ``folder``'s lock (re-entrant in this process); see the module doc."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    key = os.path.realpath(folder)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    fd = os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunFolderBusy(f"{what} {folder} is in use by another run (expected no other process "
                                    f"writing there vs pid {_holder(fd)})") from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}: {' '.join(sys.argv)[:300]}\n".encode("utf-8", "replace"))
        clean_stale(folder)
        _held[key] = [fd, 1]
        try:
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # releases the flock
