"""Reference selection: the prompt's reference answer chosen over one of the policy's incorrect answers.

Offline preference data in the paper's sense (ARIES-SFT, Eq. 4, and the offline stage, Eq. 10,
train on pairs whose chosen answer comes from a stronger source than the policy): the chosen
answer is the prompt record's reference (``solution``: GSM8K's worked solution, the
``arithmetic`` task's worked answer), the rejected one an answer the policy generated that the
verifier marks incorrect. The refinement views then teach ``(x, y_l, z) -> y_w``: turning the
policy's own wrong answer into a right one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from aries_lit.selectors.base import SELECTORS, Choice, SelectionResult
from aries_lit.selectors.verifier import VerifierSelector


@SELECTORS.register("reference")
class ReferenceSelector(VerifierSelector):
    """Chosen = the group's reference answer (field ``field``), rejected = an incorrect candidate.

    The reference is checked like a candidate (it must state the gold answer, else the group is
    skipped as ``reference_incorrect``); the rejected answer is the earliest incorrect candidate
    (the latest with ``prefer_earliest_incorrect=False``); groups whose candidates are all correct
    are skipped as ``all_correct``. In ``pairs.jsonl`` the reference has ``chosen_index`` equal
    to the number of candidates. Other options are the verifier's.
    """

    def __init__(self, field: str = "solution", **verifier_options: Any) -> None:
        super().__init__(**verifier_options)
        self.field = field

    def select(self, groups: Iterable[dict[str, Any]]) -> SelectionResult:
        return super().select(self._with_reference(group, i) for i, group in enumerate(groups))

    def _with_reference(self, group: dict[str, Any], i: int) -> dict[str, Any]:
        group = self._check_group(group, i)
        reference = group.get(self.field)
        if not isinstance(reference, str) or not reference.strip():
            raise ValueError(
                f"prompt group {i} (id={group['id']!r}): field '{self.field}' (the reference answer) "
                "is missing or empty; the prompt source must provide it"
            )
        index = 1 + max((c["index"] for c in group["candidates"]), default=-1)
        reference_candidate = {"index": index, "text": reference, "finish_reason": "stop", "reference": True}
        return {**group, "candidates": [*group["candidates"], reference_candidate]}

    def choose(self, group: dict[str, Any], usable: list[int], scores: list[Any], stats: Counter) -> Choice:
        if self.gold(group) is None:
            return "no_answer"
        reference = len(group["candidates"]) - 1  # appended last, highest index
        if scores[reference] != 1.0:
            return "reference_incorrect"
        wrong = [p for p in usable if p != reference and scores[p] == 0.0]
        if not wrong:
            return "all_correct"
        return reference, wrong[0] if self.prefer_earliest_incorrect else wrong[-1]

    def __repr__(self) -> str:
        return f"ReferenceSelector(field={self.field!r}, extract={self.extract!r}, checker={self.checker!r})"
