"""Engine processes die with the process that started them, even when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (killed, not yet reaped by its new parent) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _owner(stop_first: bool) -> tuple[subprocess.Popen, int]:
    """A process that starts a long-running child (the 'engine') and a reaper for it."""
    code = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from aries_lit.generators.backends.reaper import ProcessReaper, child_pids
        before = child_pids()
        engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        reaper = ProcessReaper(child_pids() - before)
        if {stop_first}:
            reaper.stop()
        print(engine.pid, flush=True)
        time.sleep(120)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def test_engine_processes_die_when_their_owner_is_killed():
    owner, engine = _owner(stop_first=False)
    assert _alive(engine)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    deadline = time.time() + 20
    while _alive(engine) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(engine), "the engine process outlived its owner"


def test_a_stopped_reaper_kills_nothing():
    owner, engine = _owner(stop_first=True)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    time.sleep(2)
    try:
        assert _alive(engine)  # an orphan, as without a reaper
    finally:
        os.kill(engine, signal.SIGKILL)
