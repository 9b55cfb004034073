"""Engine processes that do not outlive the process that started them.

``vllm.LLM`` starts engine processes (``VLLM::EngineCore``, ``VLLM::Worker``) that keep running, and
keep a core busy, when the process that owns them is killed (``SIGKILL``, an out-of-memory kill, a
session that ends): a rerun of the killed command then shares the machine with the orphans. A
:class:`ProcessReaper` is a tiny watcher process that waits for its parent to go away and then kills
the engine processes it was given; a normal shutdown stops the watcher first.
"""

from __future__ import annotations

import os
import subprocess
import sys

_WATCH = r"""
import os, signal, sys, time
parent, pids = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
while os.getppid() == parent:
    time.sleep(0.5)
for pid in pids:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
"""


def child_pids() -> set[int]:
    """The PIDs of this process's descendants (empty when ``psutil`` is missing)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - vLLM depends on psutil
        return set()
    return {p.pid for p in psutil.Process().children(recursive=True)}


class ProcessReaper:
    """Kill ``pids`` when this process dies; :meth:`stop` when they were shut down normally."""

    def __init__(self, pids: set[int] | list[int]) -> None:
        self.pids = sorted(pids)
        self._watcher: subprocess.Popen | None = None
        if self.pids:
            self._watcher = subprocess.Popen(
                [sys.executable, "-c", _WATCH, str(os.getpid()), *map(str, self.pids)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to the command does not stop the watcher first
            )

    def stop(self) -> None:
        """Stop watching (the engine was shut down; its PIDs may be reused later)."""
        if self._watcher is not None and self._watcher.poll() is None:
            self._watcher.kill()
            self._watcher.wait()
        self._watcher = None


__all__ = ["ProcessReaper", "child_pids"]
