"""vLLM's output in one file, and its failures as one line (:class:`EngineLog`).

The engine log of the ``vllm`` backend and of the reward model's vLLM scorer: what vLLM prints
while its engine starts and what its logger writes go to ``<run folder>/vllm.log`` (or the
backend's ``log_file``), and a failure becomes a one-line
:class:`~aries_lit.core.errors.EngineError` naming that file and the first error vLLM logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from aries_lit.core.errors import EngineError

#: The engine log's name inside the run folder.
ENGINE_LOG_NAME = "vllm.log"

# an exception line in vLLM's log, after its "(Worker pid=1) ERROR 11-30 14:27:27 [file.py:12] " prefix
_PYDANTIC_TAIL = re.compile(r"\s*\[type=.*\]$")
_ERROR_LINE = re.compile(r"(?:^|\] )((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)\b: .*\S)\s*$")


def _last_line(err: BaseException, width: int = 400) -> str:
    """``Type: last line of the message`` of an exception, on one line of at most ~``width`` characters.

    Pydantic's trailers (vLLM validates its configs with pydantic) are left out: the
    ``For further information visit ...`` line and the ``[type=..., input_value=...]`` tail.
    """
    lines = [x.strip() for x in str(err).splitlines()]
    lines = [x for x in lines if x and not x.startswith("For further information visit ")]
    if not lines:
        return type(err).__name__
    text = _PYDANTIC_TAIL.sub("", lines[-1])
    if len(text) > width:
        text = text[: width - 3] + "..."
    return f"{type(err).__name__}: {text}"


class EngineLog:
    """vLLM's output kept in one file (or left on the console when ``path`` is None).

    :meth:`engine_start` points file descriptors 1 and 2 at the file while the engine starts,
    so everything printed meanwhile, and all the output of the engine processes vLLM spawns
    then (they inherit those descriptors), tracebacks included, goes there; after that
    :meth:`capture_logger` sends this process's ``vllm`` logger there too, so vLLM's messages
    stay off the console while the backend lives (its progress bar still shows). :meth:`failure`
    turns an exception into a one-line :class:`EngineError` naming the file and the first error
    the engine logged.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._handler: logging.Handler | None = None
        self._saved: tuple[list[logging.Handler], bool] | None = None

    def open(self, title: str) -> None:
        """Start (or continue) the file with a header line."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"==== aries_lit {datetime.now().isoformat(timespec='seconds')}: {title} ====\n")

    def capture_logger(self) -> None:
        """Route the ``vllm`` logger of this process to the file (until :meth:`close`).

        Call it after the engine started: ``vllm.LLM`` reconfigures that logger while it starts.
        """
        if self.path is None or self._handler is not None:
            return
        logger = logging.getLogger("vllm")
        self._saved = (list(logger.handlers), logger.propagate)
        self._handler = logging.FileHandler(self.path, encoding="utf-8")
        fmt = "%(levelname)s %(asctime)s [%(filename)s:%(lineno)d] %(message)s"
        self._handler.setFormatter(logging.Formatter(fmt))
        for handler in self._saved[0]:
            logger.removeHandler(handler)
        logger.addHandler(self._handler)
        logger.propagate = False

    def size(self) -> int:
        """The file's current size (where the output of the next step starts)."""
        return self.path.stat().st_size if self.path is not None and self.path.exists() else 0

    @contextlib.contextmanager
    def engine_start(self) -> Iterator[None]:
        """Send this process's stdout/stderr (and so the engine processes started now) to the file."""
        if self.path is None:
            yield
            return
        sys.stdout.flush()
        sys.stderr.flush()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for x in (*saved, fd):
                os.close(x)

    def first_error(self, start: int) -> str | None:
        """The first exception line the engine wrote to the file after offset ``start``."""
        if self.path is None or not self.path.exists():
            return None
        with self.path.open("rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
        for line in text.splitlines():
            match = _ERROR_LINE.search(line)
            if match:
                return match.group(1)
        return None

    def failure(self, what: str, err: BaseException, start: int) -> EngineError:
        """A one-line :class:`EngineError` for ``err`` (raised ``what``); the traceback goes to the file."""
        line = _last_line(err)
        cause = self.first_error(start)
        if self.path is None:
            where = "vLLM's log is above (give the backend a log_file to keep it in a file)"
        else:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(f"aries_lit: vLLM failed {what}:\n{''.join(traceback.format_exception(err))}")
            where = f"full log: {self.path}"
        if cause and cause not in line:
            line += f" (first error in the log: {cause[:300]})"
        return EngineError(f"vLLM failed {what}: {line}; {where}")

    def close(self) -> None:
        """Give the ``vllm`` logger its own handlers back."""
        if self._handler is None or self._saved is None:
            return
        logger = logging.getLogger("vllm")
        logger.removeHandler(self._handler)
        self._handler.close()
        handlers, propagate = self._saved
        for handler in handlers:
            logger.addHandler(handler)
        logger.propagate = propagate
        self._handler = self._saved = None


__all__ = ["ENGINE_LOG_NAME", "EngineLog"]
