"""Test-only Lightning callbacks, importable by subprocess runs (PYTHONPATH=tests)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

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
