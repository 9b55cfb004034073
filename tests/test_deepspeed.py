"""DeepSpeed ZeRO-2 and ZeRO-3 through ``aries-lit fit`` (needs CUDA and ``deepspeed``; skipped elsewhere:
Lightning refuses DeepSpeed on CPU, where CI covers DDP with gloo instead)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
HH = "aries_lit:hh_rlhf/harmless_base_test.jsonl.gz"

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("deepspeed") is None,
    reason="DeepSpeed needs CUDA and the deepspeed package (pip install -e '.[deepspeed]')",
)


@pytest.mark.parametrize("overlay", ["zero2", "zero3", "zero2_offload", "zero3_offload"])
def test_deepspeed_fit_trains_and_exports_whole_weights(overlay, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    cmd = [
        sys.executable, "-m", "aries_lit.cli", "fit",
        "--config", str(REPO / "configs" / "tiny" / "aries_offline.yaml"),
        "--config", str(REPO / "configs" / "strategy" / f"{overlay}.yaml"),
        "--model.init_args.model", str(tiny_model_dir), "--model.init_args.dtype", "float32",
        "--data.init_args.train", HH, "--data.init_args.limit", "16",
        "--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.max_steps", "3",
        "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    trained = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf_model"))
    before = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    for (name, a), b in zip(trained.state_dict().items(), before.state_dict().values()):
        assert a.shape == b.shape and a.numel() > 0, name  # ZeRO-3 shards gathered before saving
    pairs = zip(trained.state_dict().values(), before.state_dict().values())
    assert any(not torch.equal(a, b) for a, b in pairs), "training did not change the weights"
    stats = json.loads((tmp_path / "data_stats.json").read_text())
    assert stats["train/records"] == 16
