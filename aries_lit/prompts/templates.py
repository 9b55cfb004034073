"""Self-refinement templates ``z`` and chat formatting.

The default template is the one of ARIES ("ARIES: Stimulating Self-Refinement of Large
Language Models by Iterative Preference Optimization", arXiv 2502.05605), Appendix B.1,
verbatim. Appendix E adds the ``analysis`` and ``short`` variants. A config may name one
of these or give its own text with the ``{question}`` and ``{example_response}`` fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_INTRO = (
    "Below is a QUESTION from a user and an EXAMPLE RESPONSE. Please provide a more helpful RESPONSE, "
    "improving the EXAMPLE RESPONSE by making the content even clearer, more accurate, and concise. "
    "Focus on addressing the human's QUESTION without including irrelevant sentences. Your RESPONSE "
    "should not only be well-written, logical, and easy-to-follow, but also demonstrate expert-level "
    "insight, engaging the reader with the most relevant information.\n"
    "QUESTION:\n{question}\n"
    "EXAMPLE RESPONSE:\n{example_response}\n"
    "Now, refine and improve the RESPONSE further. You can consider two approaches: 1. REFINEMENT: If "
    "the EXAMPLE RESPONSE is sufficient and addresses most of the QUESTION's concerns, enhance clarity, "
    "accuracy, or conciseness as needed. 2. NEW RESPONSE: If the EXAMPLE RESPONSE lacks clarity or "
    "relevance to the QUESTION, craft a more effective RESPONSE that thoroughly resolves the QUESTION.\n"
)

#: Appendix B.1 of arXiv 2502.05605 (the paper's ``z``), verbatim.
PAPER_TEMPLATE = _INTRO + "Do not include analysis-just give the improved RESPONSE.\nRESPONSE:"

#: Appendix E variant with an ANALYSIS section; keep only the text after the final ``RESPONSE:``.
ANALYSIS_TEMPLATE = (
    _INTRO
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


#: The chat roles a message may have in input data. Every chat template in use (ChatML, which is
#: SmolLM2's and the fallback below, Llama 3, Gemma) renders these; ``prompt_text`` drops
#: ``system`` and joins the others. ``tool`` (and ``ipython``, ``function``) messages are refused:
#: they belong to tool-call dialogues (an assistant turn with ``tool_calls`` and no content) that
#: the refinement template cannot fill and that not every chat template renders.
CHAT_ROLES = ("system", "user", "assistant")

FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def as_messages(prompt: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A prompt as chat messages (a plain string becomes one user turn)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]


def prompt_text(prompt: str | list[dict[str, Any]]) -> str:
    """The question ``x`` as plain text, for filling the refinement template."""
    if isinstance(prompt, str):
        return prompt
    turns = [m for m in prompt if m.get("role") != "system"]
    if len(turns) == 1:
        return str(turns[0]["content"])
    return "\n".join(f"{m['role'].upper()}: {m['content']}" for m in turns)


def chat_context(tokenizer: Any, prompt: str | list[dict[str, Any]]) -> str:
    """``chat(x)``: the prompt rendered with the tokenizer's own chat template, ready for an answer.

    Tokenizers without a chat template get a ChatML fallback.
    """
    messages = as_messages(prompt)
    template = getattr(tokenizer, "chat_template", None) or FALLBACK_CHAT_TEMPLATE
    return tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=True
    )


def end_of_turn(tokenizer: Any) -> str:
    """The text that closes an assistant turn in the tokenizer's chat template."""
    template = getattr(tokenizer, "chat_template", None) or FALLBACK_CHAT_TEMPLATE
    if "<|im_end|>" in template:
        return "<|im_end|>"
    if "<|eot_id|>" in template:
        return "<|eot_id|>"
    if "<end_of_turn>" in template:
        return "<end_of_turn>"
    return tokenizer.eos_token or ""


_PROBE_ANSWER = "aries-lit probe answer"


def assistant_turn_end(tokenizer: Any) -> str:
    """Everything the chat template writes after an assistant answer (``"<|im_end|>\\n"`` for ChatML).

    ``chat(x) + y + assistant_turn_end`` is then the whole rendered conversation, which is what a
    reward model reads (:class:`~aries_lit.selectors.reward_model.RewardModelSelector` renders
    ``x`` and ``y`` with the chat template and scores its last token). Found by rendering a probe
    conversation; a template whose rendering of the answer does not follow its generation prompt
    gets :func:`end_of_turn`.
    """
    template = getattr(tokenizer, "chat_template", None) or FALLBACK_CHAT_TEMPLATE
    messages = [{"role": "user", "content": "question"}]
    try:
        head = tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=True
        )
        full = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": _PROBE_ANSWER}],
            chat_template=template,
            tokenize=False,
        )
    except Exception:  # noqa: BLE001 - any template error: fall back to the end-of-turn marker
        return end_of_turn(tokenizer)
    if not (isinstance(head, str) and isinstance(full, str) and full.startswith(head + _PROBE_ANSWER)):
        return end_of_turn(tokenizer)
    return full[len(head) + len(_PROBE_ANSWER) :] or end_of_turn(tokenizer)
