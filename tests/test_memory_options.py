"""Memory options by config: LoRA (reference = adapters off), gradient checkpointing, bf16 autocast."""

from __future__ import annotations

from pathlib import Path

import torch

from aries_lit.cli import main

REPO = Path(__file__).resolve().parents[1]
HH = "aries_lit:hh_rlhf/harmless_base_test.jsonl.gz"


def test_lora_gradient_checkpointing_bf16_train_and_export_merged(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "tiny" / "aries_offline.yaml"),
            "--model.init_args.model",
            str(tiny_model_dir),
            "--model.init_args.lora",
            "{r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj], lora_dropout: 0.0}",
            "--model.init_args.gradient_checkpointing",
            "true",
            "--model.init_args.lr",
            "1e-2",
            "--trainer.precision",
            "bf16-mixed",
            "--data.init_args.train",
            HH,
            "--data.init_args.limit",
            "8",
            "--trainer.max_steps",
            "2",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger",
            "false",
        ]
    )
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf_model"))
    assert not any("lora" in k for k in merged.state_dict())
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    q_changed = not torch.equal(
        merged.model.layers[0].self_attn.q_proj.weight, base.model.layers[0].self_attn.q_proj.weight
    )
    k_same = torch.equal(
        merged.model.layers[0].self_attn.k_proj.weight, base.model.layers[0].self_attn.k_proj.weight
    )
    assert q_changed and k_same  # only the adapted projections moved
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert not any(k.startswith("_reference") for k in ckpt["state_dict"])
