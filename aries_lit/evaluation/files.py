"""Files an evaluation writes besides its reports: strict JSON and AlpacaEval's
``model_outputs.json``."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aries_lit.core.io import write_json_atomic

__all__ = ["alpaca_model_outputs", "sanitize", "write_alpaca_outputs", "write_json"]


def sanitize(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become ``None``, numpy scalars/arrays become Python values."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy
        return sanitize(obj.tolist())
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)  # paths, backend instances in a config, ...


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``sanitize(obj)`` as strict JSON, atomically (:func:`aries_lit.core.io.write_json_atomic`)."""
    return write_json_atomic(
        path, sanitize(obj), indent=indent, trailing_newline=True, ensure_ascii=False, allow_nan=False
    )


def alpaca_model_outputs(
    records: Sequence[Mapping[str, Any]], generator: str, turn: int
) -> list[dict[str, str]]:
    """AlpacaEval's ``model_outputs.json`` rows: ``{"instruction", "output", "generator", "dataset"}``."""
    return [
        {
            "instruction": str(r["prompt"]),
            "output": str(r["turns"][turn]["text"]),
            "generator": generator,
            "dataset": str(r.get("dataset") or "alpaca_eval"),
        }
        for r in records
    ]


def write_alpaca_outputs(
    task_dir: Path, checkpoint: str, records: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """``model_outputs_direct.json`` (turn 0) and ``model_outputs_sr.json`` (last turn) in ``task_dir``."""
    paths = {}
    for label, turn in (("direct", 0), ("sr", -1)):
        rows = alpaca_model_outputs(records, f"{checkpoint}-{label}", turn)
        paths[label] = str(write_json(task_dir / f"model_outputs_{label}.json", rows))
    return paths
