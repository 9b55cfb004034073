"""Small public data sets shipped inside the package (so a clone or a ``pip install`` has them).

A path written ``aries_lit:<relative path>`` anywhere a data file is read (configs, prompt
sources, ``--data.init_args.train``) names a file in this folder, whatever the current directory::

    train: aries_lit:hh_rlhf/harmless_base_test.jsonl.gz
    prompts: {class_path: file, init_args: {path: "aries_lit:gsm8k/train.jsonl.gz"}}

What is here, where it comes from and its license: ``README.md`` beside this file.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the folder that holds the shipped data sets
ASSETS_DIR = Path(__file__).resolve().parent
#: the prefix that names a shipped file in a config or on the command line
PREFIX = "aries_lit:"


def asset_path(relative: str) -> Path:
    """The absolute path of a shipped file, e.g. ``asset_path("gsm8k/test.jsonl.gz")``.

    Raises ``FileNotFoundError`` naming the shipped files when there is no such file."""
    path = (ASSETS_DIR / relative).resolve()
    if ASSETS_DIR not in path.parents and path != ASSETS_DIR:
        raise FileNotFoundError(f"{PREFIX}{relative}: outside the shipped data folder")
    if not path.exists():
        known = ", ".join(f"{PREFIX}{name}" for name in shipped_files())
        raise FileNotFoundError(f"{PREFIX}{relative}: no such shipped file; shipped: {known}")
    return path


def shipped_files() -> list[str]:
    """Relative paths of the shipped data files (licenses and notes left out)."""
    return sorted(
        str(p.relative_to(ASSETS_DIR))
        for p in ASSETS_DIR.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".md", ".pyc") and p.name != "LICENSE"
    )


def resolve_data_path(value: str | os.PathLike) -> str:
    """``aries_lit:<relative>`` -> the shipped file's absolute path; anything else unchanged."""
    text = os.fspath(value)
    if text.startswith(PREFIX):
        return str(asset_path(text[len(PREFIX) :]))
    return text


__all__ = ["ASSETS_DIR", "PREFIX", "asset_path", "resolve_data_path", "shipped_files"]
