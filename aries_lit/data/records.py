"""Validated preference records: moved to :mod:`aries_lit.records` (below the prompt sources,
which read the same files); the names stay importable from here."""

from aries_lit.records import (
    FORMATS,
    HH_ASSISTANT,
    HH_HUMAN,
    JSON_SUFFIXES,
    JSONL_SUFFIXES,
    ON_ERROR,
    PARQUET_SUFFIXES,
    LoadedRecords,
    RecordStream,
    hh_to_messages,
    load_preference_records,
    load_preference_records_with_stats,
    open_records,
    split_hh_dialogue,
)

__all__ = [
    "FORMATS",
    "HH_ASSISTANT",
    "HH_HUMAN",
    "JSONL_SUFFIXES",
    "JSON_SUFFIXES",
    "ON_ERROR",
    "PARQUET_SUFFIXES",
    "LoadedRecords",
    "RecordStream",
    "hh_to_messages",
    "load_preference_records",
    "load_preference_records_with_stats",
    "open_records",
    "split_hh_dialogue",
]
