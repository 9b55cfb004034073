"""The repository stands alone: a copy of it in a folder with nothing beside it (no ``../shared``)
runs the CLI (``prepare-model``, ``fit``, ``generate``, ``select``, ``evaluate``) on the data the
package ships, with the copy's own code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: what a reader of the repository may not depend on
OUTSIDE = "../shared"


def _repo_files() -> list[str]:
    """The files a clone has: tracked plus untracked-but-not-ignored (the working tree as committed)."""
    try:
        cmd = ["git", "ls-files", "-co", "--exclude-standard"]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [line for line in out.stdout.splitlines() if line and (REPO / line).is_file()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """``<tmp>/alone/repo``: a copy of the repository whose parent holds nothing else."""
    root = tmp_path_factory.mktemp("alone") / "repo"
    for name in _repo_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    assert sorted(p.name for p in root.parent.iterdir()) == ["repo"]
    return root


def _run(clone: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(clone), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-m", "aries_lit.cli", *args], cwd=clone, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, f"aries-lit {args[0]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def test_nothing_reads_outside_the_repository():
    """No code, config, script, test, benchmark, example or doc names the folder beside the repository."""
    offenders = []
    for name in _repo_files():
        if not name.endswith((".py", ".yaml", ".yml", ".sh", ".md", ".toml", ".cfg", ".txt")):
            continue
        if name == "tests/test_standalone.py":
            continue
        text = (REPO / name).read_text(encoding="utf-8", errors="replace")
        offenders += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1) if OUTSIDE in line]
    assert not offenders, f"these lines name {OUTSIDE}: {offenders}"


@pytest.mark.slow
def test_cli_runs_from_a_lone_copy(clone):
    env = dict(os.environ, PYTHONPATH=str(clone))
    where = subprocess.run(
        [sys.executable, "-c", "import aries_lit; print(aries_lit.__file__)"],
        cwd=clone, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).resolve().is_relative_to(clone.resolve()), where

    _run(clone, "prepare-model", "--source", "tiny", "--out", "runs/tiny")
    _run(
        clone, "fit", "--config", "configs/tiny/aries_offline.yaml",
        "--model.init_args.model", "runs/tiny", "--data.init_args.limit", "8",
        "--trainer.max_steps", "2", "--trainer.default_root_dir", "runs/fit",
        "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
    )  # fmt: skip
    assert (clone / "runs" / "fit" / "hf_model" / "model.safetensors").exists()
    stats = json.loads((clone / "runs" / "fit" / "data_stats.json").read_text())
    assert stats["train/records"] == 8

    prompts = json.dumps({"class_path": "gsm8k", "init_args": {"split": "train", "limit": 2}})
    generator = {
        "class_path": "sequential_refinement",
        "init_args": {"num_candidates": 2, "max_new_tokens": 8},
    }
    _run(
        clone, "generate", "--model", "runs/fit/hf_model", "--prompts", prompts,
        "--generator", json.dumps(generator),
        "--out_dir", "runs/gen", "--progress", "false",
    )  # fmt: skip
    rows = [json.loads(x) for x in (clone / "runs" / "gen" / "candidates.jsonl").read_text().splitlines()]
    assert sorted({r["id"] for r in rows}) == ["gsm8k-train-0", "gsm8k-train-1"]
    _run(clone, "select", "--candidates", "runs/gen", "--prompts", prompts, "--selector", "rule")
    assert (clone / "runs" / "gen" / "selection_stats.json").exists()

    tasks = json.dumps(
        [
            {"class_path": "gsm8k", "init_args": {"limit": 2}},
            {"class_path": "alpaca_eval", "init_args": {"limit": 2}},
        ]
    )
    out = _run(
        clone, "evaluate", "--checkpoints", json.dumps(["runs/fit/hf_model"]), "--tasks", tasks,
        "--out_dir", "runs/eval", "--num_refinements", "1", "--max_new_tokens", "8", "--progress", "false",
    )  # fmt: skip
    assert "gsm8k Direct" in out.stdout
    report = json.loads((clone / "runs" / "eval" / "report.json").read_text())
    records = next(iter(report["results"].values()))["tasks"]["gsm8k"]["records"]
    assert len(records) == 2 and all(r["gold"] for r in records)
