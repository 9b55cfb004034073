"""What the selectors that keep scored candidates instead of a pair share: a ``scorer`` selector's
scores of every usable candidate, the skip reasons of a prompt that yields none, and the scoring cost.

:class:`~aries_lit.selectors.group.GroupSelector` (one group record per prompt, for GRPO) and
:class:`~aries_lit.selectors.unpaired.UnpairedSelector` (one labelled record per candidate, for
KTO) derive from :class:`ScorerSelector`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from aries_lit.selectors.base import SELECTORS, SelectionResult, Selector, scoring_record
from aries_lit.selectors.graded import GradedSelector
from aries_lit.selectors.verifier import VerifierSelector

__all__ = ["ScoredGroups", "ScorerSelector"]


@dataclass
class ScoredGroups:
    """The validated prompt groups, their usable candidate positions, the scorer's scores (by
    position, ``None`` where not scored), the counts so far and the seconds scoring took."""

    groups: list[dict[str, Any]]
    usable: list[list[int]]
    scores: list[list[Any]]
    stats: Counter
    seconds: float

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any], list[int], list[Any]]]:
        """``(group position, group, usable positions, scores)`` of every group."""
        for g, (group, positions, scores) in enumerate(zip(self.groups, self.usable, self.scores)):
            yield g, group, positions, scores

    @staticmethod
    def scored(positions: list[int], scores: list[Any]) -> list[int]:
        """The usable positions the scorer scored."""
        return [p for p in positions if scores[p] is not None]


class ScorerSelector(Selector):
    """Base of the selectors that take a ``scorer`` (``verifier``: 1.0 correct / 0.0 not; ``graded``:
    the fraction of IFEval constraints met; ``reward_model``: the model's score; or any scoring
    selector by name or ``class_path`` config) and keep its scores rather than pick a pair.

    The scorer's ``skip_truncated`` decides whether truncated candidates are scored, its
    ``rejection_reasons`` feed the audit; its provenance (e.g. the reward model's path) is the
    selection's.
    """

    def __init__(self, scorer: Selector | str | dict[str, Any] = "verifier") -> None:
        self.scorer: Selector = SELECTORS.build(scorer) if not isinstance(scorer, Selector) else scorer
        if isinstance(self.scorer, ScorerSelector):
            raise ValueError(
                f"{self.name}: the scorer must be a scoring selector, not the {self.scorer.name} selector"
            )
        super().__init__(skip_truncated=self.scorer.skip_truncated)
        self.rejection_reasons = self.scorer.rejection_reasons

    def provenance(self) -> dict[str, Any]:
        return self.scorer.provenance()

    def add_echo_templates(self, templates: list[str]) -> None:
        super().add_echo_templates(templates)
        self.scorer.add_echo_templates(templates)

    def score_groups(self, groups: Iterable[dict[str, Any]]) -> ScoredGroups:
        """Validate ``groups`` and score their usable candidates with :attr:`scorer` (timed);
        ``stats`` starts as ``groups`` (how many), ``pairs`` 0 and the scorer's own counts."""
        checked = [self._check_group(g, i) for i, g in enumerate(groups)]
        stats: Counter = Counter(groups=len(checked), pairs=0)
        usable = [self._usable(g, stats) for g in checked]
        t0 = time.perf_counter()
        scores = self.scorer.score(checked, usable, stats) if checked else []
        return ScoredGroups(checked, usable, scores, stats, time.perf_counter() - t0)

    def skip_reason(
        self, group: dict[str, Any], usable: list[int], scored: list[int], needed: int
    ) -> str | None:
        """Why ``group`` gives nothing, or ``None``: ``no_answer`` (the verifier has no gold),
        ``no_instructions`` (the graded scorer finds no constraints), or fewer than ``needed`` scored
        candidates: ``unparseable`` (enough usable ones, scoring failed), ``truncated`` or ``too_few``."""
        if isinstance(self.scorer, VerifierSelector) and self.scorer.gold(group) is None:
            return "no_answer"
        if isinstance(self.scorer, GradedSelector) and not group.get("instruction_id_list"):
            return "no_instructions"
        if len(scored) < needed:
            if len(usable) >= needed:
                return "unparseable"
            return self.usable_or_reason(group, usable, needed) or "too_few"
        return None

    def result(
        self, scored: ScoredGroups, records: list[dict[str, Any]], audit: dict[str, Any], unit: str = "pairs"
    ) -> SelectionResult:
        """The :class:`SelectionResult` of ``records``, with the scoring cost when anything was scored."""
        result = SelectionResult(
            pairs=records, stats=scored.stats, selector=self.name, audit=audit, unit=unit
        )
        total = sum(s is not None for scores in scored.scores for s in scores)
        if total:
            result.scoring = scoring_record(
                total, scored.stats["pairs"], scored.seconds, scored.stats.get("scoring/cache_hits", 0)
            )
        return result
