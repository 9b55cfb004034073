"""``aries-lit evaluate``: Direct vs SR on the tiny model, reports, AlpacaEval files, resume, DDP."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
from helpers import read_json_gz

from aries_lit.evaluation.evaluate import (
    Task,
    checkpoint_names,
    evaluate_checkpoints,
    generator_spec,
    parse_tasks,
)
from aries_lit.evaluation.stats import accuracy, summarize, wilson_interval
from aries_lit.generators.backends.base import Backend, Completion
from aries_lit.prompts.sources import load_prompts

REPO = Path(__file__).resolve().parents[1]

ALPACA_KEYS = {"instruction", "output", "generator", "dataset"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- a scripted backend: deterministic answers, no model ------------------------------------


class ScriptedBackend(Backend):
    """Answers "What is a + b?" off by one directly and correctly when refining; for other
    prompts, the first turn repeats ``references[instruction]`` word for word (a tie with the
    reference under any judge) and refinements answer ``"Short."``."""

    def __init__(self, model: str, references: dict[str, str] | None = None) -> None:
        super().__init__(model)
        from aries_lit.models import load_tokenizer

        self._tok = load_tokenizer(model)
        self.references = references or {}

    @property
    def tokenizer(self):
        return self._tok

    def generate(self, contexts, settings):
        out = []
        for context in contexts:
            refining = "EXAMPLE RESPONSE" in context
            match = re.search(r"What is (\d+) \+ (\d+)\?", context)
            if match:
                value = int(match.group(1)) + int(match.group(2))
                text = f"The answer is {value if refining else value + 1}."
            elif refining:
                text = "Short."
            else:
                text = next((ref for ins, ref in self.references.items() if ins in context), "Unknown.")
            out.append(Completion(text=text, prompt_tokens=1, completion_tokens=1, finish_reason="stop"))
        return out


def _sum_file(path: Path, n: int) -> Path:
    rows = [{"id": f"s{i}", "question": f"What is {i} + {2 * i}?", "gold": str(3 * i)} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _alpaca_file(path: Path, n: int) -> tuple[Path, dict[str, str]]:
    rows = [
        {
            "instruction": f"Tell me fact number {i}.",
            "output": f"Fact {i} is interesting. " * (i + 1),
            "generator": "gpt4_1106_preview",
            "dataset": "helpful_base",
        }
        for i in range(n)
    ]
    path.write_text(json.dumps(rows))
    return path, {r["instruction"]: r["output"] for r in rows}


def _scripted(references: dict[str, str] | None = None) -> dict:
    return {
        "class_path": "sequential_refinement",
        "backend": {
            "class_path": f"{__name__}.ScriptedBackend",
            "init_args": {"references": references or {}},
        },
    }


# --- unit tests -----------------------------------------------------------------------------


def test_wilson_and_summaries():
    low, high = wilson_interval(0, 3)
    assert low == 0.0 and high == pytest.approx(0.5615, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    acc = accuracy([True, False, True, True])
    assert acc["mean"] == 0.75 and acc["n"] == 4 and acc["ci"] == "wilson"
    assert (acc["ci_low"], acc["ci_high"]) == pytest.approx(wilson_interval(3, 4))
    s = summarize([1.0, 2.0, 3.0, 4.0], ci="normal")
    assert s["mean"] == 2.5 and s["se"] == pytest.approx(math.sqrt(5 / 3 / 4))
    assert s["ci_low"] == pytest.approx(2.5 - 1.959964 * s["se"], abs=1e-5)
    assert summarize([])["n"] == 0 and math.isnan(summarize([])["mean"])
    with pytest.raises(ValueError, match="0/1"):
        summarize([0.5], ci="wilson")


def test_task_parsing_and_names():
    tasks = parse_tasks(
        [
            "gsm8k",
            {"class_path": "gsm8k", "limit": 5, "offset": 10, "label": "gsm8k-b", "temperature": 0.3},
            {"class_path": "file", "path": "data/mine.jsonl", "answer_field": "gold"},
        ]
    )
    assert [t.label for t in tasks] == ["gsm8k", "gsm8k-b", "mine"]
    assert (
        tasks[1].source == {"class_path": "gsm8k", "limit": 5, "offset": 10} and tasks[1].temperature == 0.3
    )
    with pytest.raises(ValueError, match="distinct 'label'"):
        parse_tasks([{"class_path": "gsm8k"}, {"class_path": "gsm8k", "offset": 5}])
    assert checkpoint_names(["runs/iter1/hf", "runs/iter2/hf"]) == ["iter1-hf", "iter2-hf"]
    assert checkpoint_names(["HuggingFaceTB/SmolLM2-135M-Instruct", "/x/sft"]) == [
        "SmolLM2-135M-Instruct",
        "sft",
    ]
    assert checkpoint_names(["a", "b"], names=["base", "iter 1"]) == ["base", "iter_1"]


def test_generator_spec_defaults_and_overrides():
    task = Task(label="t", source="gsm8k")
    spec = generator_spec(None, task, "verifiable", 4, 256)
    assert spec == {
        "name": "sequential_refinement",
        "temperature": 0.0,
        "max_new_tokens": 256,
        "num_candidates": 4,
    }
    assert generator_spec(None, task, "pairwise", 4, 256)["temperature"] == 0.9
    base = {"class_path": "PS", "init_args": {"backend": "vllm", "temperature": 0.7}}
    spec = generator_spec(base, Task(label="t", source="x", max_new_tokens=32), "verifiable", 2, 256)
    assert spec["name"] == "PS" and spec["backend"] == "vllm" and spec["temperature"] == 0.7
    assert spec["max_new_tokens"] == 32
    spec = generator_spec(base, Task(label="t", source="x", temperature=0.0), "pairwise", 2, 256)
    assert spec["temperature"] == 0.0
    with pytest.raises(ValueError, match="num_refinements"):
        generator_spec({"num_candidates": 3}, task, "verifiable", 4, 256)


def test_the_cli_takes_every_option_of_evaluate_checkpoints(capsys):
    """``aries-lit evaluate`` gets its options from evaluate_checkpoints (all but print_table)."""
    import inspect

    from aries_lit.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    flags = set(re.findall(r"--(\w+)", capsys.readouterr().out))
    options = set(inspect.signature(evaluate_checkpoints).parameters) - {"print_table"}
    assert options <= flags and "print_table" not in flags


def test_bad_checkpoint_and_missing_answers_fail_early(tmp_path, tiny_model_dir):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        evaluate_checkpoints([str(tmp_path / "missing")], tasks=["arithmetic"], out_dir=str(tmp_path / "o"))
    with pytest.raises(ValueError, match="ci must be"):
        evaluate_checkpoints(
            [str(tiny_model_dir)], tasks=["arithmetic"], out_dir=str(tmp_path / "o"), ci="exact"
        )
    with pytest.raises(ValueError, match="se_method"):
        evaluate_checkpoints(
            [str(tiny_model_dir)],
            tasks=["arithmetic"],
            out_dir=str(tmp_path / "o"),
            lc_options={"se_method": "x"},
        )
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"id": "a", "prompt": "hi"}) + "\n")
    with pytest.raises(ValueError, match="has no 'answer' field"):
        evaluate_checkpoints(
            [str(tiny_model_dir)],
            tasks=[{"class_path": "file", "path": str(plain), "kind": "verifiable"}],
            out_dir=str(tmp_path / "o"),
        )
    assert not (tmp_path / "o").exists()


# --- the protocol on a scripted backend: known accuracies and win rates ---------------------


def test_scripted_direct_vs_sr(tmp_path, tiny_model_dir, tiny_reward_model_dir):
    sums = _sum_file(tmp_path / "sums.jsonl", 5)
    alpaca, references = _alpaca_file(tmp_path / "alpaca.json", 4)
    result = evaluate_checkpoints(
        [str(tiny_model_dir)],
        tasks=[
            {"class_path": "file", "path": str(sums), "prompt_field": "question", "answer_field": "gold"},
            {"class_path": "alpaca_eval", "path": str(alpaca)},
        ],
        out_dir=str(tmp_path / "eval"),
        num_refinements=2,
        generator=_scripted(references),
        judge=str(tiny_reward_model_dir),
        names=["m"],
        progress=False,
    )
    sums_metrics = result["checkpoints"]["m"]["tasks"]["sums"]
    acc = sums_metrics["accuracy"]
    assert sums_metrics["kind"] == "verifiable" and sums_metrics["n"] == 5
    assert [c["mean"] for c in acc["curve"]] == [0.0, 1.0, 1.0]
    assert acc["direct"]["mean"] == 0.0 and acc["sr"]["mean"] == 1.0
    assert acc["flips"] == {"wrong_to_right": 5, "right_to_wrong": 0}
    assert acc["delta"]["mean"] == 1.0
    assert (acc["sr"]["ci_low"], acc["sr"]["ci_high"]) == pytest.approx(wilson_interval(5, 5))
    alpaca_metrics = result["checkpoints"]["m"]["tasks"]["alpaca_eval"]
    assert alpaca_metrics["kind"] == "pairwise"
    direct = alpaca_metrics["win_rate"]["direct"]  # the reference answer itself: all ties
    assert direct["win_rate"] == 0.5 and direct["se"] == 0.0 and direct["ties"] == 4
    assert direct["lc_win_rate"] == 0.5 and direct["lc_se"] == 0.0
    sr = alpaca_metrics["win_rate"]["sr"]
    assert sr["ties"] == 0 and sr["wins"] + sr["losses"] == 4
    outputs = json.loads((tmp_path / "eval" / "m" / "alpaca_eval" / "model_outputs_direct.json").read_text())
    assert [o["output"] for o in outputs] == list(references.values())
    assert "| m |" in result["markdown"] and "NOT AlpacaEval 2's official" in result["markdown"]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    records = report["results"]["m"]["tasks"]["sums"]["records"]
    assert records[1]["gold"] == "3"
    assert [t["extracted"] for t in records[1]["turns"]] == ["4", "3", "3"]
    assert [t["correct"] for t in records[1]["turns"]] == [False, True, True]


def test_harmlessness_config_judges_answers_against_the_chosen_reply(
    tmp_path, tiny_model_dir, tiny_reward_model_dir
):
    """configs/eval/hh_harmless_smollm2.yaml's task (HH-RLHF prompts, each with its pair's chosen reply
    as the reference) on the tiny model: a pairwise task judged by the reward model, and the report's
    judge note is the local one, not AlpacaEval's."""
    import yaml

    config = yaml.safe_load((REPO / "configs" / "eval" / "hh_harmless_smollm2.yaml").read_text())
    task = config["tasks"][0]
    task["init_args"]["limit"] = 3
    result = evaluate_checkpoints(
        [str(tiny_model_dir)], tasks=[task], out_dir=str(tmp_path / "eval"), num_refinements=1,
        generator={"class_path": "sequential_refinement", "backend": "transformers", "seed": 0},
        max_new_tokens=8, judge=str(tiny_reward_model_dir), names=["m"], progress=False, plots=False,
    )  # fmt: skip
    metrics = result["checkpoints"]["m"]["tasks"]["hh-harmless"]
    assert metrics["kind"] == "pairwise" and metrics["n"] == 3
    assert sum(metrics["win_rate"]["sr"][k] for k in ("wins", "losses", "ties")) == 3
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    first = report["results"]["m"]["tasks"]["hh-harmless"]["records"][0]
    prompts = load_prompts({k: v for k, v in task.items() if k != "label"})
    assert first["reference_output"] == prompts[0]["reference_output"] and first["reference_output"].strip()
    assert "measure what that reward model prefers" in result["markdown"]
    assert "AlpacaEval" not in result["markdown"]


# --- end to end on the tiny model through the CLI --------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("candidates.jsonl")
    }


def test_cli_end_to_end_and_resume(tmp_path, tiny_model_dir, tiny_reward_model_dir, data_dir, capsys):
    from aries_lit.cli import main

    out = tmp_path / "eval"
    alpaca_path = data_dir / "alpaca_eval" / "gpt4_1106_preview_outputs.json.gz"
    tasks = [
        {"class_path": "gsm8k", "limit": 3, "data_dir": str(data_dir / "gsm8k")},
        {"class_path": "alpaca_eval", "limit": 3, "path": str(alpaca_path)},
    ]
    argv = [
        "evaluate",
        "--checkpoints", json.dumps([str(tiny_model_dir)]),
        "--tasks", json.dumps(tasks),
        "--out_dir", str(out),
        "--num_refinements", "2",
        "--max_new_tokens", "16",
        "--judge", str(tiny_reward_model_dir),
        "--progress", "false",
    ]  # fmt: skip
    main(argv)
    printed = capsys.readouterr().out
    name = tiny_model_dir.name
    assert f"| {name} |" in printed and "gsm8k Direct" in printed and "alpaca_eval LC SR" in printed

    # reports and plots
    report = json.loads((out / "report.json").read_text())
    assert (
        report["config"]["num_refinements"] == 2
        and report["config"]["generators"]["gsm8k"]["temperature"] == 0
    )
    assert report["config"]["generators"]["alpaca_eval"]["temperature"] == 0.9
    assert (out / "report.md").read_text().startswith("## ARIES evaluation")
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert {
        "by_checkpoint.png",
        "refinement_gsm8k_accuracy.png",
        "refinement_alpaca_eval_lc_win_rate.png",
    } <= set(plots)
    assert all((out / "plots" / p).read_bytes().startswith(PNG_MAGIC) for p in plots)

    # per-record results: extracted answers, gold, correctness for every turn
    gsm = report["results"][name]["tasks"]["gsm8k"]
    assert len(gsm["records"]) == 3 and gsm["metrics"]["n"] == 3
    for rec in gsm["records"]:
        assert rec["gold"] and len(rec["turns"]) == 3
        for turn in rec["turns"]:
            assert "extracted" in turn and isinstance(turn["correct"], bool) and isinstance(turn["text"], str)
    curve = gsm["metrics"]["accuracy"]["curve"]
    assert [c["turn"] for c in curve] == [0, 1, 2] and all(0.0 <= c["mean"] <= 1.0 for c in curve)

    # AlpacaEval model_outputs: exactly the schema, in the reference's instruction order
    reference = read_json_gz(alpaca_path)[:3]
    for label in ("direct", "sr"):
        rows = json.loads((out / name / "alpaca_eval" / f"model_outputs_{label}.json").read_text())
        assert isinstance(rows, list) and len(rows) == 3
        for row, ref in zip(rows, reference):
            assert set(row) == ALPACA_KEYS and all(isinstance(row[k], str) for k in ALPACA_KEYS)
            assert row["instruction"] == ref["instruction"] and row["dataset"] == ref["dataset"]
            assert row["generator"] == f"{name}-{label}"
    wr = report["results"][name]["tasks"]["alpaca_eval"]["metrics"]["win_rate"]
    assert 0.0 <= wr["sr"]["win_rate"] <= 1.0 and 0.0 <= wr["sr"]["lc_win_rate"] <= 1.0

    # a rerun reuses every generation and every judge score: nothing is appended
    before = _snapshot(out)
    cache_before = {p.name: p.read_bytes() for p in (out / "rm_scores").iterdir()}
    assert len(before) == 2 and all(len(b.splitlines()) == 9 for b, _ in before.values())
    again = evaluate_checkpoints(
        [str(tiny_model_dir)], tasks=tasks, out_dir=str(out), num_refinements=2, max_new_tokens=16,
        judge=str(tiny_reward_model_dir), progress=False,
    )  # fmt: skip
    assert _snapshot(out) == before
    assert {p.name: p.read_bytes() for p in (out / "rm_scores").iterdir()} == cache_before
    means = [c["mean"] for c in again["checkpoints"][name]["tasks"]["gsm8k"]["accuracy"]["curve"]]
    assert means == [c["mean"] for c in curve]

    # a run killed mid-way: the finished lines stay and only the missing candidates are generated
    path = out / name / "gsm8k" / "candidates.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]) + lines[4][:10])  # 4 finished candidates and a torn line
    evaluate_checkpoints(
        [str(tiny_model_dir)], tasks=tasks[:1], out_dir=str(out), num_refinements=2, max_new_tokens=16,
        progress=False, plots=False,
    )  # fmt: skip
    resumed = path.read_bytes().splitlines(keepends=True)
    assert resumed[:4] == lines[:4] and len(resumed) == 9


# --- torch.distributed: sharded generation, reduced statistics -----------------------------


def _dist_worker(rank: int, world: int, root: str, sums: str, model: str) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/store", rank=rank, world_size=world)
    try:
        local = [1.0, 0.0, 1.0] if rank == 0 else [1.0, 1.0]
        stats = summarize(local, ci="wilson")
        result = evaluate_checkpoints(
            [model],
            tasks=[{"class_path": "file", "path": sums, "prompt_field": "question", "answer_field": "gold"}],
            out_dir=f"{root}/eval",
            num_refinements=1,
            generator=_scripted(),
            names=["m"],
            progress=False,
            plots=False,
        )
        with open(f"{root}/rank{rank}.json", "w") as f:
            json.dump({"stats": stats, "metrics": result["checkpoints"]["m"]["tasks"]["sums"]}, f)
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip interpreter teardown, which gloo's threads can abort (SIGABRT) on CPU


def test_distributed_shards_and_reduces(tmp_path, tiny_model_dir):
    import torch.multiprocessing as mp

    sums = _sum_file(tmp_path / "sums.jsonl", 5)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_dist_worker, args=(2, str(tmp_path), str(sums), str(tiny_model_dir)), nprocs=2, join=True)
    outs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    full = summarize([1.0, 0.0, 1.0, 1.0, 1.0], ci="wilson")
    for out in outs:
        assert out["stats"]["n"] == 5 and out["stats"]["mean"] == pytest.approx(full["mean"])
        assert out["stats"]["ci_low"] == pytest.approx(full["ci_low"])
        acc = out["metrics"]["accuracy"]
        assert out["metrics"]["n"] == 5 and acc["direct"]["mean"] == 0.0 and acc["sr"]["mean"] == 1.0
    shards = sorted(p.parent.name for p in (tmp_path / "eval" / "m" / "sums").rglob("candidates.jsonl"))
    assert shards == ["shard-0-of-2", "shard-1-of-2"]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert sorted(r["id"] for r in report["results"]["m"]["tasks"]["sums"]["records"]) == [
        f"s{i}" for i in range(5)
    ]
