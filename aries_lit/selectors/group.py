"""Group selection: every scored candidate of a prompt, with its reward, for a group objective.

Where a pair selector keeps two answers of a prompt, :class:`GroupSelector` keeps the whole group,
the input of GRPO / Dr. GRPO / RLOO (:mod:`aries_lit.losses.group`). One record per prompt::

    {"id", "prompt", "completions": [str, ...], "rewards": [float, ...], "indices": [int, ...],
     "chosen", "rejected", "chosen_index", "rejected_index", "selector": "group", ["answer"]}

``completions[k]`` is candidate ``indices[k]`` with reward ``rewards[k]``; only the candidates the
scorer scored (finished ones, with ``skip_truncated``) are kept. ``chosen`` / ``rejected`` are the
best and the worst of the group (ties: the latest best, the earliest worst, as
:class:`~aries_lit.selectors.base.ScoredSelector`), so the record is also a TRL preference pair, and
these two answers are the ``(y_w, y_l)`` a refinement term would read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from aries_lit.selectors.base import SELECTORS, SelectionResult, Selector, scoring_record
from aries_lit.selectors.graded import GradedSelector
from aries_lit.selectors.quality import audit_pairs
from aries_lit.selectors.verifier import VerifierSelector

__all__ = ["GroupSelector"]


@SELECTORS.register("group")
class GroupSelector(Selector):
    """Keeps every scored candidate of a prompt with its score as reward (one group record per prompt).

    Args:
        scorer: the selector whose :meth:`~aries_lit.selectors.base.Selector.score` gives the rewards:
            ``verifier`` (1.0 correct / 0.0 not), ``graded`` (fraction of IFEval constraints met),
            ``reward_model`` (the model's score) or any selector by name or ``class_path`` config;
            its ``skip_truncated`` decides whether truncated candidates are scored.
        min_size: the fewest scored candidates a group needs (2: an advantage needs a comparison).

    A group is skipped, and counted in ``selection_stats.json`` as ``skipped/<reason>``, when its
    rewards are all equal (``equal_rewards``: every advantage would be 0, GRPO learns nothing from
    it), when the verifier has no gold answer (``no_answer``), when the graded scorer finds no
    constraints (``no_instructions``), or when fewer than ``min_size`` candidates were scored
    (``truncated``, ``too_few`` or ``unparseable``). ``pairs`` counts the group records written (each
    is a pair too); ``group/completions`` the completions they hold.
    """

    def __init__(self, scorer: Selector | str | dict[str, Any] = "verifier", min_size: int = 2) -> None:
        self.scorer: Selector = SELECTORS.build(scorer) if not isinstance(scorer, Selector) else scorer
        if isinstance(self.scorer, GroupSelector):
            raise ValueError("group: the scorer must be a scoring selector, not another group selector")
        if not (isinstance(min_size, int) and min_size >= 2):
            raise ValueError(f"group: min_size must be an int >= 2, got {min_size!r}")
        super().__init__(skip_truncated=self.scorer.skip_truncated)
        self.min_size = min_size
        self.rejection_reasons = self.scorer.rejection_reasons

    def provenance(self) -> dict[str, Any]:
        return self.scorer.provenance()

    def add_echo_templates(self, templates: list[str]) -> None:
        super().add_echo_templates(templates)
        self.scorer.add_echo_templates(templates)

    def _skip_reason(self, group: dict[str, Any], usable: list[int], scored: list[int]) -> str | None:
        if isinstance(self.scorer, VerifierSelector) and self.scorer.gold(group) is None:
            return "no_answer"
        if isinstance(self.scorer, GradedSelector) and not group.get("instruction_id_list"):
            return "no_instructions"
        if len(scored) < self.min_size:
            if len(usable) >= self.min_size:
                return "unparseable"
            return self.usable_or_reason(group, usable, self.min_size) or "too_few"
        return None

    def select(self, groups: Iterable[dict[str, Any]]) -> SelectionResult:
        groups = [self._check_group(g, i) for i, g in enumerate(groups)]
        stats: Counter = Counter(groups=len(groups), pairs=0)
        usable = [self._usable(g, stats) for g in groups]
        t0 = time.perf_counter()
        all_scores = self.scorer.score(groups, usable, stats) if groups else []
        seconds = time.perf_counter() - t0
        records, made = [], []
        for g, (group, positions, scores) in enumerate(zip(groups, usable, all_scores)):
            scored = [p for p in positions if scores[p] is not None]
            reason = self._skip_reason(group, positions, scored)
            if reason is None and len({float(scores[p]) for p in scored}) == 1:
                reason = "equal_rewards"
            if reason is not None:
                stats[f"skipped/{reason}"] += 1
                continue
            best = max(scored, key=lambda p: (scores[p], p))
            worst = min(scored, key=lambda p: (scores[p], p))
            cands = group["candidates"]
            record = self._record(group, best, worst, scores)
            record.update(
                completions=[cands[p]["text"] for p in scored],
                rewards=[float(scores[p]) for p in scored],
                indices=[cands[p]["index"] for p in scored],
            )
            records.append(record)
            made.append((g, best, worst))
            stats["pairs"] += 1
            stats["group/completions"] += len(scored)
        audit = audit_pairs(groups, made, stats, self.rejection_reasons, self.echo_detector)
        result = SelectionResult(pairs=records, stats=stats, selector=self.name, audit=audit)
        scored_total = sum(s is not None for scores in all_scores for s in scores)
        if scored_total:
            result.scoring = scoring_record(
                scored_total, stats["pairs"], seconds, stats.get("scoring/cache_hits", 0)
            )
        return result

    def __repr__(self) -> str:
        return f"GroupSelector(scorer={self.scorer!r}, min_size={self.min_size})"
