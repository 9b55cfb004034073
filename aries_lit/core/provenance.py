"""Which reward models selected a model's training data.

``aries-lit select`` records the resolved path of the reward model that selected a pairs file in
``selection_stats.json`` beside it. Every Hugging Face export of ``fit`` writes
``aries_lit_provenance.json`` into the exported folder: the model it started from, its data
files, and ``data_selected_by``: the reward models recorded beside those data files plus those of
the starting model's own provenance (so the list follows a model through the iterations).
``evaluate`` reads it to warn when its judge is one of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aries_lit.core.io import write_json_atomic
from aries_lit.core.model_paths import resolve_model_path

PROVENANCE_FILE = "aries_lit_provenance.json"
SELECTION_STATS_FILE = "selection_stats.json"


def _data_path(source: str) -> Path | None:
    from aries_lit.assets import resolve_data_path

    try:
        path = Path(resolve_data_path(str(source))).expanduser()
    except FileNotFoundError:
        return None
    return path.resolve() if path.is_file() else None


def selection_stats(source: str) -> dict[str, Any] | None:
    """The ``selection_stats.json`` that ``aries-lit select`` wrote beside a pairs file (None when
    there is none, or when it belongs to another pairs file of the folder)."""
    path = _data_path(source)
    if path is None:
        return None
    stats_path = path.with_name(SELECTION_STATS_FILE)
    try:
        stats = json.loads(stats_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stats, dict) or stats.get("pairs_file") not in (None, str(path)):
        return None
    return stats


def data_selected_by(source: str) -> list[str]:
    """The reward model recorded in the ``selection_stats.json`` beside a pairs file (``[]`` if none,
    or when those statistics belong to another pairs file of the folder)."""
    model = (selection_stats(source) or {}).get("reward_model")
    return [str(model)] if model else []


def read_provenance(model_dir: str | Path) -> dict[str, Any]:
    """The provenance recorded in an exported model folder (``{}`` when there is none)."""
    path = Path(str(model_dir)).expanduser() / PROVENANCE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def training_provenance(model: str, data: list[str]) -> dict[str, Any]:
    """The provenance of a model trained from ``model`` on the ``data`` files."""
    selected: list[str] = []
    for source in data:
        selected += data_selected_by(source)
    selected += read_provenance(model).get("data_selected_by", [])
    return {
        "trained_from": resolve_model_path(model),
        "data": [str(_data_path(s) or s) for s in data],
        "data_selected_by": list(dict.fromkeys(selected)),
    }


def write_provenance(folder: str | Path, module: Any, datamodule: Any) -> None:
    """Write ``aries_lit_provenance.json`` for a model exported by ``fit``."""
    hparams = getattr(datamodule, "hparams", {}) or {}
    data = [str(hparams[k]) for k in ("train", "val") if hparams.get(k)]
    model = getattr(module, "model_name", None)
    if not model:
        return
    record = {"module": type(module).__name__, **training_provenance(str(model), data)}
    write_json_atomic(Path(folder) / PROVENANCE_FILE, record, indent=2)
