"""Atomic file writes: the one place the package writes a file that must survive a kill.

A file written here is either the old one or the complete new one, never a torn mix: the
text goes to a temporary file in the same folder (``<name>.<pid>.tmp``), is flushed and
fsynced, then ``os.replace``-d over the target. Bottom layer: imports nothing from aries_lit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["write_json_atomic", "write_text_atomic"]


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, flush, fsync, ``os.replace``).

    Creates the parent folder if needed and returns ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding=encoding) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(
    path: str | os.PathLike,
    obj: Any,
    indent: int | None = 2,
    *,
    trailing_newline: bool = False,
    **dumps_kwargs: Any,
) -> Path:
    """Write ``json.dumps(obj, indent=indent, **dumps_kwargs)`` to ``path`` atomically.

    ``trailing_newline`` appends ``"\\n"``; ``dumps_kwargs`` go to :func:`json.dumps`
    (``ensure_ascii``, ``default``, ``allow_nan``, ...). The text is serialized before the
    temporary file is opened, so an object that cannot be serialized leaves ``path`` alone.
    """
    text = json.dumps(obj, indent=indent, **dumps_kwargs)
    return write_text_atomic(path, text + "\n" if trailing_newline else text)
