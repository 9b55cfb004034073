"""The counts a DataModule's ``setup`` reports: one log line, and ``data_stats.json`` in the run's root."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_info

from aries_lit.core.io import write_json_atomic

DATA_STATS_FILE = "data_stats.json"


def report_data_stats(trainer: Any, stats: Mapping[str, int], label: str = "data") -> None:
    """Log ``[aries-lit] <label>: k=v, ...`` (sorted) and, on the main process of a run, write the
    counts to ``<trainer.default_root_dir>/data_stats.json`` (atomically)."""
    rank_zero_info(f"[aries-lit] {label}: {', '.join(f'{k}={v}' for k, v in sorted(stats.items()))}")
    if trainer is not None and trainer.is_global_zero:
        out = Path(trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / DATA_STATS_FILE, dict(stats), indent=2)
