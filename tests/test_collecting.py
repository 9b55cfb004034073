"""``CollectingDataModule``: a fit that collects its own pairs (generate + select) first, and takes
every ``PreferenceDataModule`` option but ``train``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aries_lit.core.errors import SettingsError
from aries_lit.pipeline.collecting import CollectingDataModule

REPO = Path(__file__).resolve().parents[1]
GENERATOR = {
    "class_path": "sequential_refinement",
    "init_args": {"num_candidates": 2, "temperature": 0.7, "max_new_tokens": 6,
                  "backend": {"class_path": "transformers", "init_args": {"dtype": "float32"}}},
}  # fmt: skip


def test_a_collecting_fit_trains_on_the_pairs_it_collected_with_inherited_options(tiny_model_dir, tmp_path):
    data = {
        "class_path": "aries_lit.pipeline.collecting.CollectingDataModule",
        "init_args": {
            "prompts": {"class_path": "arithmetic", "init_args": {"split": "train", "count": 6, "seed": 1}},
            "generator": GENERATOR,
            "selector": {"class_path": "rule", "init_args": {"skip_truncated": False}},
            # PreferenceDataModule's own options, which CollectingDataModule once refused
            "format": "trl", "on_error": "raise", "val_fraction": 0.34, "num_workers": 0,
            "limit": None, "batch_size": 2,
        },
    }  # fmt: skip
    overlay = tmp_path / "collecting.yaml"
    overlay.write_text(yaml.safe_dump({"data": data}))
    cmd = [
        sys.executable, "-m", "aries_lit.cli", "fit", "--config", str(REPO / "configs/tiny/dpo_offline.yaml"),
        "--config", str(overlay), "--model.init_args.model", str(tiny_model_dir), "--trainer.max_steps", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run"),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    pairs = (tmp_path / "run" / "collect" / "pairs.jsonl").read_text().splitlines()
    assert len(pairs) == 6
    stats = json.loads((tmp_path / "run" / "data_stats.json").read_text())
    # val_fraction: some of the collected pairs validate, the rest train
    assert stats["val/records"] > 0 and stats["train/records"] + stats["val/records"] == 6, stats
    assert (tmp_path / "run" / "hf_model" / "model.safetensors").exists()


def test_train_is_refused_in_one_line():
    with pytest.raises(SettingsError, match="CollectingDataModule: 'train' is the pairs file it collects"):
        CollectingDataModule(prompts="arithmetic", train="pairs.jsonl")
