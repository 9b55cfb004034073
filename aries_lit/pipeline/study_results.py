"""The study's result files (``<results_dir>/<arm>/seed<k>/<NN>-<stage>.json``): reading and
checking them, and grouping them by arm and stage, for the report and for reusing a recorded
evaluation."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from aries_lit.core.errors import FileContentError

#: where the study writes its result files under ``results_dir``: ``<arm>/seed<k>/<NN>-<stage>.json``
RESULT_FILES = "*/seed*/*.json"


def read_result(path: Path) -> dict[str, Any]:
    """One result file, checked for the fields every result has (errors name the file and field)."""
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise FileContentError(f"{path}: not valid JSON ({err})") from None
    for key in ("arm", "seed", "index", "stage", "key", "tasks"):
        if key not in record:
            raise FileContentError(f"{path}: field '{key}' is missing")
    return record


def load_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every result file under ``results_dir`` (sorted by arm, seed, stage index)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results folder (run the study first)")
    out = [read_result(path) for path in sorted(root.glob(RESULT_FILES))]
    if not out:
        raise FileNotFoundError(f"{root}: no result files (<arm>/seed<k>/<NN>-<stage>.json)")
    return sorted(out, key=lambda r: (r["arm"], r["seed"], r["index"]))


def _groups(results: list[dict[str, Any]]) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """``{arm: {stage index: [records over seeds]}}`` in file order."""
    out: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        out[r["arm"]][r["index"]].append(r)
    return out


def _num_turns(records: list[dict[str, Any]], task: str) -> int:
    items = records[0]["tasks"][task].get("items") or {}
    return len(next(iter(items.values()))) if items else 0


def _final_index(stages: dict[int, list[dict[str, Any]]], task: str) -> int | None:
    """The index of an arm's last stage evaluated on ``task`` (stages may go unevaluated)."""
    evaluated = [i for i, records in stages.items() if "items" in records[0]["tasks"].get(task, {})]
    return max(evaluated) if evaluated else None


__all__ = ["RESULT_FILES", "load_results", "read_result"]
