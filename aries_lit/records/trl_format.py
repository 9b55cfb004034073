"""One record in TRL's preference format (or an HH-RLHF dialogue) checked and turned into the
loaded columns ``id``, ``prompt``, ``prompt_messages``, ``chosen``, ``rejected``.

Input records carry ``prompt``, ``chosen`` and ``rejected`` (TRL's preference format):

* ``prompt``: a string, or a list of chat messages ``{"role", "content"}``; a role is one of
  ``system``, ``user``, ``assistant`` (:data:`aries_lit.core.chat.CHAT_ROLES`; other roles,
  ``tool`` included, are refused with reason ``unknown_role``);
* ``chosen`` / ``rejected``: a string, or a list of chat messages whose last one is the
  assistant's answer. Messages before the final one are the dialogue context: they must be
  the same in ``chosen`` and ``rejected``, and when ``prompt`` is absent they *are* the
  prompt (TRL's "implicit prompt" form, e.g. ``[user, assistant]`` dialogues).
* HH-RLHF dialogues (``format="hh"``, or auto-detected when a record has no ``prompt`` and its
  ``chosen`` is a string with a ``"\\n\\nAssistant:"`` turn): the prompt is everything up to the
  last ``"\\n\\nAssistant:"``, turned into alternating user/assistant messages (:mod:`.hh`);
  chosen and rejected are the final assistant turns, stripped. The two dialogues must share
  that prefix.

A bad record raises :class:`InvalidRecord` (field, message, reason); the loader
(:mod:`aries_lit.records.loading`) turns it into a located
:class:`~aries_lit.core.errors.DataValidationError`.
"""

from __future__ import annotations

import json
from typing import Any

from aries_lit.core.chat import CHAT_ROLES, prompt_text
from aries_lit.records.hh import hh_to_messages, is_hh_record, split_hh_dialogue
from aries_lit.records.readers import kind_of

#: the loaded columns; a record's other fields are kept beside them
RESERVED = {"id", "prompt", "prompt_messages", "chosen", "rejected"}


class InvalidRecord(Exception):
    """A bad record: the field at fault, what is wrong and the reason code (no location yet)."""

    def __init__(self, field: str | None, message: str, reason: str) -> None:
        super().__init__(message)
        self.field, self.message, self.reason = field, message, reason


def _messages(value: list, field: str) -> list[dict[str, Any]]:
    out = []
    for i, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            raise InvalidRecord(
                field,
                f"message {i} must be an object with 'role' and 'content', got {kind_of(message)}",
                "wrong_type",
            )
        for key in ("role", "content"):
            if message.get(key) is None:
                raise InvalidRecord(field, f"message {i} has no '{key}'", "wrong_type")
            if not isinstance(message[key], str):
                raise InvalidRecord(
                    field, f"message {i}: '{key}' must be a string, got {kind_of(message[key])}", "wrong_type"
                )
        if message["role"] not in CHAT_ROLES:
            raise InvalidRecord(
                field,
                f"message {i} has unknown role '{message['role']}'; allowed roles: {', '.join(CHAT_ROLES)}",
                "unknown_role",
            )
        out.append(dict(message))
    return out


def _required(record: dict[str, Any], field: str) -> Any:
    if field not in record:
        raise InvalidRecord(field, "missing field", "missing_field")
    if record[field] is None:
        raise InvalidRecord(field, "is null", "missing_field")
    return record[field]


def _response(record: dict[str, Any], field: str) -> tuple[list[dict[str, Any]], str]:
    """``(context messages before the answer, final assistant text)``."""
    value = _required(record, field)
    if isinstance(value, str):
        context, text = [], value
    elif isinstance(value, list):
        messages = _messages(value, field)
        if not messages:
            raise InvalidRecord(field, "empty response (no messages)", "empty_response")
        if messages[-1]["role"] != "assistant":
            raise InvalidRecord(
                field,
                f"the last message must be the assistant's answer, got role '{messages[-1]['role']}'",
                "wrong_type",
            )
        context, text = messages[:-1], messages[-1]["content"]
    else:
        raise InvalidRecord(
            field, f"expected a string or a list of chat messages, got {kind_of(value)}", "wrong_type"
        )
    if not text.strip():
        raise InvalidRecord(field, "empty response", "empty_response")
    return context, text


def _prompt(value: Any, field: str) -> tuple[str, str | None]:
    if isinstance(value, str):
        if not value.strip():
            raise InvalidRecord(field, "empty prompt", "empty_prompt")
        return value, None
    if isinstance(value, list):
        messages = _messages(value, field)
        if not messages:
            raise InvalidRecord(field, "empty prompt (no messages)", "empty_prompt")
        return prompt_text(messages), json.dumps(messages, ensure_ascii=False)
    raise InvalidRecord(
        field, f"expected a string or a list of chat messages, got {kind_of(value)}", "wrong_type"
    )


def _from_trl(record: dict[str, Any]) -> tuple[str, str | None, str, str]:
    chosen_context, chosen = _response(record, "chosen")
    rejected_context, rejected = _response(record, "rejected")
    if chosen_context and rejected_context and chosen_context != rejected_context:
        raise InvalidRecord(
            "rejected", "chosen and rejected differ before their final assistant turn", "prefix_mismatch"
        )
    stored = record.get("prompt_messages")
    if isinstance(stored, str) and stored.strip():  # a row written by this loader
        try:
            prompt_value = json.loads(stored)
        except json.JSONDecodeError as err:
            raise InvalidRecord("prompt_messages", f"invalid JSON: {err.msg}", "wrong_type") from err
        if not isinstance(prompt_value, list):
            raise InvalidRecord(
                "prompt_messages",
                f"expected a JSON list of messages, got {kind_of(prompt_value)}",
                "wrong_type",
            )
        prompt, messages = _prompt(prompt_value, "prompt_messages")
    elif record.get("prompt") is not None:
        prompt, messages = _prompt(record["prompt"], "prompt")
    elif chosen_context:  # TRL's implicit prompt: the shared dialogue before the answers
        prompt, messages = _prompt(chosen_context, "chosen")
    else:
        raise InvalidRecord(
            "prompt", "missing field" if "prompt" not in record else "is null", "missing_field"
        )
    return prompt, messages, chosen, rejected


def _from_hh(record: dict[str, Any]) -> tuple[str, str | None, str, str]:
    parts = {}
    for field_name in ("chosen", "rejected"):
        value = _required(record, field_name)
        if not isinstance(value, str):
            raise InvalidRecord(
                field_name, f"an HH-RLHF dialogue must be a string, got {kind_of(value)}", "wrong_type"
            )
        try:
            parts[field_name] = split_hh_dialogue(value)
        except ValueError as err:
            raise InvalidRecord(field_name, f"not an HH-RLHF dialogue: {err}", "not_hh_dialogue") from err
    (prefix, chosen), (rejected_prefix, rejected) = parts["chosen"], parts["rejected"]
    if prefix != rejected_prefix:
        raise InvalidRecord(
            "rejected",
            "the dialogue before the last '\\n\\nAssistant:' differs from the chosen one's",
            "prefix_mismatch",
        )
    for field_name, text in (("chosen", chosen), ("rejected", rejected)):
        if not text:
            raise InvalidRecord(field_name, "empty response", "empty_response")
    try:
        messages = hh_to_messages(prefix)
    except ValueError as err:
        raise InvalidRecord("chosen", f"not an HH-RLHF dialogue: {err}", "not_hh_dialogue") from err
    prompt, messages_json = _prompt(messages, "chosen")
    return prompt, messages_json, chosen, rejected


def normalize_record(
    record: dict[str, Any], *, number: int, stem: str, format: str = "auto", id_field: str = "id"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(core columns, extra fields)`` of one record; raises ``InvalidRecord`` (internal)."""
    rid = record.get(id_field)
    if rid is None:
        rid = f"{stem}-{number}"
    elif isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise InvalidRecord(
            id_field, f"an id must be a string or an integer, got {kind_of(rid)}", "wrong_type"
        )
    else:
        rid = str(rid)
        if not rid.strip():
            raise InvalidRecord(id_field, "empty id", "empty_id")
    use_hh = format == "hh" or (format == "auto" and is_hh_record(record))
    prompt, messages, chosen, rejected = _from_hh(record) if use_hh else _from_trl(record)
    if chosen.strip() == rejected.strip():
        raise InvalidRecord("rejected", "chosen and rejected are identical", "identical_responses")
    core = {"id": rid, "prompt": prompt, "prompt_messages": messages, "chosen": chosen, "rejected": rejected}
    extras = {k: v for k, v in record.items() if k not in RESERVED and k != id_field}
    return core, extras


def check_prompt(value: Any, field: str = "prompt") -> None:
    """Raise ``InvalidRecord`` unless ``value`` is a TRL prompt: a non-empty string or a non-empty
    list of chat messages (for other record formats built on TRL's, e.g. unpaired KTO records)."""
    _prompt(value, field)


def check_messages(value: list, field: str) -> list[dict[str, Any]]:
    """``value`` checked as chat messages (``role`` one of the chat roles, string ``content``);
    raises ``InvalidRecord`` naming the bad message."""
    return _messages(value, field)


__all__ = ["RESERVED", "InvalidRecord", "check_messages", "check_prompt", "normalize_record"]
