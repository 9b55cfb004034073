"""A user-defined selector and generator, in the user's own module (no edit of aries_lit).

By short name, once ``ARIES_LIT_PLUGINS`` has the module imported::

    ARIES_LIT_PLUGINS=my_selectors PYTHONPATH=examples/custom_selector aries-lit select \
        --candidates runs/c --prompts prompts.jsonl --selector shortest_answer

or by dotted path with ``PYTHONPATH`` alone: ``--selector my_selectors.ShortestAnswerSelector``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from aries_lit.generators import GENERATORS, ParallelSampling
from aries_lit.selectors import SELECTORS, ScoredSelector


@SELECTORS.register("shortest_answer")
class ShortestAnswerSelector(ScoredSelector):
    """Prefers concise answers: score = minus the answer's length in characters."""

    def score(self, groups: list[dict[str, Any]], usable: list[list[int]], stats: Counter) -> list[list[Any]]:
        return [
            [-float(len(c["text"])) if i in positions else None for i, c in enumerate(g["candidates"])]
            for g, positions in zip(groups, usable)
        ]


@GENERATORS.register("greedy_then_sampled")
class GreedyThenSampled(ParallelSampling):
    """Parallel sampling whose first candidate is greedy (temperature 0)."""

    def sampling_for(self, index: int):
        settings = super().sampling_for(index)
        return dataclasses.replace(settings, temperature=0.0) if index == 0 else settings
