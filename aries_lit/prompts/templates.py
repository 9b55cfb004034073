"""Self-refinement templates ``z`` (chat formatting lives in :mod:`aries_lit.core.chat`, re-exported here).

The default template is the one of ARIES ("ARIES: Stimulating Self-Refinement of Large
Language Models by Iterative Preference Optimization", arXiv 2502.05605), Appendix B.1,
verbatim. Appendix E adds the ``analysis`` and ``short`` variants. A config may name one
of these or give its own text with the ``{question}`` and ``{example_response}`` fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from aries_lit.core.chat import (
    CHAT_ROLES,
    FALLBACK_CHAT_TEMPLATE,
    as_messages,
    assistant_turn_end,
    chat_context,
    end_of_turn,
    prompt_text,
)
from aries_lit.core.paper_text import PAPER_INTRO, PAPER_TEMPLATE

#: Appendix E variant with an ANALYSIS section; keep only the text after the final ``RESPONSE:``.
ANALYSIS_TEMPLATE = (
    PAPER_INTRO
    + "Format your answer as follows:\n"
    + "ANALYSIS: <Analyze the strengths and shortcomings of the EXAMPLE RESPONSE>\n"
    + "RESPONSE: <Provide an improved response>"
)

#: Appendix E short variant.
SHORT_TEMPLATE = (
    "Below is a QUESTION from a user and an EXAMPLE RESPONSE.\n"
    "Please provide a better RESPONSE.\n"
    "QUESTION:\n{question}\n"
    "EXAMPLE RESPONSE:\n{example_response}\n"
    "RESPONSE:"
)

TEMPLATES: dict[str, str] = {"paper": PAPER_TEMPLATE, "analysis": ANALYSIS_TEMPLATE, "short": SHORT_TEMPLATE}


@dataclass(frozen=True)
class RefinementTemplate:
    """A refinement template ``z``: a name from :data:`TEMPLATES` or a literal text.

    ``answer_marker`` (set for ``analysis``) makes :meth:`extract` keep only the text
    after the final marker of a generated answer.
    """

    text: str
    answer_marker: str | None = None

    @classmethod
    def from_spec(cls, spec: str | RefinementTemplate) -> RefinementTemplate:
        if isinstance(spec, RefinementTemplate):
            return spec
        if spec in TEMPLATES:
            return cls(TEMPLATES[spec], "RESPONSE:" if spec == "analysis" else None)
        missing = [f for f in ("{question}", "{example_response}") if f not in spec]
        if missing:
            raise ValueError(
                f"refinement template is neither a known name ({', '.join(TEMPLATES)}) nor a text with "
                f"the fields {{question}} and {{example_response}} (missing {', '.join(missing)})"
            )
        return cls(spec)

    def fill(self, question: str, example_response: str) -> str:
        """``z(x, y_prev)``: the template filled with the question and a previous answer."""
        return self.text.replace("{question}", question).replace("{example_response}", example_response)

    def extract(self, generated: str) -> str:
        """The answer part of a generation made from this template."""
        if self.answer_marker and self.answer_marker in generated:
            generated = generated.rsplit(self.answer_marker, 1)[1]
        return generated.strip()


__all__ = [
    "ANALYSIS_TEMPLATE",
    "CHAT_ROLES",
    "FALLBACK_CHAT_TEMPLATE",
    "PAPER_TEMPLATE",
    "SHORT_TEMPLATE",
    "TEMPLATES",
    "RefinementTemplate",
    "as_messages",
    "assistant_turn_end",
    "chat_context",
    "end_of_turn",
    "prompt_text",
]
