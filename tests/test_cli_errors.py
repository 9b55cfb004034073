"""Bad user input ends with one clear line naming the file, record and field, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ARIES_LIT_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "aries_lit.cli", *args], cwd=REPO, capture_output=True, text=True, env=env
    )


def test_fit_on_a_bad_record_names_file_record_and_field(tiny_model_dir, tmp_path):
    data = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": "Q1", "chosen": "A", "rejected": "B"},
        {"prompt": "Q2", "chosen": "  ", "rejected": "B"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _run(
        [
            "fit",
            "--config",
            "configs/tiny/dpo_offline.yaml",
            "--model.init_args.model",
            str(tiny_model_dir),
            "--data.init_args.train",
            str(data),
            "--data.init_args.format",
            "trl",
            "--data.init_args.on_error",
            "raise",
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
            "--trainer.logger",
            "false",
        ]
    )
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("aries-lit: error:")
        and "pairs.jsonl, record 2, field 'chosen': empty response" in last
    )
    assert "Traceback" not in out.stderr


def test_unknown_selector_name_is_one_line(tmp_path):
    out = _run(
        [
            "select",
            "--candidates",
            str(tmp_path),
            "--prompts",
            "{name: arithmetic, count: 2}",
            "--selector",
            "nosuch",
        ]
    )
    assert out.returncode == 1
    assert "unknown selector 'nosuch'; known:" in out.stderr and "Traceback" not in out.stderr


def test_iterate_with_a_bad_stage_names_the_config_and_field(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("run_dir: x\nbase_model: y\nstages:\n  - name: a\n    fit: {}\n  - fit: {}\n")
    out = _run(["iterate", "--config", str(config)])
    assert out.returncode != 0
    assert f"{config}: stages[1]: field 'name' is missing" in out.stderr


def test_generate_rerun_with_other_settings_is_one_line(tiny_model_dir, tmp_path):
    prompts = tmp_path / "p.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"What is {i} + 1?"} for i in range(2)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def generate(temperature: float) -> subprocess.CompletedProcess:
        spec = {"name": "sequential_refinement", "num_candidates": 1, "max_new_tokens": 4}
        spec["temperature"] = temperature
        return _run(
            [
                "generate", "--model", str(tiny_model_dir),
                "--prompts", json.dumps({"name": "file", "path": str(prompts)}),
                "--generator", json.dumps(spec), "--out_dir", str(tmp_path / "out"), "--progress", "false",
            ]
        )  # fmt: skip

    assert generate(0.0).returncode == 0
    before = (tmp_path / "out" / "candidates.jsonl").read_bytes()
    out = generate(0.5)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("aries-lit: error:") and "temperature: 0.0 -> 0.5" in last and "out" in last
    assert (tmp_path / "out" / "candidates.jsonl").read_bytes() == before  # nothing lost or added
