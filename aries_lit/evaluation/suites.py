"""Benchmark suites with their own answer files: Arena-Hard-Auto and MT-Bench.

- ``arena_hard`` tasks run the usual Direct vs SR protocol; their answers are also written as
  Arena-Hard's ``model_answer/<model>.jsonl`` (Direct) and ``model_answer/<model>-sr.jsonl``
  (SR) in the question file's layout. With a ``baseline`` answer file the task is pairwise: the
  local reward-model judge compares every turn with the baseline's answer (not Arena-Hard's
  GPT-4 judge).
- ``mt_bench`` tasks are answered Direct only, turn by turn (two generation passes: turn 1, then
  turn 2 given user turn 1, the model's answer and user turn 2, into ``<task>/turn1`` and
  ``<task>/turn2``), and written as FastChat's ``model_answer/<model>.jsonl``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aries_lit.core.io import write_text_atomic
from aries_lit.core.registry import class_path_form, split_spec

__all__ = [
    "ANSWER_DIR",
    "ANSWER_FIELDS",
    "MT_BENCH_KIND",
    "SUITES",
    "add_answer_fields",
    "generate_mt_bench",
    "mt_bench_metrics",
    "mt_bench_records",
    "suite_of",
    "write_answer_files",
]

#: prompt sources whose tasks write their suite's answer files
SUITES = {
    "arena_hard": "aries_lit.prompts.arena_hard.ArenaHard",
    "mt_bench": "aries_lit.prompts.mt_bench.MTBench",
}
#: the name the MT-Bench task kind registers under (two-turn conversations, Direct only; see
#: :class:`aries_lit.evaluation.kinds.MTBenchKind`)
MT_BENCH_KIND = "mt_bench"
#: the prompt fields a suite's answer files need, copied into its task's records
ANSWER_FIELDS = {"arena_hard": ("question_id", "layout")}
ANSWER_DIR = "model_answer"


def suite_of(source: str | Mapping[str, Any]) -> str | None:
    """The suite of a task's prompt-source spec (``arena_hard``, ``mt_bench``) or ``None``."""
    name = source if isinstance(source, str) else split_spec(source)[0]
    return next((suite for suite, path in SUITES.items() if name in (suite, path)), None)


def add_answer_fields(
    suite: str | None, records: list[dict[str, Any]], prompts: Sequence[Mapping[str, Any]]
) -> None:
    """Copy into each record the prompt fields its suite's answer files need (Arena-Hard's
    ``question_id`` and question-file ``layout``)."""
    for key in ANSWER_FIELDS.get(suite or "", ()):
        for record, prompt in zip(records, prompts):
            record[key] = prompt[key]


# --- MT-Bench: two generation passes --------------------------------------------------------


def generate_mt_bench(
    spec: Mapping[str, Any], backend: Any, prompts: Sequence[Mapping[str, Any]], model: str, task_dir: Path,
    progress: bool = True,
) -> None:  # fmt: skip
    """Answer turn 1, then turn 2 given the conversation so far (one candidate each; resumable)."""
    from aries_lit.generators import GENERATORS, load_groups
    from aries_lit.prompts import mt_bench

    spec = class_path_form({**spec, "num_candidates": 1})
    first = [{"id": p["id"], "prompt": p["turns"][0]} for p in prompts]
    GENERATORS.build(spec, backend=backend).run(first, model, task_dir / "turn1", progress=progress)
    answers = {g["id"]: g["candidates"][0]["text"] for g in load_groups(task_dir / "turn1", first, 1)}
    second = [
        {"id": p["id"], "prompt": mt_bench.second_turn_prompt(dict(p), answers[p["id"]])} for p in prompts
    ]
    GENERATORS.build(spec, backend=backend).run(second, model, task_dir / "turn2", progress=progress)


def mt_bench_records(task_dir: Path, prompts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per question: ``id``, ``question_id``, ``category``, ``prompt`` (turn 1) and ``turns``, one
    entry per conversation turn (``turn`` 1 or 2, ``text``, ``length``, ``finish_reason``,
    ``completion_tokens``)."""
    from aries_lit.generators import load_groups

    by_turn = []
    for turn in (1, 2):
        groups = load_groups(task_dir / f"turn{turn}", [{"id": p["id"], "prompt": "-"} for p in prompts], 1)
        by_turn.append({g["id"]: g["candidates"][0] for g in groups})
    missing = [p["id"] for p in prompts if any(p["id"] not in t for t in by_turn)]
    if missing:
        raise RuntimeError(f"{task_dir}: {len(missing)} MT-Bench questions lack an answer after generation")
    records = []
    for p in prompts:
        turns = []
        for number, answers in enumerate(by_turn, start=1):
            cand = answers[p["id"]]
            turns.append(
                {
                    "turn": number,
                    "text": cand["text"],
                    "length": len(cand["text"]),
                    "finish_reason": cand.get("finish_reason"),
                    "completion_tokens": cand.get("completion_tokens"),
                }
            )
        records.append(
            {
                "id": p["id"],
                "question_id": p["question_id"],
                "category": p.get("category"),
                "prompt": p["turns"][0],
                "turns": turns,
            }
        )
    return records


def mt_bench_metrics(records: list[dict[str, Any]], confidence: float) -> dict[str, Any]:
    """Answer length per conversation turn (reduced over ranks; every rank calls this in order)."""
    from aries_lit.evaluation.stats import summarize

    length = [
        {"turn": t + 1, **summarize([r["turns"][t]["length"] for r in records], "normal", confidence)}
        for t in range(2)
    ]
    return {"kind": MT_BENCH_KIND, "num_turns": 2, "n": length[0]["n"], "length": {"turns": length}}


# --- answer files ---------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    import json

    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return str(path)


def write_answer_files(
    task_dir: Path, suite: str, model: str, records: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Write a suite's answer files under ``task_dir/model_answer/``; their paths by label.

    Arena-Hard: ``<model>.jsonl`` (Direct, turn 0) and ``<model>-sr.jsonl`` (SR, last turn), in
    the layout of the question file; MT-Bench: ``<model>.jsonl`` (both turns, Direct)."""
    from aries_lit.prompts import arena_hard, mt_bench

    tstamp = time.time()
    folder = Path(task_dir) / ANSWER_DIR
    if suite == "mt_bench":
        rows = [
            mt_bench.answer_row(r["question_id"], model, [t["text"] for t in r["turns"]], tstamp)
            for r in records
        ]
        return {"direct": _write_jsonl(folder / f"{model}.jsonl", rows)}
    paths = {}
    for label, turn, name in (("direct", 0, model), ("sr", -1, f"{model}-sr")):
        rows = [
            arena_hard.answer_row(
                r["layout"],
                r["question_id"],
                r["prompt"],
                r["turns"][turn]["text"],
                name,
                int(r["turns"][turn].get("completion_tokens") or 0),
                tstamp,
            )  # fmt: skip
            for r in records
        ]
        paths[label] = _write_jsonl(folder / f"{name}.jsonl", rows)
    return paths
