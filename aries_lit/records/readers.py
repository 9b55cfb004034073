"""Raw records of a source, whatever its file format, before any validation.

Sources: ``.jsonl``/``.ndjson``, ``.json`` (a list, ``{"data": [...]}`` or ``{split: [...]}``),
either gzipped (``.jsonl.gz``, ``.json.gz``), ``.parquet``, a folder written by
``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk`` (``split`` picks one), or a hub
dataset name (``datasets.load_dataset(name, split=split)``). A path ``aries_lit:<file>`` names a
data set shipped in the package (:mod:`aries_lit.assets`).

Records are numbered from 1 (for JSON Lines, the line number; blank lines are skipped but
counted); a record that cannot be read is a :class:`~aries_lit.core.errors.DataValidationError` in
the stream, a source that cannot be read raises one.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from aries_lit.assets import resolve_data_path
from aries_lit.core.errors import DataValidationError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
JSON_SUFFIXES = (".json", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)
_ALL_SUFFIXES = JSONL_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES


def kind_of(value: Any) -> str:
    """What a JSON value is, for messages: ``"an object"``, ``"a list"``, ``"null"``, ``"int"``..."""
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


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
                    f"a record must be a JSON object, got {kind_of(obj)}",
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
                    f"a record must be a JSON object, got {kind_of(record)}",
                    reason="wrong_type",
                ),
            )
            continue
        yield number, record


__all__ = [
    "JSONL_SUFFIXES",
    "JSON_SUFFIXES",
    "PARQUET_SUFFIXES",
    "RecordStream",
    "kind_of",
    "open_records",
]
