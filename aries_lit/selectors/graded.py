"""Graded selection for instruction following: score = the fraction of a prompt's constraints met."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from aries_lit.core.chat import prompt_text
from aries_lit.instructions import follows
from aries_lit.prompts.instruction_following import record_instructions
from aries_lit.selectors.base import SELECTORS, Choice, ScoredSelector, SelectionResult


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _word_count(text: str) -> int:
    return len(text.split())


@SELECTORS.register("graded")
class GradedSelector(ScoredSelector):
    """Chosen = the candidate meeting the most constraints, rejected = the one meeting the fewest.

    A candidate's score is the fraction of its prompt's IFEval constraints
    (``instruction_id_list``/``kwargs``, e.g. from the ``instruction_following`` prompt source) that
    it meets by the strict checkers of :func:`aries_lit.instructions.follows` (``loose=True``: IFEval's
    loose variant). Over a chain (``SR``, ``oracle_feedback``: ``y1..yN``) or a group of samples
    (``PS``) the best is chosen and the worst rejected; ties on the best score go to the latest
    candidate, on the worst to the earliest. A group whose best and worst scores are equal is
    skipped as ``tie`` (counted), one without constraints as ``no_instructions``; ``min_margin``
    and ``skip_truncated`` as for every :class:`ScoredSelector`.

    The audit (``selection_stats.json``'s ``audit.graded``) adds the mean score margin, the mean
    chosen and rejected scores, the share of chosen (and rejected) answers that meet every
    constraint, their mean length in words, and each constraint type's pass rate over all scored
    candidates.
    """

    def __init__(self, loose: bool = False, min_margin: float = 0.0, skip_truncated: bool = True) -> None:
        super().__init__(min_margin=min_margin, skip_truncated=skip_truncated)
        self.loose = bool(loose)
        self._type_counts: Counter = Counter()

    def score(self, groups: list[dict[str, Any]], usable: list[list[int]], stats: Counter) -> list[list[Any]]:
        out = []
        self._type_counts = Counter()
        for group, positions in zip(groups, usable):
            scores: list[Any] = [None] * len(group["candidates"])
            instructions = record_instructions(group, "candidates")
            if instructions:
                question = prompt_text(group["prompt"])
                for pos in positions:
                    text = group["candidates"][pos]["text"]
                    met = [follows(i, question, text, loose=self.loose) for i in instructions]
                    for instruction, ok in zip(instructions, met):
                        self._type_counts[(instruction.id, "seen")] += 1
                        self._type_counts[(instruction.id, "met")] += int(ok)
                    scores[pos] = sum(met) / len(met)
                    if all(met):
                        stats["graded/candidates_meeting_all"] += 1
            out.append(scores)
        return out

    def choose(self, group: dict[str, Any], usable: list[int], scores: list[Any], stats: Counter) -> Choice:
        if not group.get("instruction_id_list"):
            return "no_instructions"
        return super().choose(group, usable, scores, stats)

    def select(self, groups: Iterable[dict[str, Any]]) -> SelectionResult:
        result = super().select(groups)
        result.audit["graded"] = self.graded_audit(result.pairs)
        return result

    def graded_audit(self, pairs: list[dict[str, Any]]) -> dict[str, Any]:
        """Margins, all-pass shares and lengths of the chosen and rejected answers of ``pairs``."""
        best = [max(s for s in p["scores"] if s is not None) for p in pairs]
        worst = [min(s for s in p["scores"] if s is not None) for p in pairs]
        n = len(pairs)
        types = sorted({t for t, _ in self._type_counts})
        return {
            "pairs": n,
            "mean_margin": _mean([b - w for b, w in zip(best, worst)]),
            "chosen_mean_score": _mean(best),
            "rejected_mean_score": _mean(worst),
            "chosen_meets_all_share": round(sum(b == 1.0 for b in best) / n, 4) if n else None,
            "rejected_meets_all_share": round(sum(w == 1.0 for w in worst) / n, 4) if n else None,
            "chosen_mean_words": _mean([float(_word_count(p["chosen"])) for p in pairs]),
            "rejected_mean_words": _mean([float(_word_count(p["rejected"])) for p in pairs]),
            "type_pass_rate": {
                t: round(self._type_counts[(t, "met")] / self._type_counts[(t, "seen")], 4) for t in types
            },
        }

    def __repr__(self) -> str:
        return (
            f"GradedSelector(loose={self.loose}, min_margin={self.min_margin}, "
            f"skip_truncated={self.skip_truncated})"
        )
