"""One writer per folder: an advisory lock that a run takes on each folder it writes.

``generate``/``select`` take their ``out_dir``, ``fit`` its ``default_root_dir``, ``iterate`` and
``study`` each stage folder; so different arms run side by side while a second run of the same
folder stops at once with one line naming the folder and the holder (host and process id).

The lock is ``fcntl.flock`` on ``<folder>/.aries_lit.lock``, whose text names the holder. The
kernel drops a flock when its process dies (kill -9 included), so a lock left by a dead process
is taken over by the next run, with a note naming the dead holder. On a network filesystem the
lock holds as far as the filesystem implements ``flock``: NFSv4 and Lustre (mounted with
``flock``) do, across hosts; older NFS and some FUSE mounts give only a host-local lock
(docs/faults.md). Bottom layer: imports nothing from aries_lit but :mod:`aries_lit.core.errors`.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aries_lit.core.errors import FolderInUseError

__all__ = ["LOCK_NAME", "FolderLock", "folder_lock", "is_primary_process"]

LOCK_NAME = ".aries_lit.lock"


def is_primary_process() -> bool:
    """Whether this process is the one that should lock a run's folders: not a DDP or torchrun
    worker of another rank (``RANK``, ``LOCAL_RANK``, ``NODE_RANK``, ``SLURM_PROCID``), so the
    ranks of one run never refuse each other."""
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "GROUP_RANK"):
        value = os.environ.get(var)
        if value not in (None, "", "0"):
            return False
    return True


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    return f"process {holder.get('pid', '?')} on {holder.get('host', '?')} (since {holder.get('since', '?')})"


class FolderLock:
    """An exclusive, non-blocking lock on ``folder`` (created if missing), held until :meth:`release`.

    Raises :class:`~aries_lit.core.errors.FolderInUseError` when a live process holds it."""

    def __init__(self, folder: str | os.PathLike, what: str = "run") -> None:
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _read_holder(self.path)
            raise FolderInUseError(
                f"{self.folder} is in use by {_describe(holder)}: another {holder.get('what', 'run')} "
                "writes there; wait for it or use another folder"
            ) from None
        previous = _read_holder(self.path)
        if previous and previous.get("pid") != os.getpid():
            print(
                f"[aries-lit] note: {self.folder}: taking over the lock left by {_describe(previous)}, "
                "which has ended",
                file=sys.stderr,
            )
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "what": self.what,
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays, emptied: the next run finds no holder to report)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


#: folders this process holds (a step inside a stage writes the stage's folder too)
_HELD: set[Path] = set()


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "run") -> Iterator[FolderLock | None]:
    """Hold :class:`FolderLock` on ``folder`` for the block in the primary process. Re-entrant: a
    folder this process already holds is not locked again; other ranks of the same run lock
    nothing (both yield ``None``)."""
    key = Path(folder).absolute()
    if not is_primary_process() or key in _HELD:
        yield None
        return
    with FolderLock(folder, what) as lock:
        _HELD.add(key)
        try:
            yield lock
        finally:
            _HELD.discard(key)
