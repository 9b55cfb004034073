"""IFEval scoring of an evaluation's turns (Zhou et al. 2023, arXiv 2311.07911).

A task whose prompt records carry IFEval's ``instruction_id_list`` and ``kwargs`` (the ``ifeval``
prompt source, or ``instruction_following``'s procedural prompts) is of kind ``ifeval``. Every
turn's answer is checked by the IFEval checkers of ``if-verifiable``
(:func:`aries_lit.instructions.follows`), strict and loose, and summarized per turn as IFEval's
four accuracies:

- **prompt-level** strict / loose: the share of prompts whose answer follows *every* instruction,
  with a Wilson interval;
- **instruction-level** strict / loose: followed instructions over all instructions (IFEval's
  ``inst_level`` = ``sum(followed) / sum(instructions)``), with a cluster-robust (ratio estimator,
  delta-method) normal interval, since a prompt's instructions are not independent draws.

Also per instruction type (strict, Direct and last turn), the flips between the first and the last
turn and between consecutive turns (prompt-level strict), the answers that hit the token limit
(``finish_reason == "length"``) and, for ``oracle_feedback`` chains, that they are oracle runs.
The headline ``accuracy`` of the task (Direct, SR, curve, plots) is prompt-level strict.

:func:`write_responses` writes each turn as IFEval's own scorer reads it (``{"prompt",
"response"}`` lines, with the prompts as ``input_data.jsonl``), so ``python -m
instruction_following_eval.evaluation_main --input_data=input_data.jsonl
--input_response_data=turn-0.jsonl`` (Google's) or lm-eval's ``ifeval`` utils reproduce the four
accuracies from the files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ifeval_cell",
    "IFEVAL_KIND",
    "ifeval_metrics",
    "ifeval_records",
    "ifeval_section",
    "is_ifeval_task",
    "ratio_summary",
    "write_responses",
]

#: the name the ``ifeval`` task kind registers under (:mod:`aries_lit.evaluation.kinds`)
IFEVAL_KIND = "ifeval"
#: The four accuracies, in IFEval's order.
ACCURACIES = ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose")


def is_ifeval_task(prompts: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every prompt record carries IFEval instructions (``instruction_id_list``)."""
    return bool(prompts) and all(p.get("instruction_id_list") for p in prompts)


def _response(text: str, turn: int, template: Any) -> str:
    """The answer a turn gives: a refinement's text less its template's wrapping (``analysis``)."""
    return text.strip() if turn == 0 or template is None else template.extract(text)


def ifeval_records(
    groups: list[dict[str, Any]], template: str | None = None, source: str = "prompts"
) -> list[dict[str, Any]]:
    """Records of an IFEval task's groups: per prompt its instructions, per turn the answer, its
    length and finish reason, and which instructions it follows, strict and loose.

    ``template`` is the refinement template of the generation (a name or text, default none: the
    text is the answer); bad instruction ids or kwargs raise a ``DataValidationError`` naming
    ``source`` and the prompt."""
    from aries_lit.instructions import follows_all
    from aries_lit.prompts.instruction_following import record_instructions
    from aries_lit.prompts.templates import RefinementTemplate, prompt_text

    refinement = RefinementTemplate.from_spec(template) if template else None
    records = []
    for number, group in enumerate(groups):
        question = prompt_text(group["prompt"])
        instructions = record_instructions(group, source, number) or []
        turns = []
        for cand in group["candidates"]:
            index = int(cand["index"])
            response = _response(cand["text"], index, refinement)
            strict = follows_all(instructions, question, response)
            loose = follows_all(instructions, question, response, loose=True)
            turns.append(
                {
                    "turn": index,
                    "text": response,
                    "length": len(response),
                    "finish_reason": cand.get("finish_reason"),
                    "completion_tokens": cand.get("completion_tokens"),
                    "truncated": cand.get("finish_reason") == "length",
                    "feedback": cand.get("feedback"),
                    "stopped": bool(cand.get("stopped", False)),
                    "strict": strict,
                    "loose": loose,
                    "prompt_strict": all(strict),
                    "prompt_loose": all(loose),
                    # the headline accuracy of the task (Direct, SR, curves): prompt-level strict
                    "correct": all(strict),
                }
            )
        records.append(
            {
                "id": group["id"],
                "key": group.get("key"),
                "prompt": question,
                "instruction_id_list": [i.id for i in instructions],
                "kwargs": [dict(i.kwargs) for i in instructions],
                "turns": turns,
            }
        )
    return records


def ratio_summary(followed: Sequence[int], counts: Sequence[int], confidence: float = 0.95) -> dict[str, Any]:
    """``sum(followed) / sum(counts)`` with a cluster-robust normal interval (the ratio estimator's
    delta-method standard error, one cluster per prompt)."""
    from aries_lit.evaluation.stats import normal_interval

    m, total = len(counts), float(sum(counts))
    if m == 0 or total == 0:
        nan = float("nan")
        return {"mean": nan, "ci_low": nan, "ci_high": nan, "se": nan, "n": 0, "prompts": m}
    ratio = sum(followed) / total
    if m > 1:
        residual = sum((f - ratio * c) ** 2 for f, c in zip(followed, counts))
        se = math.sqrt(residual / (m * (m - 1))) / (total / m)
    else:
        se = float("nan")
    low, high = normal_interval(ratio, se, confidence) if math.isfinite(se) else (ratio, ratio)
    return {
        "mean": ratio,
        "ci_low": max(0.0, low),
        "ci_high": min(1.0, high),
        "se": se,
        "n": int(total),
        "prompts": m,
    }


def _turn_accuracies(records: list[dict[str, Any]], t: int, confidence: float, ci: str) -> dict[str, Any]:
    from aries_lit.evaluation.stats import summarize

    def prompt_level(key: str) -> dict[str, Any]:
        return summarize([float(r["turns"][t][key]) for r in records], ci, confidence, sync_dist=False)

    def inst_level(key: str) -> dict[str, Any]:
        followed = [sum(r["turns"][t][key]) for r in records]
        return ratio_summary(followed, [len(r["turns"][t][key]) for r in records], confidence)

    return {
        "turn": t,
        "prompt_strict": prompt_level("prompt_strict"),
        "inst_strict": inst_level("strict"),
        "prompt_loose": prompt_level("prompt_loose"),
        "inst_loose": inst_level("loose"),
        "truncated": sum(bool(r["turns"][t]["truncated"]) for r in records),
        "stopped": sum(bool(r["turns"][t]["stopped"]) for r in records),
    }


def _flips(records: list[dict[str, Any]], a: int, b: int) -> dict[str, int]:
    before = [bool(r["turns"][a]["prompt_strict"]) for r in records]
    after = [bool(r["turns"][b]["prompt_strict"]) for r in records]
    unchanged = sum(r["turns"][a]["text"] == r["turns"][b]["text"] for r in records)
    return {
        "from": a,
        "to": b,
        "wrong_to_right": sum((not x) and y for x, y in zip(before, after)),
        "right_to_wrong": sum(x and not y for x, y in zip(before, after)),
        "unchanged_text": unchanged,
    }


def _by_type(records: list[dict[str, Any]], t: int) -> dict[str, dict[str, float | int]]:
    tally: dict[str, list[int]] = {}
    for r in records:
        for inst, ok in zip(r["instruction_id_list"], r["turns"][t]["strict"]):
            tally.setdefault(inst, [0, 0])
            tally[inst][0] += int(ok)
            tally[inst][1] += 1
    return {k: {"followed": f, "n": n, "rate": f / n} for k, (f, n) in sorted(tally.items())}


def ifeval_metrics(
    records: list[dict[str, Any]], num_turns: int, confidence: float = 0.95, ci: str = "wilson"
) -> dict[str, Any]:
    """IFEval's four accuracies per turn with intervals, per instruction type, flips, truncations.

    Call on all records (gathered over ranks). ``accuracy`` (Direct, SR, curve, delta, flips) is
    prompt-level strict, in the shape of the other tasks' accuracy."""
    from aries_lit.evaluation.stats import summarize

    curve = [_turn_accuracies(records, t, confidence, ci) for t in range(num_turns)]
    length = [
        {
            "turn": t,
            **summarize([r["turns"][t]["length"] for r in records], "normal", confidence, sync_dist=False),
        }
        for t in range(num_turns)
    ]
    head = [{"turn": c["turn"], **c["prompt_strict"]} for c in curve]
    last = num_turns - 1
    delta = summarize(
        [float(r["turns"][last]["prompt_strict"]) - float(r["turns"][0]["prompt_strict"]) for r in records],
        "normal",
        confidence,
        sync_dist=False,
    )
    flips = _flips(records, 0, last)
    oracle = any(turn.get("feedback") == "oracle" for r in records for turn in r["turns"])
    return {
        "kind": IFEVAL_KIND,
        "num_turns": num_turns,
        "n": len(records),
        "length": {"direct": length[0], "sr": length[-1], "curve": length},
        "accuracy": {
            "direct": head[0],
            "sr": head[-1],
            "curve": head,
            "delta": delta,
            "flips": {k: flips[k] for k in ("wrong_to_right", "right_to_wrong")},
            "no_answer_rate": [
                sum(not r["turns"][t]["text"].strip() for r in records) / max(1, len(records))
                for t in range(num_turns)
            ],  # fmt: skip
        },
        "ifeval": {
            "oracle_feedback": oracle,
            "instructions": sum(len(r["instruction_id_list"]) for r in records),
            "curve": curve,
            "direct": curve[0],
            "last": curve[-1],
            "flips": flips,
            "flips_by_turn": [_flips(records, t, t + 1) for t in range(num_turns - 1)],
            "by_type": {"direct": _by_type(records, 0), "last": _by_type(records, last)},
        },
    }


def write_responses(
    task_dir: str | os.PathLike, records: list[dict[str, Any]], num_turns: int
) -> dict[str, str]:
    """Write ``<task_dir>/ifeval/input_data.jsonl`` (the prompts in IFEval's layout) and one
    ``turn-<t>.jsonl`` of ``{"prompt", "response"}`` lines per turn (IFEval's response format);
    returns their paths. Each file is written to a temporary name and moved into place."""
    out = Path(task_dir) / "ifeval"
    out.mkdir(parents=True, exist_ok=True)

    def dump(name: str, rows: list[dict[str, Any]]) -> str:
        path = out / name
        tmp = path.with_name(path.name + ".part")
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        return str(path)

    inputs = [
        {"key": r["key"] if r.get("key") is not None else r["id"], "prompt": r["prompt"],
         "instruction_id_list": r["instruction_id_list"], "kwargs": r["kwargs"]}
        for r in records
    ]  # fmt: skip
    paths = {"input_data": dump("input_data.jsonl", inputs)}
    for t in range(num_turns):
        rows = [{"prompt": r["prompt"], "response": r["turns"][t]["text"]} for r in records]
        paths[f"turn-{t}"] = dump(f"turn-{t}.jsonl", rows)
    return paths


def ifeval_cell(stat: Mapping[str, Any]) -> str:
    """``mean [low, high]`` in percent, ``n/a`` when undefined."""
    if not math.isfinite(stat["mean"]):
        return "n/a"
    return f"{100 * stat['mean']:.1f} [{100 * stat['ci_low']:.1f}, {100 * stat['ci_high']:.1f}]"


def ifeval_section(name: str, label: str, metrics: Mapping[str, Any], confidence: float = 0.95) -> list[str]:
    """A checkpoint's IFEval section on a task: the four accuracies per turn, flips, truncations and
    the instruction types that change most."""
    conf = int(round(100 * confidence))
    ife = metrics["ifeval"]
    what = "**oracle feedback, not SR**" if ife["oracle_feedback"] else "self-refinement"
    lines = [
        "",
        f"### IFEval: {name} on {label} ({metrics['n']} prompts, {ife['instructions']} instructions; "
        f"turns 1+ are {what})",
        "",
        "| turn | prompt strict | inst strict | prompt loose | inst loose | at token limit |"
        " prompts fixed / broken vs previous turn |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in ife["curve"]:
        t = c["turn"]
        flip = ife["flips_by_turn"][t - 1] if t > 0 else None
        flip_cell = f"+{flip['wrong_to_right']} / -{flip['right_to_wrong']}" if flip else ""
        lines.append(
            f"| {t} | "
            + " | ".join(ifeval_cell(c[k]) for k in ACCURACIES)
            + f" | {c['truncated']} | {flip_cell} |"
        )
    f = ife["flips"]
    lines += [
        "",
        f"Accuracies in % with {conf}% intervals (prompt level: Wilson; instruction level: "
        f"cluster-robust over prompts). Turn 0 to {f['to']}: {f['wrong_to_right']} prompts fixed, "
        f"{f['right_to_wrong']} broken, {f['unchanged_text']} answers unchanged word for word.",
    ]
    direct, last = ife["by_type"]["direct"], ife["by_type"]["last"]
    moved = sorted(direct, key=lambda k: -abs(last[k]["rate"] - direct[k]["rate"]))[:8]
    if moved and ife["curve"][-1]["turn"] > 0:
        lines += ["", "| instruction type | n | strict, turn 0 | strict, last turn |", "|---|---|---|---|"]
        lines += [
            f"| {k} | {direct[k]['n']} | {100 * direct[k]['rate']:.1f} | {100 * last[k]['rate']:.1f} |"
            for k in moved
        ]
    return lines
