"""Free-space checks before a step writes, and ``ENOSPC`` turned into one line.

:func:`require_free_space` compares ``shutil.disk_usage`` of a folder with an estimate of what is
about to be written (:func:`training_bytes` for ``fit``: the checkpoint with its optimizer state
plus the exported model) and raises :class:`~aries_lit.core.errors.DiskSpaceError` naming the folder,
the need and the free space. :func:`disk_full_message` words an ``OSError(ENOSPC)`` raised in the
middle of a write. Bottom layer: imports nothing from aries_lit but :mod:`aries_lit.core.errors`.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from aries_lit.core.errors import DiskSpaceError

__all__ = ["disk_full_message", "free_bytes", "human", "require_free_space", "training_bytes"]

#: Headroom over an estimate: logs, tokenizer files, the previous checkpoint kept while the new one
#: is written (atomic replacement holds both for a moment).
SLACK = 1.1


def human(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def free_bytes(folder: str | os.PathLike) -> int:
    """Free bytes on the filesystem of ``folder`` (its nearest existing parent)."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def training_bytes(parameters: int, trainable: int, weight_bytes: int = 4, export: bool = True) -> int:
    """What one ``fit`` writes at most at once: a Lightning checkpoint (all weights, and Adam's two
    fp32 moments of the trainable ones), a second copy while it is replaced atomically, and the
    exported Hugging Face model (weights only)."""
    checkpoint = parameters * weight_bytes + trainable * 8
    return int(2 * checkpoint + (parameters * weight_bytes if export else 0))


def require_free_space(folder: str | os.PathLike, needed: int, what: str) -> None:
    """Raise :class:`DiskSpaceError` unless ``folder``'s filesystem has ``needed`` bytes (plus
    :data:`SLACK`) free. ``ARIES_LIT_SKIP_SPACE_CHECK=1`` turns the check off."""
    if os.environ.get("ARIES_LIT_SKIP_SPACE_CHECK"):
        return
    free = free_bytes(folder)
    if free < needed * SLACK:
        raise DiskSpaceError(
            errno.ENOSPC,
            f"{folder}: {what} needs about {human(needed * SLACK)} free, {human(free)} is free; "
            "free some space (or set ARIES_LIT_SKIP_SPACE_CHECK=1) and rerun",
        )


def disk_full_message(err: OSError) -> str | None:
    """One line for an ``OSError`` that is a full disk (``ENOSPC``/``EDQUOT``), else ``None``."""
    if isinstance(err, DiskSpaceError) and err.strerror:
        return err.strerror
    if getattr(err, "errno", None) not in (errno.ENOSPC, errno.EDQUOT):
        return None
    where = f" writing {err.filename}" if getattr(err, "filename", None) else ""
    return (
        f"no space left on the device{where}; finished work is kept: free some space and rerun the "
        "same command, it resumes"
    )
