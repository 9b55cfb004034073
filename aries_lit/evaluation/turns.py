"""What every task kind's records and metrics share.

A task's records are one per prompt with one entry per turn (:func:`base_record`,
:func:`base_turn`); :func:`turn_curve`, :func:`length_metrics` and :func:`reward_metrics` reduce
over ranks (every rank calls them with its shard, in the same order); :func:`winrate_metrics`
needs all records (:func:`gather` them first). What a kind adds to them is its own
(:mod:`aries_lit.evaluation.kinds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "base_record",
    "base_turn",
    "gather",
    "length_metrics",
    "reward_metrics",
    "turn_curve",
    "winrate_metrics",
]


def base_record(group: Mapping[str, Any]) -> dict[str, Any]:
    """A record's common fields: the prompt's ``id`` and its text."""
    from aries_lit.prompts.templates import prompt_text

    return {"id": group["id"], "prompt": prompt_text(group["prompt"])}


def base_turn(cand: Mapping[str, Any]) -> dict[str, Any]:
    """A turn's common fields: its index, text, length, finish reason and token count."""
    text = cand["text"]
    return {
        "turn": int(cand["index"]),
        "text": text,
        "length": len(text),
        "finish_reason": cand.get("finish_reason"),
        "completion_tokens": cand.get("completion_tokens"),
    }


def turn_curve(
    records: list[dict[str, Any]], key: str, num_turns: int, interval: str, confidence: float
) -> list[dict[str, Any]]:
    """The summary of ``turn[key]`` at every turn, reduced over ranks."""
    from aries_lit.evaluation.stats import summarize

    return [
        {"turn": t, **summarize([r["turns"][t][key] for r in records], ci=interval, confidence=confidence)}
        for t in range(num_turns)
    ]


def length_metrics(
    records: list[dict[str, Any]], kind: str, num_turns: int, confidence: float
) -> dict[str, Any]:
    """``kind``, ``num_turns``, ``n`` and the answer-length curve (``length``), reduced over ranks."""
    length = turn_curve(records, "length", num_turns, "normal", confidence)
    return {
        "kind": kind,
        "num_turns": num_turns,
        "n": length[0]["n"] if length else 0,
        "length": {"direct": length[0], "sr": length[-1], "curve": length},
    }


def reward_metrics(records: list[dict[str, Any]], num_turns: int, confidence: float) -> dict[str, Any]:
    """The reward-model score curve, reduced over ranks."""
    curve = turn_curve(records, "reward", num_turns, "normal", confidence)
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
