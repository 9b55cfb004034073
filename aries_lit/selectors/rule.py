"""Rule selection (ARIES, arXiv 2502.05605): the last refinement is chosen, the direct answer rejected."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aries_lit.selectors.base import SELECTORS, Choice, Selector


@SELECTORS.register("rule")
class RuleSelector(Selector):
    """Chosen and rejected by position in the refinement chain, no scoring.

    The paper samples ``y1`` (direct) and three refinements ``y2..y4`` and takes ``y4`` as
    chosen, ``y1`` as rejected: ``chosen_index=-1, rejected_index=0`` (the defaults).
    Indices are positions in the group's candidates sorted by ``index``; negative ones
    count from the end. A group is skipped as ``too_few`` when an index is out of range or
    both resolve to the same candidate, ``truncated`` when either candidate was cut off
    at the token limit (and ``skip_truncated``), ``identical`` when both texts are equal.
    ``scores`` are all ``None``.
    """

    def __init__(self, chosen_index: int = -1, rejected_index: int = 0, skip_truncated: bool = True) -> None:
        super().__init__(skip_truncated=skip_truncated)
        self.chosen_index = int(chosen_index)
        self.rejected_index = int(rejected_index)

    def choose(self, group: dict[str, Any], usable: list[int], scores: list[Any], stats: Counter) -> Choice:
        n = len(group["candidates"])
        resolved = []
        for index in (self.chosen_index, self.rejected_index):
            if not -n <= index < n:
                return "too_few"
            resolved.append(index % n)
        chosen, rejected = resolved
        if chosen == rejected:
            return "too_few"
        if chosen not in usable or rejected not in usable:
            return "truncated"
        return chosen, rejected

    def __repr__(self) -> str:
        return (
            f"RuleSelector(chosen_index={self.chosen_index}, rejected_index={self.rejected_index}, "
            f"skip_truncated={self.skip_truncated})"
        )
