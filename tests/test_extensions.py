"""User code registers selectors and generators without editing aries_lit (CONTRIBUTING.md's example)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "custom_selector"


def test_custom_generator_and_selector_by_class_path_from_the_cli(tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": f"What is {i} + 1?"}) + "\n" for i in range(3))
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLE), str(REPO)]))
    gen = subprocess.run(
        [
            sys.executable,
            "-m",
            "aries_lit.cli",
            "generate",
            "--model",
            str(tiny_model_dir),
            "--prompts",
            str(prompts),
            "--generator",
            "{class_path: my_selectors.GreedyThenSampled, init_args: {num_candidates: 3, max_new_tokens: 8}}",
            "--out_dir",
            str(tmp_path / "cands"),
            "--progress",
            "false",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert gen.returncode == 0, gen.stderr[-2000:]
    sel = subprocess.run(
        [
            sys.executable,
            "-m",
            "aries_lit.cli",
            "select",
            "--candidates",
            str(tmp_path / "cands"),
            "--prompts",
            str(prompts),
            "--selector",
            "{class_path: my_selectors.ShortestAnswerSelector, init_args: {skip_truncated: false}}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert sel.returncode == 0, sel.stderr[-2000:]
    cands = [json.loads(x) for x in (tmp_path / "cands" / "candidates.jsonl").read_text().splitlines()]
    assert {c["generator"] for c in cands} == {"greedy_then_sampled"} and len(cands) == 9
    pairs = [json.loads(x) for x in (tmp_path / "cands" / "pairs.jsonl").read_text().splitlines()]
    for pair in pairs:
        assert len(pair["chosen"]) <= len(pair["rejected"])
    stats = json.loads((tmp_path / "cands" / "selection_stats.json").read_text())
    assert stats["groups"] == 3 and stats["pairs"] == len(pairs)
