"""benchmarks/loop_iteration.py's log reading: the summary's ratios and the README's results table,
on the committed smoke-run log (and on a log whose last run was killed before it measured anything)."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOG = REPO / "benchmarks" / "results" / "loop_iteration-2026-12-04-tiny.json"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("loop_iteration", REPO / "benchmarks" / "loop_iteration.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["loop_iteration"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def log() -> dict:
    return json.loads(LOG.read_text())


def test_summary_ratios_are_trl_seconds_over_ours(bench, log):
    out = bench.summary(log)
    trl, ours = log["runs"]["trl/iterative_dpo"], log["runs"]["ours/iterative_dpo"]
    for phase in bench.PHASES:
        expected = round(trl["phases"][phase]["seconds"] / ours["phases"][phase]["seconds"], 2)
        assert out["speedup_ours_vs_trl"][f"{phase}_s"] == expected
    assert out["speedup_ours_vs_trl"]["iteration_s"] == round(
        trl["phase_seconds_sum"] / ours["phase_seconds_sum"], 2
    )
    assert out["ours/aries"]["pairs"] == log["runs"]["ours/aries"]["phases"]["select"]["pairs"]


def test_the_table_has_one_row_per_run_and_names_the_machine(bench, log):
    table = bench.markdown_table(log).splitlines()
    assert table[0].startswith(f"{log['machine']['cpu_model']}, {log['machine']['nproc']} cores")
    assert f"fp32 {log['machine']['matmul_fp32_gflops']} GFLOP/s" in table[0]
    rows = [line for line in table if line.startswith("| ") and "/" in line.split("|")[1]]
    assert [r.split("|")[1].strip() for r in rows] == list(log["runs"])
    aries = log["runs"]["ours/aries"]
    assert f"| {aries['phases']['train']['seconds']} ({aries['phases']['train']['pairs']}," in rows[2]
    assert table[-1].startswith("TRL seconds / ours (Iterative DPO): collect_s ")


def test_a_killed_run_renders_as_dashes_and_has_no_ratio(bench, log):
    killed = copy.deepcopy(log)
    killed.pop("summary")
    killed["runs"]["ours/iterative_dpo"] = {"exit_code": -9, "wall_seconds": 12.0}
    table = bench.markdown_table(killed)
    assert "| ours/iterative_dpo | - (-) | - | - (-, -, -) | - | - | - |" in table
    assert "TRL seconds / ours" not in table


def test_table_option_prints_a_log(bench, capsys):
    assert bench.main(["--table", str(LOG)]) == 0
    assert "| trl/iterative_dpo |" in capsys.readouterr().out


def test_variants_plan_one_named_run_per_loop_and_variant(bench):
    runs = bench.plan_runs("both", "iterative_dpo,aries", "vllm/fp32,transformers/auto", "vllm", "fp32")
    assert [r.name for r in runs] == [
        "trl/iterative_dpo",
        "ours/iterative_dpo@vllm-fp32",
        "ours/iterative_dpo@transformers-auto",
        "ours/aries@vllm-fp32",
        "ours/aries@transformers-auto",
    ]
    assert (runs[2].backend, runs[2].precision) == ("transformers", "auto")
    plain = bench.plan_runs("ours", "aries", None, "transformers", "auto")
    assert [(r.name, r.backend, r.precision) for r in plain] == [("ours/aries", "transformers", "auto")]


@pytest.mark.parametrize(
    ("loops", "variants", "message"),
    [("aries", "vllm", "'vllm' is not BACKEND/PRECISION"), ("sft", None, "unknown loop 'sft'")],
)
def test_bad_runs_are_one_line(bench, loops, variants, message):
    with pytest.raises(ValueError, match=message):
        bench.plan_runs("ours", loops, variants, "vllm", "fp32")


def test_variants_are_timed_against_their_loops_first_variant(bench, log):
    varied = copy.deepcopy(log)
    varied.pop("summary")
    aries = varied["runs"].pop("ours/aries")
    slow = copy.deepcopy(aries)
    for phase in slow["phases"].values():
        phase["seconds"] *= 2
    slow["phase_seconds_sum"] *= 2
    varied["runs"] = {"ours/aries@vllm-fp32": aries, "ours/aries@transformers-fp32": slow}
    varied["settings"]["variants"] = "vllm/fp32,transformers/fp32"
    out = bench.summary(varied)
    assert out["variant_speedup"] == {
        "ours/aries@transformers-fp32": {k: 0.5 for k in [f"{p}_s" for p in bench.PHASES] + ["iteration_s"]}
    }
    table = bench.markdown_table(varied)
    assert "ours: variants vllm/fp32,transformers/fp32." in table.splitlines()[0]
    assert "ours/aries@vllm-fp32 seconds / ours/aries@transformers-fp32: collect_s 0.5x" in table
