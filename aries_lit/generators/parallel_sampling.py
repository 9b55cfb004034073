"""Parallel sampling (``PS``): N independent direct answers per prompt.

The candidate source of the paper's baselines, Iterative DPO (best-of-N with a reward
model) and Self-Rewarding (LLM-as-judge).
"""

from __future__ import annotations

from typing import Any

from aries_lit.core.chat import chat_context
from aries_lit.generators.base import GENERATORS, Generator
from aries_lit.generators.store import CandidateStore


@GENERATORS.register("parallel_sampling")
@GENERATORS.register("PS")
class ParallelSampling(Generator):
    """``y_i ~ pi(. | chat(x))`` for ``i = 0..N-1``, sample ``i`` drawn with seed ``seed + 10007 * i``.

    With ``temperature=0`` all samples are the same greedy answer; use a temperature > 0.
    """

    uses_template = False

    def context(self, tokenizer: Any, record: dict[str, Any], index: int, store: CandidateStore) -> str:
        return chat_context(tokenizer, record["prompt"])
