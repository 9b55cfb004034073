"""Preference data: records (validated TRL/HH formats, :mod:`aries_lit.records`) -> views ->
collated batches -> the DataModule. (The DataModule that collects its own pairs first is
:class:`aries_lit.pipeline.collecting.CollectingDataModule`; group records for GRPO are
:class:`GroupDataModule`'s, unpaired labelled completions for KTO :class:`UnpairedDataModule`'s.)"""

from aries_lit.core.errors import DataValidationError
from aries_lit.data.collator import ViewCollator
from aries_lit.data.datamodule import PreferenceDataModule
from aries_lit.data.groups import GroupCollator, GroupDataModule
from aries_lit.data.unpaired import UnpairedCollator, UnpairedDataModule
from aries_lit.data.views import ViewTokenizer
from aries_lit.records import LoadedRecords, load_preference_records, load_preference_records_with_stats

__all__ = [
    "DataValidationError",
    "GroupCollator",
    "GroupDataModule",
    "LoadedRecords",
    "PreferenceDataModule",
    "UnpairedCollator",
    "UnpairedDataModule",
    "ViewCollator",
    "ViewTokenizer",
    "load_preference_records",
    "load_preference_records_with_stats",
]
