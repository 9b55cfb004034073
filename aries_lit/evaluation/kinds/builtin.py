"""The built-in task kinds: ``verifiable``, ``ifeval``, ``pairwise``, ``open`` and ``mt_bench``
(what each does: :mod:`aries_lit.evaluation.kinds`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aries_lit.evaluation.files import write_alpaca_outputs
from aries_lit.evaluation.ifeval import (
    IFEVAL_KIND,
    ifeval_cell,
    ifeval_metrics,
    ifeval_records,
    ifeval_section,
    is_ifeval_task,
    write_responses,
)
from aries_lit.evaluation.kinds.base import TASK_KINDS, Generation, Records, TaskKind, TaskRun
from aries_lit.evaluation.suites import MT_BENCH_KIND, generate_mt_bench, mt_bench_metrics, mt_bench_records
from aries_lit.evaluation.turns import turn_curve

__all__ = [
    "ARENA_HARD_DISCLAIMER",
    "JUDGE_DISCLAIMER",
    "LOCAL_JUDGE_NOTE",
    "IFEvalKind",
    "MTBenchKind",
    "OpenKind",
    "PairwiseKind",
    "VerifiableKind",
]

JUDGE_DISCLAIMER = (
    "Win rates here come from a local reward-model judge scoring the model's and the GPT-4 Turbo "
    "reference answers; they are NOT AlpacaEval 2's official GPT-4 Turbo judge and are not comparable "
    "to leaderboard numbers. For official numbers run `alpaca_eval --model_outputs <file>` on the "
    "written model_outputs files."
)
LOCAL_JUDGE_NOTE = (
    "Win rates here come from a local reward-model judge scoring the model's answers against the "
    "task's reference answers: they measure what that reward model prefers (its held-out accuracy "
    "bounds how much they mean), for comparing checkpoints with each other."
)
ARENA_HARD_DISCLAIMER = (
    "Arena-Hard win rates here come from a local reward-model judge scoring the model's and the "
    "baseline model's answers (joined by question id); they are NOT Arena-Hard-Auto's official GPT-4 "
    "judge and are not comparable to its leaderboard. For official numbers run Arena-Hard-Auto's "
    "gen_judgment.py and show_result.py on the written model_answer files."
)


@TASK_KINDS.register("verifiable")
class VerifiableKind(TaskKind):
    """Gold answers: each turn's answer extracted and graded; accuracy with an interval."""

    temperature = 0.0
    requires = "answer"
    infer_order = 1
    reward_model = False

    def record_fields(self, group: Mapping[str, Any]) -> dict[str, Any]:
        return {"gold": str(group["answer"])}

    def turn_fields(self, text: str, record: Mapping[str, Any], run: TaskRun) -> dict[str, Any]:
        from aries_lit.answers.checking import is_correct
        from aries_lit.answers.extraction import extract_answer

        extracted = extract_answer(text)
        return {
            "extracted": extracted,
            "correct": is_correct(text, record["gold"], run.checker),
            "no_answer": extracted is None,
        }

    def metrics(self, records: Records, all_records: Records, run: TaskRun) -> dict[str, Any]:
        from aries_lit.evaluation.stats import summarize

        metrics = super().metrics(records, all_records, run)
        acc = turn_curve(records, "correct", run.num_turns, run.ci, run.confidence)
        first = [float(r["turns"][0]["correct"]) for r in records]
        last = [float(r["turns"][-1]["correct"]) for r in records]
        n = metrics["n"]

        def share(values: list[float]) -> float:
            return summarize(values, "normal", run.confidence)["mean"]

        w2r, r2w = (
            share([float(b > a) for a, b in zip(first, last)]),
            share([float(a > b) for a, b in zip(first, last)]),
        )
        metrics["accuracy"] = {
            "direct": acc[0],
            "sr": acc[-1],
            "curve": acc,
            "delta": summarize([b - a for a, b in zip(first, last)], "normal", run.confidence),
            "flips": {
                "wrong_to_right": int(round(w2r * n)) if n else 0,
                "right_to_wrong": int(round(r2w * n)) if n else 0,
            },
            "no_answer_rate": [
                c["mean"] for c in turn_curve(records, "no_answer", run.num_turns, "normal", run.confidence)
            ],
        }
        return metrics

    def what(self, task: Mapping[str, Any], config: Mapping[str, Any]) -> str:
        conf = int(round(100 * float(config.get("confidence", 0.95))))
        return f"accuracy % with {conf}% {config.get('ci', 'wilson')} interval; Δ = SR - Direct (points)"


@TASK_KINDS.register(IFEVAL_KIND)
class IFEvalKind(TaskKind):
    """IFEval's instructions checked at every turn (:mod:`aries_lit.evaluation.ifeval`)."""

    temperature = 0.0
    requires = "instruction_id_list"
    infer_order = 0
    reward_model = False

    def accepts(self, prompts: Sequence[Mapping[str, Any]]) -> bool:
        return is_ifeval_task(prompts)

    def records(self, groups: list[dict[str, Any]], run: TaskRun) -> Records:
        return ifeval_records(groups, run.generator.get("template"), source=f"task '{run.label}'")

    def metrics(self, records: Records, all_records: Records, run: TaskRun) -> dict[str, Any]:
        metrics = ifeval_metrics(all_records, run.num_turns, run.confidence, run.ci)  # the same on every rank
        if run.rank == 0:
            metrics["responses"] = write_responses(run.out, all_records, run.num_turns)
        return metrics

    def what(self, task: Mapping[str, Any], config: Mapping[str, Any]) -> str:
        conf = int(round(100 * float(config.get("confidence", 0.95))))
        oracle = config.get("generators", {}).get(task["label"], {}).get("name") == "oracle_feedback"
        return f"IFEval prompt-level strict accuracy % with {conf}% interval; Δ = last turn - Direct" + (
            "; refinements get **oracle feedback** (the checkers' verdicts): not SR" if oracle else ""
        )

    def section(
        self, checkpoint: str, label: str, metrics: Mapping[str, Any], config: Mapping[str, Any]
    ) -> list[str]:
        return ifeval_section(checkpoint, label, metrics, float(config.get("confidence", 0.95)))

    def columns(self, metrics: Mapping[str, Any], label: str) -> list[tuple[str, str]] | None:
        """An oracle-feedback chain's last turn is headed ``oracle``, never ``SR``."""
        if not metrics.get("ifeval", {}).get("oracle_feedback") or "reward" in metrics:
            return None
        acc = metrics["accuracy"]
        delta = acc["delta"]["mean"]
        return [
            (f"{label} Direct", ifeval_cell(acc["direct"])),
            (f"{label} oracle", ifeval_cell(acc["sr"])),
            (f"{label} Δ", "n/a" if not math.isfinite(delta) else f"{100 * delta:+.1f}"),
        ]


def _source_name(task: Mapping[str, Any]) -> str | None:
    """The prompt-source name of a task in the report's config (``alpaca_eval``, ``file``, ...)."""
    source = task.get("source")
    if isinstance(source, str) or source is None:
        return source
    name = source.get("name") or source.get("class_path")
    return "alpaca_eval" if name in ("alpaca_eval", "aries_lit.prompts.sources.AlpacaEval") else name


@TASK_KINDS.register("pairwise")
class PairwiseKind(TaskKind):
    """Reference answers: the judge scores every turn against them (win rates, length-controlled)."""

    requires = "reference_output"
    infer_order = 2
    judged = True

    def record_fields(self, group: Mapping[str, Any]) -> dict[str, Any]:
        reference = group["reference_output"]
        return {
            "reference_output": reference,
            "reference_length": len(reference),
            "dataset": group.get("dataset"),
        }

    def what(self, task: Mapping[str, Any], config: Mapping[str, Any]) -> str:
        versus = "the baseline's answers" if task.get("suite") == "arena_hard" else "the reference"
        if not config.get("judge"):
            return "no judge configured: average answer length in characters"
        return f"LC = length-controlled win rate %, WR = win rate % vs {versus} (±1 standard error)"

    def notes(self, tasks: list[Mapping[str, Any]], config: Mapping[str, Any]) -> list[str]:
        if not (config.get("judge") and tasks):
            return []
        judge = config.get("judge_path") or config["judge"]
        lines = []
        if any(_source_name(t) == "alpaca_eval" for t in tasks):
            lines += ["", f"> **Judge:** `{judge}`. {JUDGE_DISCLAIMER}"]
        if any(t.get("suite") != "arena_hard" and _source_name(t) != "alpaca_eval" for t in tasks):
            lines += ["", f"> **Judge:** `{judge}`. {LOCAL_JUDGE_NOTE}"]
        if any(t.get("suite") == "arena_hard" for t in tasks):
            lines += ["", f"> **Judge (Arena-Hard):** `{judge}`. {ARENA_HARD_DISCLAIMER}"]
        return lines

    def write_outputs(self, task_dir: Path, checkpoint: str, records: Records) -> dict[str, dict[str, str]]:
        return {"alpaca_eval": write_alpaca_outputs(task_dir, checkpoint, records)}


@TASK_KINDS.register("open")
class OpenKind(TaskKind):
    """Any prompts: answer lengths, and the reward model's scores when one is configured."""

    infer_order = 1000  # the last resort: it accepts every record

    def accepts(self, prompts: Sequence[Mapping[str, Any]]) -> bool:
        return True


@TASK_KINDS.register(MT_BENCH_KIND)
class MTBenchKind(TaskKind):
    """MT-Bench's two-turn conversations, answered Direct only (:mod:`aries_lit.evaluation.suites`)."""

    temperature = 0.7
    requires = "turns"
    reward_model = None
    refines = False
    suite = "mt_bench"

    def generate(self, generation: Generation) -> None:
        generate_mt_bench(
            generation.spec,
            generation.backend,
            generation.prompts,
            generation.model,
            generation.out,
            generation.progress,
        )

    def read_records(self, gen_dir: Path, prompts: list[dict[str, Any]], run: TaskRun) -> Records:
        return mt_bench_records(gen_dir, prompts)

    def metrics(self, records: Records, all_records: Records, run: TaskRun) -> dict[str, Any]:
        return mt_bench_metrics(records, run.confidence)

    def what(self, task: Mapping[str, Any], config: Mapping[str, Any]) -> str:
        return (
            "Direct answers to both turns, written as FastChat's model_answer/<model>.jsonl "
            "(judge them with FastChat's gen_judgment.py); average answer length in characters per turn"
        )

    def columns(self, metrics: Mapping[str, Any], label: str) -> list[tuple[str, str]] | None:
        return [(f"{label} len turn {t['turn']}", f"{t['mean']:.0f}") for t in metrics["length"]["turns"]]
