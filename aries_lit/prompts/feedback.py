"""Refinement with feedback: a refinement prompt that names what the previous answer got wrong.

The self-refinement template ``z`` of ARIES (Appendix B.1) gives the model only the question and
its previous answer. With *oracle feedback* a checker says which of the question's instructions
the previous answer breaks (for IFEval, each checker's own ``describe`` text,
:func:`aries_lit.instructions.describe`), and the prompt lists them. Evaluation uses it for the
``oracle feedback`` row (never counted as SR); collection can use it to build refinement chains
that fix what a verifier finds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["FEEDBACK_TEMPLATE", "NOTHING_BROKEN", "feedback_refinement_prompt"]

#: the default template: ``{question}``, ``{example_response}`` and ``{broken}`` (one ``- `` line
#: per broken instruction) are filled in
FEEDBACK_TEMPLATE = (
    "Below is a QUESTION from a user and an EXAMPLE RESPONSE. A checker found that the EXAMPLE "
    "RESPONSE does not follow these instructions of the QUESTION:\n"
    "{broken}\n"
    "Please provide a RESPONSE that answers the QUESTION and follows every one of its instructions, "
    "fixing the ones listed above.\n"
    "QUESTION:\n{question}\n"
    "EXAMPLE RESPONSE:\n{example_response}\n"
    "Do not include analysis-just give the improved RESPONSE.\n"
    "RESPONSE:"
)
#: the ``{broken}`` text when the checker found nothing broken
NOTHING_BROKEN = "- (none: it follows every instruction the checker knows; keep following them)"

FIELDS = ("{question}", "{example_response}", "{broken}")


def feedback_refinement_prompt(
    question: str, previous: str, broken: Sequence[str], template: str | None = None
) -> str:
    """The user turn of a refinement with feedback: ``template`` (default :data:`FEEDBACK_TEMPLATE`)
    with the question, the previous answer and the broken instructions (one ``- `` line each;
    :data:`NOTHING_BROKEN` when there are none) filled in. A custom template must hold
    ``{question}``, ``{example_response}`` and ``{broken}``; other braces are left alone."""
    text = FEEDBACK_TEMPLATE if template is None else template
    missing = [f for f in FIELDS if f not in text]
    if missing:
        raise ValueError(
            f"feedback template lacks the field(s) {', '.join(missing)} (needs {', '.join(FIELDS)})"
        )
    if isinstance(broken, str):
        raise TypeError("broken is a sequence of instruction descriptions, not one string")
    listed = "\n".join(f"- {item.strip()}" for item in broken if item.strip()) or NOTHING_BROKEN
    values = {"{question}": question, "{example_response}": previous, "{broken}": listed}
    # one pass: a question or an answer that itself contains "{broken}" stays as it is
    return re.sub(r"\{question\}|\{example_response\}|\{broken\}", lambda m: values[m.group(0)], text)
