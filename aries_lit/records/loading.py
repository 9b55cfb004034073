"""Preference pairs in TRL's interchange format, loaded into a ``datasets.Dataset`` and validated
(input formats: :mod:`aries_lit.records.trl_format`; sources: :mod:`aries_lit.records.readers`).

The result has one row per pair and these columns (Arrow cannot hold "a string or a list" in
one column, so a chat prompt is stored twice):

======================  =====================================================================
``id``                  str; the ``id_field`` value when the record has one, else
                        ``"{stem}-{record number}"`` (``pairs.jsonl`` -> ``pairs-17``)
``prompt``              str; a plain prompt as given, a chat prompt flattened by
                        :func:`aries_lit.core.chat.prompt_text` (the question ``x`` that fills
                        the refinement template)
``prompt_messages``     str | None; a chat prompt as a JSON list of messages, None for plain
                        prompts. ``aries_lit.data.views.record_prompt(row)`` gives back the
                        prompt in its original form (messages when present, else the text)
``chosen``/``rejected`` str; the final assistant text
(other fields)          kept as they are (the same type in every record)
======================  =====================================================================

Reloading a file written from such a dataset (``to_json``/``save_to_disk``) gives the same rows:
a record's ``prompt_messages`` JSON, when present, is its prompt.

Every problem raises :class:`~aries_lit.core.errors.DataValidationError` naming the source, the
1-based record number (for JSON Lines, the line number; blank lines are skipped but counted)
and the field. With ``on_error="skip"``, bad records are dropped and counted by
:attr:`DataValidationError.reason` (:func:`load_preference_records_with_stats`).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import datasets
import pyarrow as pa

from aries_lit.core.errors import DataValidationError
from aries_lit.records.readers import kind_of, open_records
from aries_lit.records.trl_format import InvalidRecord, normalize_record

log = logging.getLogger(__name__)

FORMATS = ("auto", "trl", "hh")
ON_ERROR = ("raise", "skip")

_CORE_FEATURES = {
    "id": datasets.Value("string"),
    "prompt": datasets.Value("string"),
    "prompt_messages": datasets.Value("string"),
    "chosen": datasets.Value("string"),
    "rejected": datasets.Value("string"),
}


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
            core, extras = normalize_record(
                item, number=number, stem=stream.stem, format=format, id_field=id_field
            )
        except InvalidRecord as bad:
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
            kinds = sorted({kind_of(v) for v in columns[key] if v is not None})
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
    "ON_ERROR",
    "LoadedRecords",
    "load_preference_records",
    "load_preference_records_with_stats",
]
