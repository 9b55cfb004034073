"""Test-only helpers: Lightning callbacks importable by subprocess runs (PYTHONPATH=tests), and a
reader for the shipped gzipped data files."""

from __future__ import annotations

import gzip
import json
import os
import signal
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback


class KillAtStep(Callback):
    """SIGKILL this process right after optimizer step ``step`` (simulates a crash)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class RecordBatches(Callback):
    """Append the ids of every trained batch and the logged step metrics to a JSONL file per rank."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.endswith("_step")}
        out = Path(f"{self.path}.rank{trainer.global_rank}")
        with out.open("a") as f:
            f.write(json.dumps({"step": trainer.global_step, "ids": batch["ids"], "metrics": metrics}) + "\n")


def read_json_gz(path: Path) -> Any:
    """A gzipped JSON file, or a list of records for a gzipped JSON-lines file."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        if path.name.endswith(".jsonl.gz"):
            return [json.loads(line) for line in fh if line.strip()]
        return json.load(fh)
