"""Preference pairs in TRL's interchange format, loaded into a ``datasets.Dataset`` and validated.

Input records carry ``prompt``, ``chosen`` and ``rejected`` (TRL's preference format):

* ``prompt``: a string, or a list of chat messages ``{"role", "content"}``; a role is one of
  ``system``, ``user``, ``assistant`` (:data:`aries_lit.prompts.templates.CHAT_ROLES`; other roles,
  ``tool`` included, are refused with reason ``unknown_role``);
* ``chosen`` / ``rejected``: a string, or a list of chat messages whose last one is the
  assistant's answer. Messages before the final one are the dialogue context: they must be
  the same in ``chosen`` and ``rejected``, and when ``prompt`` is absent they *are* the
  prompt (TRL's "implicit prompt" form, e.g. ``[user, assistant]`` dialogues).
* HH-RLHF dialogues (``format="hh"``, or auto-detected when a record has no ``prompt`` and its
  ``chosen`` is a string with a ``"\\n\\nAssistant:"`` turn): the prompt is everything up to the
  last ``"\\n\\nAssistant:"``, turned into alternating user/assistant messages; chosen and
  rejected are the final assistant turns, stripped. The two dialogues must share that prefix.

The result has one row per pair and these columns (Arrow cannot hold "a string or a list" in
one column, so a chat prompt is stored twice):

======================  =====================================================================
``id``                  str; the ``id_field`` value when the record has one, else
                        ``"{stem}-{record number}"`` (``pairs.jsonl`` -> ``pairs-17``)
``prompt``              str; a plain prompt as given, a chat prompt flattened by
                        :func:`aries_lit.prompts.templates.prompt_text` (the question ``x``
                        that fills the refinement template)
``prompt_messages``     str | None; a chat prompt as a JSON list of messages, None for plain
                        prompts. ``aries_lit.data.views.record_prompt(row)`` gives back the
                        prompt in its original form (messages when present, else the text)
``chosen``/``rejected`` str; the final assistant text
(other fields)          kept as they are (the same type in every record)
======================  =====================================================================

Reloading a file written from such a dataset (``to_json``/``save_to_disk``) gives the same rows:
a record's ``prompt_messages`` JSON, when present, is its prompt.

Sources: ``.jsonl``/``.ndjson``, ``.json`` (a list, ``{"data": [...]}`` or ``{split: [...]}``),
either gzipped (``.jsonl.gz``, ``.json.gz``), ``.parquet``, a folder written by
``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk`` (``split`` picks one), or a hub
dataset name (``datasets.load_dataset(name, split=split)``).

Every problem raises :class:`~aries_lit.data.errors.DataValidationError` naming the source, the
1-based record number (for JSON Lines, the line number; blank lines are skipped but counted)
and the field. With ``on_error="skip"``, bad records are dropped and counted by
:attr:`DataValidationError.reason` (:func:`load_preference_records_with_stats`).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

from aries_lit.assets import resolve_data_path
from aries_lit.data.errors import DataValidationError
from aries_lit.prompts.templates import CHAT_ROLES, prompt_text

log = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
JSON_SUFFIXES = (".json", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)
_ALL_SUFFIXES = JSONL_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES

FORMATS = ("auto", "trl", "hh")
ON_ERROR = ("raise", "skip")

HH_ASSISTANT = "\n\nAssistant:"
HH_HUMAN = "\n\nHuman:"

_CORE_FEATURES = {
    "id": datasets.Value("string"),
    "prompt": datasets.Value("string"),
    "prompt_messages": datasets.Value("string"),
    "chosen": datasets.Value("string"),
    "rejected": datasets.Value("string"),
}
_RESERVED = {"id", "prompt", "prompt_messages", "chosen", "rejected"}


# --------------------------------------------------------------------------- reading raw records


@dataclass
class RecordStream:
    """Raw records of one source: ``items`` yields ``(record number, dict)``, or
    ``(record number, DataValidationError)`` for a record that could not be read (a bad JSON
    line, non-UTF-8 bytes, a record that is not an object); problems with the whole source
    raise at once."""

    source: str
    stem: str
    items: Iterator[tuple[int, dict[str, Any] | DataValidationError]]


def _strip_suffix(name: str) -> str | None:
    lower = name.lower()
    for suffix in sorted(_ALL_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _looks_local(source: str) -> bool:
    return (
        _strip_suffix(os.path.basename(source)) is not None
        or source.startswith((".", "/", "~"))
        or source.endswith((".gz", ".csv", ".txt", ".arrow"))
        or source.count("/") > 1
        or (os.sep != "/" and os.sep in source)
    )


def open_records(source: str | os.PathLike, *, split: str = "train") -> RecordStream:
    """Open a file, a ``save_to_disk`` folder or a hub dataset as a stream of raw records."""
    src = str(source)
    path = Path(resolve_data_path(src)).expanduser()
    if path.is_dir():
        return RecordStream(src, *_open_saved(src, path, split))
    if path.is_file():
        name = path.name
        lower = name.lower()
        stem = _strip_suffix(name)
        if lower.endswith(JSONL_SUFFIXES):
            return RecordStream(src, stem, _iter_jsonl_file(src, path))
        if lower.endswith(JSON_SUFFIXES):
            return RecordStream(src, stem, _iter_json_file(src, path, split))
        if lower.endswith(PARQUET_SUFFIXES):
            dataset = datasets.Dataset.from_parquet(str(path))
            return RecordStream(src, stem, _iter_arrow(src, dataset))
        raise DataValidationError(
            src,
            None,
            None,
            "unknown file type; expected .jsonl, .json (optionally .gz), .parquet, "
            "or a folder written by datasets' save_to_disk",
            reason="unknown_format",
        )
    if _looks_local(src):
        raise FileNotFoundError(f"{src}: no such file or folder")
    # A hub dataset name ("org/name"); not reachable in tests, kept for users who have a hub.
    dataset = datasets.load_dataset(src, split=split)
    stem = f"{src.rstrip('/').rsplit('/', 1)[-1]}-{split}"
    return RecordStream(src, stem, _iter_arrow(src, dataset))


def _open_saved(src: str, path: Path, split: str) -> tuple[str, Iterator]:
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataValidationError(
            src,
            None,
            None,
            f"not a folder written by datasets' save_to_disk ({err})",
            reason="unknown_format",
        ) from err
    stem = path.resolve().name
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataValidationError(
                src,
                None,
                None,
                f"no split '{split}'; the folder has {', '.join(loaded)}",
                reason="missing_split",
            )
        return f"{stem}-{split}", _iter_arrow(src, loaded[split])
    return stem, _iter_arrow(src, loaded)


def _iter_arrow(src: str, dataset: datasets.Dataset) -> Iterator[tuple[int, dict[str, Any]]]:
    yield from enumerate(dataset, start=1)


def _iter_jsonl_file(src: str, path: Path) -> Iterator:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            yield from _iter_json_lines(src, handle)
    except (gzip.BadGzipFile, EOFError) as err:
        raise DataValidationError(
            src, None, None, f"not a readable gzip file ({err})", reason="bad_file"
        ) from err


def _iter_json_lines(src: str, lines: Iterable[bytes]) -> Iterator:
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            yield (
                number,
                DataValidationError(
                    src,
                    number,
                    None,
                    f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})",
                    reason="not_utf8",
                ),
            )
            continue
        if number == 1:
            text = text.lstrip("\ufeff")
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            yield (
                number,
                DataValidationError(
                    src, number, None, f"invalid JSON: {err.msg} (column {err.colno})", reason="bad_json"
                ),
            )
            continue
        if not isinstance(obj, dict):
            yield (
                number,
                DataValidationError(
                    src,
                    number,
                    None,
                    f"a record must be a JSON object, got {_kind(obj)}",
                    reason="wrong_type",
                ),
            )
            continue
        yield number, obj


def _iter_json_file(src: str, path: Path, split: str) -> Iterator:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (gzip.BadGzipFile, EOFError) as err:
        raise DataValidationError(
            src, None, None, f"not a readable gzip file ({err})", reason="bad_file"
        ) from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataValidationError(
            src,
            None,
            None,
            f"not valid UTF-8 (byte 0x{data[err.start]:02x} on line {line})",
            reason="not_utf8",
        ) from err
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # JSON Lines saved as .json (as datasets' to_json writes it)
            yield from _iter_json_lines(src, data.splitlines())
            return
        raise DataValidationError(
            src,
            None,
            None,
            f"invalid JSON: {err.msg} (line {err.lineno}, column {err.colno})",
            reason="bad_json",
        ) from err
    if isinstance(obj, dict):
        for key in ("data", split):
            if isinstance(obj.get(key), list):
                obj = obj[key]
                break
    if not isinstance(obj, list):
        raise DataValidationError(
            src,
            None,
            None,
            'a .json file must hold a list of records or {"data": [...]}',
            reason="wrong_type",
        )
    for number, record in enumerate(obj, start=1):
        if not isinstance(record, dict):
            yield (
                number,
                DataValidationError(
                    src,
                    number,
                    None,
                    f"a record must be a JSON object, got {_kind(record)}",
                    reason="wrong_type",
                ),
            )
            continue
        yield number, record


# --------------------------------------------------------------------------- HH-RLHF dialogues


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


# --------------------------------------------------------------------------- normalizing one record


class _Invalid(Exception):
    def __init__(self, field: str | None, message: str, reason: str) -> None:
        super().__init__(message)
        self.field, self.message, self.reason = field, message, reason


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _messages(value: list, field: str) -> list[dict[str, Any]]:
    out = []
    for i, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            raise _Invalid(
                field,
                f"message {i} must be an object with 'role' and 'content', got {_kind(message)}",
                "wrong_type",
            )
        for key in ("role", "content"):
            if message.get(key) is None:
                raise _Invalid(field, f"message {i} has no '{key}'", "wrong_type")
            if not isinstance(message[key], str):
                raise _Invalid(
                    field, f"message {i}: '{key}' must be a string, got {_kind(message[key])}", "wrong_type"
                )
        if message["role"] not in CHAT_ROLES:
            raise _Invalid(
                field,
                f"message {i} has unknown role '{message['role']}'; allowed roles: {', '.join(CHAT_ROLES)}",
                "unknown_role",
            )
        out.append(dict(message))
    return out


def _required(record: dict[str, Any], field: str) -> Any:
    if field not in record:
        raise _Invalid(field, "missing field", "missing_field")
    if record[field] is None:
        raise _Invalid(field, "is null", "missing_field")
    return record[field]


def _response(record: dict[str, Any], field: str) -> tuple[list[dict[str, Any]], str]:
    """``(context messages before the answer, final assistant text)``."""
    value = _required(record, field)
    if isinstance(value, str):
        context, text = [], value
    elif isinstance(value, list):
        messages = _messages(value, field)
        if not messages:
            raise _Invalid(field, "empty response (no messages)", "empty_response")
        if messages[-1]["role"] != "assistant":
            raise _Invalid(
                field,
                f"the last message must be the assistant's answer, got role '{messages[-1]['role']}'",
                "wrong_type",
            )
        context, text = messages[:-1], messages[-1]["content"]
    else:
        raise _Invalid(
            field, f"expected a string or a list of chat messages, got {_kind(value)}", "wrong_type"
        )
    if not text.strip():
        raise _Invalid(field, "empty response", "empty_response")
    return context, text


def _prompt(value: Any, field: str) -> tuple[str, str | None]:
    if isinstance(value, str):
        if not value.strip():
            raise _Invalid(field, "empty prompt", "empty_prompt")
        return value, None
    if isinstance(value, list):
        messages = _messages(value, field)
        if not messages:
            raise _Invalid(field, "empty prompt (no messages)", "empty_prompt")
        return prompt_text(messages), json.dumps(messages, ensure_ascii=False)
    raise _Invalid(field, f"expected a string or a list of chat messages, got {_kind(value)}", "wrong_type")


def _from_trl(record: dict[str, Any]) -> tuple[str, str | None, str, str]:
    chosen_context, chosen = _response(record, "chosen")
    rejected_context, rejected = _response(record, "rejected")
    if chosen_context and rejected_context and chosen_context != rejected_context:
        raise _Invalid(
            "rejected", "chosen and rejected differ before their final assistant turn", "prefix_mismatch"
        )
    stored = record.get("prompt_messages")
    if isinstance(stored, str) and stored.strip():  # a row written by this loader
        try:
            prompt_value = json.loads(stored)
        except json.JSONDecodeError as err:
            raise _Invalid("prompt_messages", f"invalid JSON: {err.msg}", "wrong_type") from err
        if not isinstance(prompt_value, list):
            raise _Invalid(
                "prompt_messages",
                f"expected a JSON list of messages, got {_kind(prompt_value)}",
                "wrong_type",
            )
        prompt, messages = _prompt(prompt_value, "prompt_messages")
    elif record.get("prompt") is not None:
        prompt, messages = _prompt(record["prompt"], "prompt")
    elif chosen_context:  # TRL's implicit prompt: the shared dialogue before the answers
        prompt, messages = _prompt(chosen_context, "chosen")
    else:
        raise _Invalid("prompt", "missing field" if "prompt" not in record else "is null", "missing_field")
    return prompt, messages, chosen, rejected


def _from_hh(record: dict[str, Any]) -> tuple[str, str | None, str, str]:
    parts = {}
    for field_name in ("chosen", "rejected"):
        value = _required(record, field_name)
        if not isinstance(value, str):
            raise _Invalid(
                field_name, f"an HH-RLHF dialogue must be a string, got {_kind(value)}", "wrong_type"
            )
        try:
            parts[field_name] = split_hh_dialogue(value)
        except ValueError as err:
            raise _Invalid(field_name, f"not an HH-RLHF dialogue: {err}", "not_hh_dialogue") from err
    (prefix, chosen), (rejected_prefix, rejected) = parts["chosen"], parts["rejected"]
    if prefix != rejected_prefix:
        raise _Invalid(
            "rejected",
            "the dialogue before the last '\\n\\nAssistant:' differs from the chosen one's",
            "prefix_mismatch",
        )
    for field_name, text in (("chosen", chosen), ("rejected", rejected)):
        if not text:
            raise _Invalid(field_name, "empty response", "empty_response")
    try:
        messages = hh_to_messages(prefix)
    except ValueError as err:
        raise _Invalid("chosen", f"not an HH-RLHF dialogue: {err}", "not_hh_dialogue") from err
    prompt, messages_json = _prompt(messages, "chosen")
    return prompt, messages_json, chosen, rejected


def _is_hh(record: dict[str, Any]) -> bool:
    chosen = record.get("chosen")
    return record.get("prompt") is None and isinstance(chosen, str) and HH_ASSISTANT in chosen


def _normalize_record(
    record: dict[str, Any], *, number: int, stem: str, format: str = "auto", id_field: str = "id"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(core columns, extra fields)`` of one record; raises ``_Invalid`` (internal)."""
    rid = record.get(id_field)
    if rid is None:
        rid = f"{stem}-{number}"
    elif isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise _Invalid(id_field, f"an id must be a string or an integer, got {_kind(rid)}", "wrong_type")
    else:
        rid = str(rid)
        if not rid.strip():
            raise _Invalid(id_field, "empty id", "empty_id")
    use_hh = format == "hh" or (format == "auto" and _is_hh(record))
    prompt, messages, chosen, rejected = _from_hh(record) if use_hh else _from_trl(record)
    if chosen.strip() == rejected.strip():
        raise _Invalid("rejected", "chosen and rejected are identical", "identical_responses")
    core = {"id": rid, "prompt": prompt, "prompt_messages": messages, "chosen": chosen, "rejected": rejected}
    extras = {k: v for k, v in record.items() if k not in _RESERVED and k != id_field}
    return core, extras


# --------------------------------------------------------------------------- loading


@dataclass
class LoadedRecords:
    """A loaded preference dataset with the records skipped (by reason) and their errors.

    ``records_seen`` counts the records read from the source, valid or not (those before ``offset``
    included; reading stops once ``limit`` valid records are kept), ``records_in_range`` those of
    them after ``offset``: an empty dataset from a source with ``records_seen == 0`` means the
    source holds no records at all.
    """

    dataset: datasets.Dataset
    skipped: Counter = field(default_factory=Counter)
    errors: list[DataValidationError] = field(default_factory=list)
    records_seen: int = 0
    records_in_range: int = 0

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got '{value}'")


def load_preference_records_with_stats(
    source: str | os.PathLike,
    *,
    format: str = "auto",
    split: str = "train",
    limit: int | None = None,
    id_field: str = "id",
    on_error: str = "raise",
    offset: int = 0,
) -> LoadedRecords:
    """Load and validate preference pairs (see the module docstring for formats and columns).

    ``offset`` skips the records numbered ``1..offset`` unread (record numbers as in error messages:
    for JSON Lines the line number), so ``offset``/``limit`` pick a range of the file in its order;
    ``limit`` keeps at most that many valid records after it (reading stops there). With
    ``on_error="skip"`` invalid records are left out and counted in ``skipped`` by reason
    (``missing_field``, ``wrong_type``, ``unknown_role``, ``empty_response``, ``identical_responses``,
    ``prefix_mismatch``, ``bad_json``, ``not_utf8``, ``duplicate_id``, ...); problems with the
    whole source (an unreadable file, a column whose type changes between records) still raise.
    """
    _check_choice("format", format, FORMATS)
    _check_choice("on_error", on_error, ON_ERROR)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0; got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0; got {offset}")
    stream = open_records(source, split=split)
    src = stream.source
    result = LoadedRecords(dataset=None)  # type: ignore[arg-type]

    def fail(err: DataValidationError) -> None:
        if on_error == "raise":
            raise err
        result.skipped[err.reason] += 1
        result.errors.append(err)

    rows: list[dict[str, Any]] = []
    extra_keys: dict[str, None] = {}
    first_seen: dict[str, int] = {}
    for number, item in stream.items:
        if limit is not None and len(rows) >= limit:
            break
        result.records_seen += 1
        if number <= offset:
            continue
        result.records_in_range += 1
        if isinstance(item, DataValidationError):
            fail(item)
            continue
        try:
            core, extras = _normalize_record(
                item, number=number, stem=stream.stem, format=format, id_field=id_field
            )
        except _Invalid as bad:
            fail(DataValidationError(src, number, bad.field, bad.message, reason=bad.reason))
            continue
        rid = core["id"]
        if rid in first_seen:
            fail(
                DataValidationError(
                    src,
                    number,
                    id_field,
                    f"duplicate id '{rid}' (first at record {first_seen[rid]})",
                    reason="duplicate_id",
                )
            )
            continue
        first_seen[rid] = number
        extra_keys.update(dict.fromkeys(extras))
        rows.append({**core, **extras})
    result.dataset = _to_dataset(src, rows, list(extra_keys))
    if result.skipped:
        log.warning("%s: skipped %d invalid records (%s)", src, result.num_skipped, dict(result.skipped))
    return result


def load_preference_records(
    source: str | os.PathLike,
    *,
    format: str = "auto",
    split: str = "train",
    limit: int | None = None,
    id_field: str = "id",
    on_error: str = "raise",
    offset: int = 0,
) -> datasets.Dataset:
    """Load and validate preference pairs into a ``datasets.Dataset``; raises
    :class:`DataValidationError` on the first bad record (``on_error="skip"`` drops bad records
    with a logged warning; use :func:`load_preference_records_with_stats` for their counts)."""
    return load_preference_records_with_stats(
        source, format=format, split=split, limit=limit, id_field=id_field, on_error=on_error, offset=offset
    ).dataset


def _to_dataset(src: str, rows: list[dict[str, Any]], extra_keys: list[str]) -> datasets.Dataset:
    columns = {key: [row.get(key) for row in rows] for key in [*_CORE_FEATURES, *extra_keys]}
    arrow_fields = []
    for key in extra_keys:
        try:
            arrow_fields.append(pa.field(key, pa.array(columns[key]).type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as err:
            kinds = sorted({_kind(v) for v in columns[key] if v is not None})
            raise DataValidationError(
                src,
                None,
                key,
                f"values of different types across records ({', '.join(kinds)}): {err}",
                reason="mixed_types",
            ) from err
    features = datasets.Features(
        {**_CORE_FEATURES, **datasets.Features.from_arrow_schema(pa.schema(arrow_fields))}
    )
    return datasets.Dataset.from_dict(columns, features=features)


__all__ = [
    "FORMATS",
    "LoadedRecords",
    "RecordStream",
    "hh_to_messages",
    "load_preference_records",
    "load_preference_records_with_stats",
    "open_records",
    "split_hh_dialogue",
]
