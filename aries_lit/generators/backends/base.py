"""The generation backend contract: rendered contexts in, completions out.

A backend turns already chat-formatted context strings into completions. Generators
(sequential refinement, parallel sampling), the LLM judge and evaluation all use it, so
``transformers`` and ``vllm`` are interchangeable everywhere by config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample. ``temperature == 0`` means greedy decoding."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Completion:
    """One generated answer: its text, token counts and why it stopped (``"stop"`` or ``"length"``)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class Backend:
    """Base class of generation backends (registered in ``aries_lit.generators.BACKENDS``).

    ``model`` is a hub name or an HF-format folder. ``generate`` receives contexts already
    rendered with the chat template (``aries_lit.prompts.templates.chat_context``) and
    returns one :class:`Completion` per context, in order.
    """

    def __init__(self, model: str) -> None:
        self.model = model

    @property
    def tokenizer(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def generate(self, contexts: list[str], settings: SamplingSettings) -> list[Completion]:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Free the model (called between rounds so the next round can load its own)."""
