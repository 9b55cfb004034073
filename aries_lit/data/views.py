"""Views: ``(context, response)`` token sequences of a preference pair.

A pair ``(x, y_w, y_l)`` has three contexts and two responses (names in
:mod:`aries_lit.core.view_names`):

* ``direct``   = ``chat(x)``
* ``refine_l`` = ``chat(z(x, y_l))`` (the template filled with the rejected answer)
* ``refine_w`` = ``chat(z(x, y_w))``

and a view ``"<context>/<response>"`` is one of their six combinations. Contexts and
responses are tokenized separately, so the response tokens (and their log-probs) are the
same in every view, and the context tokens are masked out of the labels. A response ends with
the chat template's end-of-turn marker (``<|im_end|>``), or with ``response_end`` when given (the
reward module gives the template's whole closing text, so a view is the rendered conversation).

Chat template (``chat_template``): ``always`` (the default) renders every context with the
tokenizer's chat template, a plain-string prompt as one user turn; ``auto`` does what TRL's
``DPOTrainer`` does: a prompt given as chat messages is rendered, a plain-string prompt is used
as it is (its refinement contexts too) and its responses end with the tokenizer's EOS token;
``never`` uses the plain text of every prompt (messages joined by :func:`prompt_text`) with EOS.

Truncation is explicit: a context longer than ``max_context_length`` is cut from the left
(``truncation="left"``) or the record dropped (``"drop"``); responses are cut to fit
``max_length`` behind the longest context the record needs. Every cut is counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aries_lit.core.chat import chat_context, end_of_turn, prompt_text
from aries_lit.core.view_names import DIRECT, REFINE_L, REFINE_W, split_view
from aries_lit.prompts.templates import RefinementTemplate

#: ``chat_template`` options of :class:`ViewTokenizer` (and the data modules)
CHAT_TEMPLATE_MODES = ("always", "auto", "never")


def record_prompt(record: dict[str, Any]) -> str | list[dict[str, Any]]:
    """The prompt of a loaded record: chat messages when it has them, else its text."""
    messages = record.get("prompt_messages")
    if messages:
        return json.loads(messages) if isinstance(messages, str) else messages
    return record["prompt"]


def needed_parts(views: Iterable[str]) -> tuple[list[str], list[str]]:
    """The contexts and responses that a set of views reads."""
    contexts, responses = [], []
    for view in views:
        ctx, resp = split_view(view)
        if ctx not in contexts:
            contexts.append(ctx)
        if resp not in responses:
            responses.append(resp)
    return contexts, responses


@dataclass
class ViewTokenizer:
    """Tokenizes the contexts and responses a loss needs, with a counted truncation policy."""

    tokenizer: Any
    views: tuple[str, ...]
    template: RefinementTemplate
    max_length: int = 1024
    max_context_length: int = 768
    truncation: str = "left"
    response_end: str | None = None
    chat_template: str = "always"
    stats: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.truncation not in ("left", "drop"):
            raise ValueError(f"truncation must be 'left' or 'drop', not '{self.truncation}'")
        if self.chat_template not in CHAT_TEMPLATE_MODES:
            raise ValueError(
                f"chat_template must be one of {', '.join(CHAT_TEMPLATE_MODES)}, not '{self.chat_template}'"
            )
        if self.response_end is not None and self.chat_template != "always":
            raise ValueError(
                "reward models read the rendered conversation, as the reward_model selector and the "
                f"judge do: chat_template must be 'always', not '{self.chat_template}'"
            )
        if self.max_context_length >= self.max_length:
            raise ValueError(
                f"max_context_length ({self.max_context_length}) must be below max_length ({self.max_length})"
            )
        self.contexts, self.responses = needed_parts(self.views)
        self._eot = self.response_end if self.response_end is not None else end_of_turn(self.tokenizer)

    def uses_chat_template(self, prompt: str | list[dict[str, Any]]) -> bool:
        """Whether ``prompt``'s contexts are rendered with the chat template (see the module doc)."""
        mode = self.chat_template
        return mode == "always" or (mode == "auto" and not isinstance(prompt, str))

    def context_texts(self, record: dict[str, Any]) -> dict[str, str]:
        prompt = record_prompt(record)
        question = prompt_text(prompt)
        templated = self.uses_chat_template(prompt)
        render = (lambda p: chat_context(self.tokenizer, p)) if templated else prompt_text
        texts = {}
        for ctx in self.contexts:
            if ctx == DIRECT:
                texts[ctx] = render(prompt)
            else:
                previous = record["rejected"] if ctx == REFINE_L else record["chosen"]
                texts[ctx] = render(self.template.fill(question, previous))
        return texts

    def response_end_text(self, record: dict[str, Any]) -> str:
        """What closes a response: the template's end of turn, or EOS for a plain-text context."""
        if self.uses_chat_template(record_prompt(record)):
            return self._eot
        return self.tokenizer.eos_token or ""

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def __call__(self, record: dict[str, Any]) -> dict[str, list[int]] | None:
        """``{"ctx.<context>": ids, "resp.<response>": ids}``, or None when the record is dropped."""
        out: dict[str, list[int]] = {}
        self.stats["records"] += 1
        for ctx, text in self.context_texts(record).items():
            ids = self._ids(text)
            if len(ids) > self.max_context_length:
                if self.truncation == "drop":
                    self.stats["dropped/context_too_long"] += 1
                    return None
                self.stats[f"truncated/context/{ctx}"] += 1
                ids = ids[-self.max_context_length :]
            out[f"ctx.{ctx}"] = ids
        room = self.max_length - max(len(v) for v in out.values())
        end = self.response_end_text(record)
        for resp in self.responses:
            ids = self._ids(record[resp] + end)
            if len(ids) > room:
                self.stats[f"truncated/response/{resp}"] += 1
                ids = ids[:room]
            out[f"resp.{resp}"] = ids
        return out


def view_sequence(features: dict[str, list[int]], view: str) -> tuple[list[int], list[int]]:
    """``(context ids, response ids)`` of one view of a tokenized record."""
    ctx, resp = split_view(view)
    return features[f"ctx.{ctx}"], features[f"resp.{resp}"]


__all__ = [
    "CHAT_TEMPLATE_MODES",
    "DIRECT",
    "REFINE_L",
    "REFINE_W",
    "ViewTokenizer",
    "needed_parts",
    "record_prompt",
    "view_sequence",
]
