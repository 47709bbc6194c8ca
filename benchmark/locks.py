"""Per-run locks, so that a run is trained by one process at a time (two ``bench run`` on one ``--out``).

An OS file lock (``fcntl.flock``, POSIX) on ``<run dir>/run.lock``: the kernel releases it when the holder
exits or is killed (kill -9 included), so a crash never leaves a stale lock behind. The file itself stays
(removing it would race with a process about to lock it) and names the last holder for the message.
Ray clusters with a shared filesystem lock through it too (NFS supports flock on Linux since 2.6.12);
``--ray-results driver`` trains in worker-local directories and takes no lock.
"""
from __future__ import annotations

import fcntl
import os
import socket
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

LOCK_FILE = "run.lock"


class RunBusy(Exception):
    """Another process holds the run's lock (it is training that run right now)."""


@contextmanager
def run_lock(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s run lock for the block; RunBusy at once (no waiting) if another process has it."""
    path = Path(directory) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise RunBusy(f"another process is training it right now ({holder}; lock {path}); "
                          f"run the same command again once it is done to collect its result") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def run_locks(directories: list[Path]) -> Iterator[None]:
    """Hold the locks of several run directories (twins that train once), all or none."""
    with ExitStack() as stack:
        for directory in directories:
            stack.enter_context(run_lock(directory))
        yield
