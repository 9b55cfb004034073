"""Chat formatting shared by every layer: the roles a message may have, a prompt as messages or
as plain text, and rendering with a tokenizer's chat template (ChatML fallback).

Bottom layer: imports nothing from aries_lit (``aries_lit.prompts.templates`` re-exports these
names beside the refinement templates).
"""

from __future__ import annotations

from typing import Any

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


__all__ = [
    "CHAT_ROLES",
    "FALLBACK_CHAT_TEMPLATE",
    "as_messages",
    "assistant_turn_end",
    "chat_context",
    "end_of_turn",
    "prompt_text",
]
