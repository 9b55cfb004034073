"""Preference and prompt records read from files and validated, below every package that uses
them (prompt sources, the training data): no torch, no Lightning.

- :mod:`~aries_lit.records.readers`: the file formats (JSON Lines, JSON, gzip, Parquet,
  ``save_to_disk`` folders, hub names) as a stream of raw numbered records.
- :mod:`~aries_lit.records.hh`: HH-RLHF dialogues split into chat messages.
- :mod:`~aries_lit.records.trl_format`: one record checked against TRL's preference format.
- :mod:`~aries_lit.records.loading`: a whole source loaded into a ``datasets.Dataset``, bad
  records raised or skipped and counted.

Bad data raises :class:`~aries_lit.core.errors.DataValidationError` naming the file, record and field.
``aries_lit.data`` re-exports the loaders (``from aries_lit.data import load_preference_records``).
"""

from aries_lit.records.hh import HH_ASSISTANT, HH_HUMAN, hh_to_messages, split_hh_dialogue
from aries_lit.records.loading import (
    FORMATS,
    ON_ERROR,
    LoadedRecords,
    load_preference_records,
    load_preference_records_with_stats,
)
from aries_lit.records.readers import (
    JSON_SUFFIXES,
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    RecordStream,
    open_records,
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
