"""Exclusive advisory locks on files, naming the holder when refused.

``locked(path, what)`` holds ``fcntl.flock(LOCK_EX)`` on ``path`` (created if needed) and writes
this process's pid and command line into it, so a refusal can say who holds it. The lock dies
with its process (SIGKILL included): a left-over lock file never blocks. Re-entrant within a
process (flock locks belong to an open file, so a second open in the same process would block).
A lock path that is a symbolic link is refused (``LinkedLock``, one line), never followed.
On systems without ``fcntl`` (Windows) nothing is locked.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

_held: dict = {}  # realpath -> depth


class Busy(RuntimeError):
    """Another process holds the lock."""


class LinkedLock(RuntimeError):
    """The lock file is a symbolic link: refused, not followed."""


def _holder(fd) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not written its pid yet"


@contextlib.contextmanager
def locked(path, what):
    """Hold the lock ``path`` for ``what`` (e.g. 'run folder runs/x'); raise ``Busy`` (a
    RuntimeError) naming the holder if another process has it."""
    path = os.fspath(path)
    key = os.path.realpath(path)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    try:  # O_NOFOLLOW: a lock that is a symlink is refused, never followed (it could name anyone's file)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise LinkedLock(f"{what}: its lock {path} is a symbolic link (expected a regular file vs a link to "
                             f"{os.readlink(path)!r}); remove the link, nothing was written through it") from None
        raise
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Busy(f"{what} is in use by another process (expected no other process there vs "
                           f"pid {_holder(fd)})") from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}: {' '.join(sys.argv)[:300]}\n".encode("utf-8", "replace"))
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # releases the flock
