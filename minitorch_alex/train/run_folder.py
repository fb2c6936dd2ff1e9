"""The run folder (``--out``) belongs to one run at a time.

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

from ..data.locks import Busy
from ..data.locks import locked as _locked
from ..serialization import remove_temps

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
