"""Unpaired selection: every scored candidate as one labelled example, for KTO on unpaired data.

Where a pair selector keeps two answers of a prompt and the group selector the whole group with its
rewards, :class:`UnpairedSelector` writes one record per scored candidate, labelled desirable when
its score reaches ``threshold`` (TRL ``KTOTrainer``'s unpaired format, read by
:class:`aries_lit.data.UnpairedDataModule`)::

    {"id": "<prompt id>#<candidate index>", "prompt", "completion", "label": bool, "score": float,
     "prompt_id", "index", "selector": "unpaired", ["answer"]}

``completion`` is the candidate's text, or ``[{"role": "assistant", "content": text}]`` when the
prompt is chat messages (TRL's conversational form keeps prompt and completion alike). No prompt
needs both kinds: KTO learns from each example alone (Ethayarajh et al. 2024, arXiv 2402.01306).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

from aries_lit.selectors.base import SELECTORS, SelectionResult, Selector
from aries_lit.selectors.quality import audit_unpaired
from aries_lit.selectors.scoring import ScorerSelector

__all__ = ["UnpairedSelector"]


@SELECTORS.register("unpaired")
class UnpairedSelector(ScorerSelector):
    """Writes every scored candidate as an unpaired record: desirable iff its score >= ``threshold``.

    Args:
        scorer: the selector whose scores label the candidates (``verifier``: 1.0 correct / 0.0 not;
            ``graded``: the fraction of IFEval constraints met; ``reward_model``: the model's score;
            or any scoring selector by name or ``class_path`` config); its ``skip_truncated`` decides
            whether truncated candidates are written (a verifier scores them 0.0: undesirable).
        threshold: the lowest desirable score. 1.0 (default): a verifier-correct answer, or one
            that meets all of a prompt's IFEval constraints; set it for a reward model's scale.

    A prompt gives no record, counted as ``skipped/<reason>`` in ``selection_stats.json``, when the
    verifier has no gold answer (``no_answer``), the graded scorer finds no constraints
    (``no_instructions``), or no candidate was scored (``truncated``, ``too_few``, ``unparseable``).
    ``pairs`` counts the records written (what the pipeline counts as examples),
    ``unpaired/desirable`` and ``unpaired/undesirable`` those of each label, ``unpaired/prompts``
    the prompts that gave any.
    """

    def __init__(self, scorer: Selector | str | dict[str, Any] = "verifier", threshold: float = 1.0) -> None:
        super().__init__(scorer)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not math.isfinite(threshold)
        ):
            raise ValueError(f"unpaired: threshold must be a finite number, got {threshold!r}")
        self.threshold = float(threshold)

    def _unpaired_record(self, group: dict[str, Any], position: int, score: float) -> dict[str, Any]:
        cand = group["candidates"][position]
        prompt = copy.deepcopy(group["prompt"])
        text = cand["text"]
        record = {
            "id": f"{group['id']}#{cand['index']}",
            "prompt": prompt,
            "completion": [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text,
            "label": float(score) >= self.threshold,
            "score": float(score),
            "prompt_id": group["id"],
            "index": cand["index"],
            "selector": self.name,
        }
        if group.get("answer") is not None:
            record["answer"] = group["answer"]
        return record

    def select(self, groups: Iterable[dict[str, Any]]) -> SelectionResult:
        scored_groups = self.score_groups(groups)
        stats = scored_groups.stats
        records: list[dict[str, Any]] = []
        desirable: list[tuple[int, int]] = []
        undesirable: list[tuple[int, int]] = []
        for g, group, positions, scores in scored_groups:
            scored = scored_groups.scored(positions, scores)
            reason = self.skip_reason(group, positions, scored, 1)
            if reason is not None:
                stats[f"skipped/{reason}"] += 1
                continue
            for p in scored:
                record = self._unpaired_record(group, p, scores[p])
                records.append(record)
                (desirable if record["label"] else undesirable).append((g, p))
            stats["unpaired/prompts"] += 1
        stats["pairs"] = len(records)
        stats["unpaired/desirable"] = len(desirable)
        stats["unpaired/undesirable"] = len(undesirable)
        audit = audit_unpaired(
            scored_groups.groups, desirable, undesirable, stats, self.rejection_reasons, self.echo_detector
        )
        return self.result(scored_groups, records, audit, unit="records")

    def __repr__(self) -> str:
        return f"UnpairedSelector(scorer={self.scorer!r}, threshold={self.threshold})"
