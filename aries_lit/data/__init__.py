"""Preference data: records (validated TRL/HH formats) -> views -> collated batches -> DataModules."""

from aries_lit.data.collator import ViewCollator
from aries_lit.data.collecting import CollectingDataModule
from aries_lit.data.datamodule import PreferenceDataModule
from aries_lit.data.errors import DataValidationError
from aries_lit.data.records import LoadedRecords, load_preference_records, load_preference_records_with_stats
from aries_lit.data.views import ViewTokenizer

__all__ = [
    "CollectingDataModule",
    "DataValidationError",
    "LoadedRecords",
    "PreferenceDataModule",
    "ViewCollator",
    "ViewTokenizer",
    "load_preference_records",
    "load_preference_records_with_stats",
]
