"""Comparing a study's arms on their result files: the one comparison object the report's
sections and the console summary share. Two arms are compared only at the same final stage, on
the seeds both ran, item by item (the items of each side pooled over those seeds)."""

from __future__ import annotations

from dataclasses import dataclass

from aries_lit.pipeline.study_results import StageSeeds
from aries_lit.pipeline.study_stats import Difference, paired_difference, pooled_items


def final_pooled(stage: StageSeeds, task: str, turn: int | None = None) -> dict[str, float]:
    """The stage's items at ``turn`` (default its last: SR), pooled over its seeds."""
    return pooled_items(stage, task, stage.last_turn(task) if turn is None else turn)


def _common_seeds(a: StageSeeds, b: StageSeeds) -> tuple[StageSeeds, StageSeeds]:
    """Both stages restricted to the seeds both ran (all of each when they share none): a
    comparison of two arms pools the same seeds on both sides."""
    common = set(a.seeds) & set(b.seeds)
    if not common:
        return a, b
    return a.only_seeds(common), b.only_seeds(common)


def by_seed(a: StageSeeds, b: StageSeeds, task: str, turn_b: int | None = None) -> list[tuple[int, float]]:
    """``(seed, mean paired difference)`` of SR of ``a`` minus SR (or turn ``turn_b``) of ``b``,
    for each seed both ran."""
    out = []
    for r in sorted(a.results, key=lambda r: r.seed):
        if r.seed in b.seeds:
            d = paired_difference(
                final_pooled(a.only_seeds([r.seed]), task), final_pooled(b.only_seeds([r.seed]), task, turn_b)
            )
            out.append((r.seed, d.mean))
    return out


@dataclass(frozen=True)
class ArmComparison:
    """Two arms' final models compared on one footing: ``ready`` when both reached the same final
    stage (else ``pending`` says how far each got); ``treatment`` and ``other`` are the final
    stages restricted to the seeds both ran (all of each when they share none)."""

    treatment_arm: str
    other_arm: str
    ready: bool
    pending: str
    treatment: StageSeeds
    other: StageSeeds

    @classmethod
    def of(cls, finals: dict[str, StageSeeds], treatment: str, other: str) -> ArmComparison:
        a, b = finals[treatment], finals[other]
        ready = a.label == b.label
        pending = "" if ready else f"{treatment} has finished up to {a.label}, {other} up to {b.label}"
        if ready:
            a, b = _common_seeds(a, b)
        return cls(treatment, other, ready, pending, a, b)

    def difference(self, task: str, turn: int | None = None, other_turn: int | None = None) -> Difference:
        """The paired difference, item by item, of the treatment's turn (default its last: SR) minus
        the other arm's (default its last)."""
        mine = final_pooled(self.treatment, task, turn)
        return paired_difference(mine, final_pooled(self.other, task, other_turn))

    def by_seed(self, task: str) -> list[tuple[int, float]]:
        """Per seed both ran: the treatment's SR minus the other arm's SR."""
        return by_seed(self.treatment, self.other, task)


__all__ = ["ArmComparison", "by_seed", "final_pooled"]
