"""The base of a prompt set and the ``prompt_sources`` registry (:mod:`aries_lit.prompts.sources`
registers the built-in sets, :mod:`aries_lit.prompts.arithmetic` the procedural one)."""

from __future__ import annotations

from typing import Any

from aries_lit.core.registry import Registry


class PromptSource:
    """A set of prompts: :meth:`load` returns ``[{"id", "prompt", "answer"?, ...}]``."""

    registry_name: str = ""

    def load(self) -> list[dict[str, Any]]:
        raise NotImplementedError


PROMPT_SOURCES: Registry[PromptSource] = Registry("prompt_sources", PromptSource)


__all__ = ["PROMPT_SOURCES", "PromptSource"]
