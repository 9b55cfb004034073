"""Per-record results of an evaluation and their metrics.

:func:`build_records` turns a task's generated groups into records (one per prompt, one entry per
turn, graded when the task has gold answers); the ``*_metrics`` functions summarize them per turn.
:func:`local_metrics` and :func:`reward_metrics` reduce over ranks (every rank calls them with its
shard, in the same order); :func:`winrate_metrics` needs all records (:func:`gather` them first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["build_records", "gather", "local_metrics", "reward_metrics", "winrate_metrics"]


def build_records(groups: list[dict[str, Any]], kind: str, checker: str = "builtin") -> list[dict[str, Any]]:
    """Records of a task's groups: id, prompt text, gold answer or reference, and per turn the text,
    its length and finish reason, and (``verifiable``) the extracted answer and its grade."""
    from aries_lit.prompts.templates import prompt_text
    from aries_lit.selectors.answers import extract_answer
    from aries_lit.selectors.checking import is_correct

    records = []
    for group in groups:
        record: dict[str, Any] = {"id": group["id"], "prompt": prompt_text(group["prompt"])}
        if kind == "verifiable":
            record["gold"] = str(group["answer"])
        if kind == "pairwise":
            record["reference_output"] = group["reference_output"]
            record["reference_length"] = len(group["reference_output"])
            record["dataset"] = group.get("dataset")
        turns = []
        for cand in group["candidates"]:
            text = cand["text"]
            turn: dict[str, Any] = {
                "turn": int(cand["index"]),
                "text": text,
                "length": len(text),
                "finish_reason": cand.get("finish_reason"),
                "completion_tokens": cand.get("completion_tokens"),
            }
            if kind == "verifiable":
                extracted = extract_answer(text)
                turn["extracted"] = extracted
                turn["correct"] = is_correct(text, record["gold"], checker)
                turn["no_answer"] = extracted is None
            turns.append(turn)
        record["turns"] = turns
        records.append(record)
    return records


def local_metrics(
    records: list[dict[str, Any]], kind: str, num_turns: int, confidence: float, ci: str
) -> dict[str, Any]:
    """Statistics reduced over ranks (every rank calls this with its shard, in the same order)."""
    from aries_lit.evaluation.stats import summarize

    metrics: dict[str, Any] = {"kind": kind, "num_turns": num_turns}

    def curve(key: str, interval: str) -> list[dict[str, Any]]:
        return [
            {
                "turn": t,
                **summarize([r["turns"][t][key] for r in records], ci=interval, confidence=confidence),
            }
            for t in range(num_turns)
        ]

    length = curve("length", "normal")
    metrics["n"] = length[0]["n"] if length else 0
    metrics["length"] = {"direct": length[0], "sr": length[-1], "curve": length}
    if kind == "verifiable":
        acc = curve("correct", ci)
        metrics["accuracy"] = {"direct": acc[0], "sr": acc[-1], "curve": acc}
        first = [float(r["turns"][0]["correct"]) for r in records]
        last = [float(r["turns"][-1]["correct"]) for r in records]
        metrics["accuracy"]["delta"] = summarize([b - a for a, b in zip(first, last)], "normal", confidence)
        n = metrics["n"]
        w2r = summarize([float(b > a) for a, b in zip(first, last)], "normal", confidence)["mean"]
        r2w = summarize([float(a > b) for a, b in zip(first, last)], "normal", confidence)["mean"]
        metrics["accuracy"]["flips"] = {
            "wrong_to_right": int(round(w2r * n)) if n else 0,
            "right_to_wrong": int(round(r2w * n)) if n else 0,
        }
        no_answer = curve("no_answer", "normal")
        metrics["accuracy"]["no_answer_rate"] = [c["mean"] for c in no_answer]
    return metrics


def reward_metrics(records: list[dict[str, Any]], num_turns: int, confidence: float) -> dict[str, Any]:
    """The reward-model score curve, reduced over ranks."""
    from aries_lit.evaluation.stats import summarize

    curve = [
        {"turn": t, **summarize([r["turns"][t]["reward"] for r in records], "normal", confidence)}
        for t in range(num_turns)
    ]
    return {"direct": curve[0], "sr": curve[-1], "curve": curve}


def winrate_metrics(
    records: list[dict[str, Any]], num_turns: int, lc_options: Mapping[str, Any], confidence: float
) -> dict[str, Any]:
    """Win rates from all records (call on the gathered records)."""
    from aries_lit.evaluation.stats import normal_interval
    from aries_lit.evaluation.winrate import length_controlled_win_rate, win_rate

    ref_len = [r["reference_length"] for r in records]
    curve = []
    for t in range(num_turns):
        wins = [r["turns"][t]["win"] for r in records]
        lengths = [r["turns"][t]["length"] for r in records]
        wr = win_rate(wins)
        lc = length_controlled_win_rate(wins, lengths, ref_len, **lc_options)
        low, high = normal_interval(lc["lc_win_rate"], lc["se"], confidence)
        curve.append(
            {
                "turn": t,
                **wr,
                "lc_win_rate": lc["lc_win_rate"],
                "lc_se": lc["se"],
                "lc_ci_low": max(0.0, low),
                "lc_ci_high": min(1.0, high),
                "lc_fit": lc,
            }
        )
    return {"direct": curve[0], "sr": curve[-1], "curve": curve}


def gather(records: list[dict[str, Any]], world: int) -> list[dict[str, Any]]:
    """All ranks' records, in rank order (``records`` itself on one process)."""
    if world <= 1:
        return records
    import torch.distributed as dist

    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, records)
    return [r for part in parts for r in part]
