"""HH-RLHF dialogues (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``): the final assistant turn and the
dialogue before it, as chat messages."""

from __future__ import annotations

from typing import Any

HH_ASSISTANT = "\n\nAssistant:"
HH_HUMAN = "\n\nHuman:"


def split_hh_dialogue(text: str) -> tuple[str, str]:
    """``(everything before the last "\\n\\nAssistant:", the final assistant turn stripped)``."""
    index = text.rfind(HH_ASSISTANT)
    if index < 0:
        raise ValueError("no '\\n\\nAssistant:' turn")
    return text[:index], text[index + len(HH_ASSISTANT) :].strip()


def hh_to_messages(text: str) -> list[dict[str, str]]:
    """An HH-RLHF dialogue (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``) as chat messages.

    Turns are stripped; consecutive turns of one speaker are joined with a blank line so the
    roles alternate (as chat templates require).
    """
    if text.startswith("Human:"):
        text = "\n\n" + text
    messages: list[dict[str, str]] = []
    markers = ((HH_HUMAN, "user"), (HH_ASSISTANT, "assistant"))
    positions = sorted((i, marker, role) for marker, role in markers for i in _find_all(text, marker))
    if not positions or text[: positions[0][0]].strip():
        raise ValueError("an HH-RLHF dialogue must start with '\\n\\nHuman:'")
    for k, (start, marker, role) in enumerate(positions):
        end = positions[k + 1][0] if k + 1 < len(positions) else len(text)
        content = text[start + len(marker) : end].strip()
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] = f"{messages[-1]['content']}\n\n{content}".strip()
        else:
            messages.append({"role": role, "content": content})
    return messages


def _find_all(text: str, marker: str) -> list[int]:
    out, start = [], text.find(marker)
    while start >= 0:
        out.append(start)
        start = text.find(marker, start + len(marker))
    return out


def is_hh_record(record: dict[str, Any]) -> bool:
    """A record without a prompt whose ``chosen`` is a string with an HH assistant turn."""
    chosen = record.get("chosen")
    return record.get("prompt") is None and isinstance(chosen, str) and HH_ASSISTANT in chosen


__all__ = ["HH_ASSISTANT", "HH_HUMAN", "hh_to_messages", "is_hh_record", "split_hh_dialogue"]
