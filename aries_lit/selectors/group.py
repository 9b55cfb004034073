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

from collections.abc import Iterable
from typing import Any

from aries_lit.selectors.base import SELECTORS, SelectionResult, Selector
from aries_lit.selectors.quality import audit_pairs
from aries_lit.selectors.scoring import ScorerSelector

__all__ = ["GroupSelector"]


@SELECTORS.register("group")
class GroupSelector(ScorerSelector):
    """Keeps every scored candidate of a prompt with its score as reward (one group record per prompt).

    Args:
        scorer: the selector whose :meth:`~aries_lit.selectors.base.Selector.score` gives the rewards:
            ``verifier`` (1.0 correct / 0.0 not), ``graded`` (fraction of IFEval constraints met),
            ``reward_model`` (the model's score) or any selector by name or ``class_path`` config;
            its ``skip_truncated`` decides whether truncated candidates are scored
            (:class:`~aries_lit.selectors.scoring.ScorerSelector`).
        min_size: the fewest scored candidates a group needs (2: an advantage needs a comparison).

    A group is skipped, and counted in ``selection_stats.json`` as ``skipped/<reason>``, when its
    rewards are all equal (``equal_rewards``: every advantage would be 0, GRPO learns nothing from
    it), when the verifier has no gold answer (``no_answer``), when the graded scorer finds no
    constraints (``no_instructions``), or when fewer than ``min_size`` candidates were scored
    (``truncated``, ``too_few`` or ``unparseable``). ``pairs`` counts the group records written (each
    is a pair too); ``group/completions`` the completions they hold.
    """

    def __init__(self, scorer: Selector | str | dict[str, Any] = "verifier", min_size: int = 2) -> None:
        super().__init__(scorer)
        if not (isinstance(min_size, int) and min_size >= 2):
            raise ValueError(f"group: min_size must be an int >= 2, got {min_size!r}")
        self.min_size = min_size

    def select(self, groups: Iterable[dict[str, Any]]) -> SelectionResult:
        scored_groups = self.score_groups(groups)
        stats = scored_groups.stats
        records, made = [], []
        for g, group, positions, scores in scored_groups:
            scored = scored_groups.scored(positions, scores)
            reason = self.skip_reason(group, positions, scored, self.min_size)
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
        audit = audit_pairs(scored_groups.groups, made, stats, self.rejection_reasons, self.echo_detector)
        return self.result(scored_groups, records, audit)

    def __repr__(self) -> str:
        return f"GroupSelector(scorer={self.scorer!r}, min_size={self.min_size})"
