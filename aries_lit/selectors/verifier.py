"""Verifier selection: a correct answer is chosen, an incorrect one rejected (tasks with a gold answer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from aries_lit.selectors.answers import answers_match, extract_answer, extract_boxed, extract_last_number
from aries_lit.selectors.base import SELECTORS, Choice, Selector


def _gsm8k_only(text: str) -> str | None:
    return extract_answer(text) if "####" in text else None


def _boxed_only(text: str) -> str | None:
    return extract_answer(text) if extract_boxed(text) is not None else None


#: Answer extractors by name: the full cascade of :func:`extract_answer` (``auto``), only a
#: ``#### n`` line (``gsm8k``), only a ``\\boxed{}`` (``boxed``), or the last number.
EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "auto": extract_answer,
    "gsm8k": _gsm8k_only,
    "boxed": _boxed_only,
    "last_number": extract_last_number,
}


@SELECTORS.register("verifier")
class VerifierSelector(Selector):
    """Chosen = a correct candidate (the latest one), rejected = an incorrect one (the earliest).

    Each usable candidate's answer is extracted (``extract``: ``auto``, ``gsm8k``,
    ``boxed`` or ``last_number``, see :data:`EXTRACTORS`) and compared with the group's
    gold ``answer`` by :func:`~aries_lit.selectors.answers.answers_match`. A gold answer
    that is a whole GSM8K solution (``... #### 72``) is reduced to its final number.
    ``scores`` are 1.0 (correct) / 0.0 (incorrect) / ``None`` (not used: truncated).
    Groups are skipped as ``no_answer`` (no gold), ``all_correct``, ``none_correct``,
    ``truncated``/``too_few`` (fewer than two usable candidates); candidates with no
    extractable answer count as incorrect and as ``candidates/no_answer_found``.

    ``prefer_latest_correct=False`` picks the earliest correct candidate instead;
    ``prefer_earliest_incorrect=False`` the latest incorrect one.
    """

    def __init__(
        self,
        extract: str = "auto",
        prefer_latest_correct: bool = True,
        prefer_earliest_incorrect: bool = True,
        skip_truncated: bool = True,
    ) -> None:
        super().__init__(skip_truncated=skip_truncated)
        if extract not in EXTRACTORS:
            raise ValueError(f"unknown answer extractor '{extract}'; known: {', '.join(EXTRACTORS)}")
        self.extract = extract
        self.prefer_latest_correct = prefer_latest_correct
        self.prefer_earliest_incorrect = prefer_earliest_incorrect

    @staticmethod
    def gold(group: dict[str, Any]) -> str | None:
        """The group's gold answer, or ``None`` when it has none."""
        gold = group.get("answer")
        if gold is None or (isinstance(gold, str) and not gold.strip()):
            return None
        gold = str(gold)
        return extract_answer(gold) if "####" in gold else gold.strip()

    def score(self, groups: list[dict[str, Any]], usable: list[list[int]], stats: Counter) -> list[list[Any]]:
        extractor = EXTRACTORS[self.extract]
        out = []
        for group, positions in zip(groups, usable):
            scores: list[Any] = [None] * len(group["candidates"])
            gold = self.gold(group)
            if gold is not None:
                for pos in positions:
                    pred = extractor(group["candidates"][pos]["text"])
                    if pred is None:
                        stats["candidates/no_answer_found"] += 1
                    scores[pos] = 1.0 if answers_match(pred, gold) else 0.0
            out.append(scores)
        return out

    def choose(self, group: dict[str, Any], usable: list[int], scores: list[Any], stats: Counter) -> Choice:
        if self.gold(group) is None:
            return "no_answer"
        reason = self.usable_or_reason(group, usable)
        if reason:
            return reason
        correct = [p for p in usable if scores[p] == 1.0]
        wrong = [p for p in usable if scores[p] == 0.0]
        if not wrong:
            return "all_correct"
        if not correct:
            return "none_correct"
        chosen = correct[-1] if self.prefer_latest_correct else correct[0]
        rejected = wrong[0] if self.prefer_earliest_incorrect else wrong[-1]
        return chosen, rejected

    def __repr__(self) -> str:
        return f"VerifierSelector(extract={self.extract!r}, skip_truncated={self.skip_truncated})"
