"""Loggers by config: the CSV log is always written (whatever is installed); more loggers by list."""

from __future__ import annotations

from pathlib import Path

import pytest

from aries_lit.cli import main

REPO = Path(__file__).resolve().parents[1]


def _fit(model: Path, root: Path, *extra: str) -> None:
    main(["fit", "--config", str(REPO / "configs" / "tiny" / "dpo_offline.yaml"),
          "--model.init_args.model", str(model), "--trainer.max_steps", "2",
          "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
          *extra])  # fmt: skip


def test_default_logger_is_csv_even_with_tensorboard_installed(tiny_model_dir, tmp_path):
    pytest.importorskip("tensorboardX", reason="Lightning's default is TensorBoard only when it is installed")
    _fit(tiny_model_dir, tmp_path)
    logs = list((tmp_path / "lightning_logs").rglob("*"))
    assert (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").exists()
    assert not [p for p in logs if p.name.startswith("events.out.tfevents")]


def test_a_list_of_loggers_by_config(tiny_model_dir, tmp_path):
    pytest.importorskip("tensorboardX", reason="TensorBoardLogger needs tensorboard or tensorboardX")
    csv = f"{{class_path: CSVLogger, init_args: {{save_dir: {tmp_path}}}}}"
    tensorboard = f"{{class_path: TensorBoardLogger, init_args: {{save_dir: {tmp_path}, name: tb}}}}"
    loggers = f"[{csv}, {tensorboard}]"
    _fit(tiny_model_dir, tmp_path, "--trainer.logger", loggers)
    assert (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().startswith("epoch,step")
    assert list((tmp_path / "tb").rglob("events.out.tfevents*"))
