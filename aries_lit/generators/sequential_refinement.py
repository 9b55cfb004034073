"""Sequential self-refinement (``SR``): a direct answer, then N-1 refinements of the previous one.

ARIES (arXiv 2502.05605), Section 3 / Appendix B: turn 0 answers ``chat(x)``; turn ``n``
answers ``chat(z(x, y_{n-1}))``, the refinement template filled with the question and the
previous answer. The paper samples 4 turns at temperature 0.7; rule selection then takes
turn 0 as rejected and the last turn as chosen.
"""

from __future__ import annotations

from typing import Any

from aries_lit.core.chat import chat_context, prompt_text
from aries_lit.generators.backends.base import Completion
from aries_lit.generators.base import GENERATORS, Generator
from aries_lit.generators.store import CandidateStore


@GENERATORS.register("sequential_refinement")
@GENERATORS.register("SR")
class SequentialRefinement(Generator):
    """``y_0 ~ pi(. | chat(x))``, ``y_n ~ pi(. | chat(z(x, extract(y_{n-1}))))`` for ``n = 1..N-1``.

    Turn ``n`` of every prompt in a chunk is one backend call. With a template that has an
    answer marker (``"analysis"``), a refinement's record ``text`` is the part after the
    final ``RESPONSE:`` and ``raw_text`` keeps the whole generation.
    """

    uses_template = True

    def refinement_prompt(self, record: dict[str, Any], previous_text: str) -> str:
        """``z(x, y_prev)``: the user turn of a refinement context."""
        return self.template.fill(prompt_text(record["prompt"]), self.template.extract(previous_text))

    def context(self, tokenizer: Any, record: dict[str, Any], index: int, store: CandidateStore) -> str:
        if index == 0:
            return chat_context(tokenizer, record["prompt"])
        previous = store.get(record["id"], index - 1)
        if previous is None:  # pragma: no cover - turns run in order
            raise RuntimeError(f"turn {index - 1} of prompt '{record['id']}' is missing")
        return chat_context(tokenizer, self.refinement_prompt(record, previous["text"]))

    def candidate_fields(self, completion: Completion, index: int) -> dict[str, Any]:
        if index > 0 and self.template.answer_marker:
            answer = self.template.extract(completion.text)
            if answer != completion.text:
                return {"text": answer, "raw_text": completion.text}
        return {"text": completion.text}
