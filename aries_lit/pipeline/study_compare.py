"""Comparing a study's arms on the result files: the items of one arm's final stage pooled over
seeds, the seeds two arms share, the per-seed paired differences, and whether two arms can be
compared yet (the same final stage)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aries_lit.pipeline.study_results import _num_turns
from aries_lit.pipeline.study_stats import paired_difference, pooled_items


def _final_pooled(records: list[dict[str, Any]], task: str, turn: int | None = None) -> dict[str, float]:
    return pooled_items(records, task, _num_turns(records, task) - 1 if turn is None else turn)


def _common_seeds(
    a: list[dict[str, Any]], b: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records of the seeds both arms ran (all of each when they share none): a comparison
    of two arms pools the same seeds on both sides."""
    common = {r["seed"] for r in a} & {r["seed"] for r in b}
    if not common:
        return a, b
    return [r for r in a if r["seed"] in common], [r for r in b if r["seed"] in common]


def _by_seed(
    a: list[dict[str, Any]], b: list[dict[str, Any]], task: str, turn_b: int | None = None
) -> list[tuple[int, float]]:
    """``(seed, mean paired difference)`` of SR of ``a`` minus SR (or turn ``turn_b``) of ``b``,
    for each seed both ran."""
    b_by_seed = {r["seed"]: r for r in b}
    out = []
    for r in sorted(a, key=lambda r: r["seed"]):
        if r["seed"] in b_by_seed:
            d = paired_difference(
                _final_pooled([r], task), _final_pooled([b_by_seed[r["seed"]]], task, turn_b)
            )
            out.append((r["seed"], d["mean"]))
    return out


def _stage_label(records: list[dict[str, Any]]) -> str:
    return f"{records[0]['index']:02d}-{records[0]['stage']}"


def _same_stage(finals: dict[str, list[dict[str, Any]]], a: str, b: str) -> bool:
    """Arms are compared only at the same final stage (an arm still running is not compared
    against a finished one)."""
    return _stage_label(finals[a]) == _stage_label(finals[b])


def _pending(finals: dict[str, list[dict[str, Any]]], a: str, b: str) -> str:
    return f"{a} has finished up to {_stage_label(finals[a])}, {b} up to {_stage_label(finals[b])}"



@dataclass(frozen=True)
class ArmComparison:
    """Two arms' final models compared on one footing: ``ready`` when both reached the same final
    stage (else ``pending`` says how far each got); ``treatment`` and ``other`` hold the records of
    the seeds both ran (all of each when they share none)."""

    treatment_arm: str
    other_arm: str
    ready: bool
    pending: str
    treatment: list[dict[str, Any]]
    other: list[dict[str, Any]]

    @classmethod
    def of(cls, finals: dict[str, list[dict[str, Any]]], treatment: str, other: str) -> ArmComparison:
        ready = _same_stage(finals, treatment, other)
        t_rec, o_rec = _common_seeds(finals[treatment], finals[other]) if ready else ([], [])
        pending = "" if ready else _pending(finals, treatment, other)
        return cls(treatment, other, ready, pending, t_rec, o_rec)

    def difference(self, task: str, turn: int | None = None, other_turn: int | None = None) -> dict[str, Any]:
        """The paired difference, item by item, of the treatment's turn (default its last: SR) minus
        the other arm's (default its last)."""
        mine = _final_pooled(self.treatment, task, turn)
        return paired_difference(mine, _final_pooled(self.other, task, other_turn))

    def by_seed(self, task: str) -> list[tuple[int, float]]:
        """Per seed both ran: the treatment's SR minus the other arm's SR."""
        return _by_seed(self.treatment, self.other, task)
