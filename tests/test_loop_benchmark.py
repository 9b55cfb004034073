"""Smoke test of ``benchmarks/loop_iteration.py`` (one collect -> select -> train -> evaluate iteration).

Only the *ours* side, Iterative DPO loop, at ``--tiny`` size with the ``transformers`` backend: a
vLLM engine start alone takes 30-100 s on a 2-core CPU and the full ``--tiny`` run (TRL side
included, four engine starts per loop pair) several minutes, too long for the test suite. The
vLLM/TRL side is checked by running ``python benchmarks/loop_iteration.py --tiny`` by hand
(benchmarks/README.md, "One loop iteration"). Skipped when vllm or trl is not importable, as the
issue's benchmark needs both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "loop_iteration.py"


def test_loop_benchmark_tiny_ours(tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    pytest.importorskip("trl")
    from aries_lit.models import smollm2_path

    try:
        smollm2_path()
    except FileNotFoundError as err:
        pytest.skip(f"SmolLM2-135M-Instruct is not available: {err}")
    out = tmp_path / "loop.json"
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--tiny",
        "--side",
        "ours",
        "--loops",
        "iterative_dpo",
        "--backend",
        "transformers",
        "--no-probe",
        "--max-operand",  # 1-digit sums: SmolLM2 gets ~44% right, so 12 prompts give pairs
        "9",
        "--eval-prompts",
        "4",
        "--out",
        str(out),
        "--work-dir",
        str(tmp_path / "work"),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = json.loads(out.read_text())
    assert log["machine"]["cpu_model"]
    assert log["machine"]["torch_threads"] >= 1
    run = log["runs"]["ours/iterative_dpo"]
    assert run["exit_code"] == 0 and "error" not in run
    phases = run["phases"]
    assert set(phases) == {"collect", "select", "train", "evaluate"}
    assert all(p["seconds"] > 0 for p in phases.values())
    assert phases["collect"]["generated_tokens"] > 0 and phases["collect"]["tokens_per_s"] > 0
    assert phases["select"]["pairs"] > 0
    assert phases["train"]["train_tokens_per_s"] > 0 and phases["train"]["peak_rss_mb"] > 0
    assert phases["evaluate"]["generated_tokens"] > 0
    assert 0.0 <= phases["evaluate"]["direct_score"] <= 1.0
    assert log["summary"]["ours/iterative_dpo"]["iteration_s"] > 0
