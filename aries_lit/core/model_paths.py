"""Model-path resolution: how a model named in a config is recorded (provenance, reward-model
checks). Bottom layer: imports nothing from aries_lit, and no torch (``aries_lit.models``
re-exports :func:`resolve_model_path` beside the loaders)."""

from __future__ import annotations

from pathlib import Path


def resolve_model_path(name_or_path: str) -> str:
    """The absolute, symlink-free path of a local model folder; a hub name as it is."""
    path = Path(str(name_or_path)).expanduser()
    return str(path.resolve()) if path.exists() else str(name_or_path)


__all__ = ["resolve_model_path"]
