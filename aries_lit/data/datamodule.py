"""The DataModule of preference training: records -> tokenized views -> batches."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
from datasets import Dataset

from aries_lit.core.errors import DataValidationError, FileContentError
from aries_lit.data.collator import SharedContextCollator, ViewCollator
from aries_lit.data.data_stats import report_data_stats
from aries_lit.data.reference_cache import attach_module_reference
from aries_lit.data.sampler import ResumableLoaders
from aries_lit.data.views import CHAT_TEMPLATE_MODES, ViewTokenizer, view_sequence
from aries_lit.prompts.templates import RefinementTemplate


class PreferenceDataModule(ResumableLoaders, L.LightningDataModule):
    """TRL-format preference pairs (``prompt``/``chosen``/``rejected``) for any loss.

    The views to build come from the LightningModule's loss, and the tokenizer from the
    LightningModule, so one config names the data once.

    Args:
        train: a JSONL/JSON/Parquet file, a ``datasets`` folder, or a hub dataset name.
        val: the same for validation (optional); or ``val_fraction`` of ``train``.
        format: ``auto``, ``trl`` or ``hh`` (HH-RLHF dialogues).
        split: the split of a hub dataset or ``datasets`` folder (e.g. ``train_prefs``).
        template: refinement template name (``paper``, ``analysis``, ``short``) or text.
        max_length, max_context_length, truncation: see :mod:`aries_lit.data.views`.
        batch_size: pairs per batch (each pair becomes one row per view).
        offset, limit: skip the records numbered ``1..offset`` (file order; for JSON Lines the
            line number), then use at most ``limit`` valid records; both apply to ``train`` and ``val``.
            With ``val_fraction`` the validation pairs come from the same range, disjoint from training.
        on_error: ``raise`` (default) stops at the first invalid record with its file, record
            number and field; ``skip`` drops invalid records and counts them in ``data_stats.json``.
        shared_context: run each context once with all its responses on top (a 4-D attention
            mask keeps them apart): ARIES's six views cost three contexts. ``false`` runs every view
            as its own row (needed for attention kernels without custom masks, e.g. flash-attn 2).
        chat_template: ``always`` (default) renders every prompt with the tokenizer's chat
            template, a plain string as one user turn; ``auto`` follows TRL's ``DPOTrainer``
            (messages rendered, a plain-string prompt used as it is, responses closed by EOS);
            ``never`` uses plain text throughout (see :mod:`aries_lit.data.views`). Generation
            always uses the chat template, so the ARIES loop keeps ``always``.
        reference_cache_dir: where precomputed reference log-probs are kept
            (default: ``<trainer.default_root_dir>/reference_cache``).
    """

    def __init__(
        self,
        train: str,
        val: str | None = None,
        format: str = "auto",
        split: str = "train",
        template: str = "paper",
        max_length: int = 1024,
        max_context_length: int = 768,
        truncation: str = "left",
        batch_size: int = 4,
        val_batch_size: int | None = None,
        val_fraction: float = 0.0,
        limit: int | None = None,
        on_error: str = "raise",
        shuffle: bool = True,
        seed: int = 0,
        num_workers: int = 0,
        reference_cache_dir: str | None = None,
        shared_context: bool = True,
        offset: int = 0,
        chat_template: str = "always",
    ) -> None:
        super().__init__()
        if chat_template not in CHAT_TEMPLATE_MODES:
            modes = ", ".join(CHAT_TEMPLATE_MODES)
            raise ValueError(f"chat_template must be one of {modes}, not '{chat_template}'")
        self.save_hyperparameters()
        self.template = RefinementTemplate.from_spec(template)
        self.tokenizer: Any = None
        self.views: tuple[str, ...] = ()
        self.response_end: str | None = None
        self.train_data: Dataset | None = None
        self.val_data: Dataset | None = None
        self.stats: Counter = Counter()

    # ------------------------------------------------------------------ loading
    def load_records(self, source: str) -> Dataset:
        from aries_lit.records import load_preference_records_with_stats

        loaded = load_preference_records_with_stats(
            source,
            format=self.hparams.format,
            split=self.hparams.split,
            limit=self.hparams.limit,
            on_error=self.hparams.on_error,
            offset=self.hparams.get("offset", 0),
        )
        for reason, count in loaded.skipped.items():
            self.stats[f"skipped_invalid/{reason}"] += count
        if len(loaded.dataset) == 0:
            raise FileContentError(self._no_records_message(str(source), loaded))
        return loaded.dataset

    def _no_records_message(self, source: str, loaded: Any) -> str:
        """Why ``source`` gave no pair: it holds no records, ``offset``/``limit`` leave none, or
        (``on_error: skip``) every record was invalid."""
        from aries_lit.core.provenance import SELECTION_STATS_FILE, selection_stats
        from aries_lit.records import JSONL_SUFFIXES

        hp = self.hparams
        offset = hp.get("offset", 0)
        if hp.limit == 0:
            return f"{source}: limit is 0, so no record is used; raise limit or leave it unset"
        if loaded.records_seen == 0:
            message = f"{source} holds no records"
            if source.lower().endswith(JSONL_SUFFIXES):
                message += " (the file is empty or has only blank lines)"
            stats = selection_stats(source)
            if stats is not None:
                selector = str(stats.get("selector", "?")).split("(", 1)[0]
                skipped = ", ".join(
                    f"{k.split('/', 1)[1]} {v}" for k, v in stats.items() if k.startswith("skipped/") and v
                )
                message += (
                    f"; `aries-lit select` wrote it: its selector ({selector}) made no pair from "
                    f"{stats.get('groups', '?')} prompts"
                    + (f" ({skipped})" if skipped else "")
                    + f"; see {Path(stats.get('pairs_file') or source).with_name(SELECTION_STATS_FILE)}"
                )
            return message
        if loaded.records_in_range == 0:
            return (
                f"{source}: no record after offset {offset} (it holds {loaded.records_seen} records); "
                "lower offset"
            )
        reasons = ", ".join(f"{reason} {count}" for reason, count in loaded.skipped.most_common())
        first = ""
        if loaded.errors:  # the first error, without the file name said already
            err = loaded.errors[0]
            first = f"; the first: {str(err).removeprefix(f'{err.path}, ')}"
        return (
            f"{source}: none of its {loaded.records_in_range} records is valid, all were skipped "
            f"(on_error: skip; {reasons}){first}"
        )

    def configure(self, tokenizer: Any, views: tuple[str, ...], response_end: str | None = None) -> None:
        """Set the tokenizer and views explicitly (done from the LightningModule inside a Trainer);
        ``response_end`` replaces the end-of-turn text that closes each response (see
        :class:`~aries_lit.data.views.ViewTokenizer`)."""
        self.tokenizer, self.views, self.response_end = tokenizer, tuple(views), response_end

    def _margin(self, record: dict[str, Any], split: str) -> float | None:
        """The pair's ``margin`` field as a float (None when absent or null); a non-number raises or,
        with ``on_error: skip``, gives NaN: the pair is dropped (``skipped_invalid/bad_margin``)."""
        value = record.get("margin")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            if self.hparams.on_error == "skip":
                self.stats["skipped_invalid/bad_margin"] += 1
                return math.nan
            source = self.hparams.train if split == "train" else self.hparams.val or self.hparams.train
            raise DataValidationError(
                source,
                None,
                "margin",
                f"pair '{record['id']}': margin must be a finite number, got {value!r}",
                reason="wrong_type",
            )
        return float(value)

    def _tokenize(self, records: Dataset, split: str) -> Dataset:
        hp = self.hparams
        tok = ViewTokenizer(
            self.tokenizer,
            self.views,
            self.template,
            hp.max_length,
            hp.max_context_length,
            hp.truncation,
            response_end=self.response_end,
            chat_template=self.hparams.get("chat_template", "always"),
        )
        has_margin = "margin" in records.column_names
        rows = []
        bad_margins = 0
        for record in records:
            margin = self._margin(record, split) if has_margin else None
            if margin is not None and math.isnan(margin):
                bad_margins += 1
                continue
            features = tok(record)
            if features is not None:
                # the tokens one epoch trains on: every view's context and response (the study's
                # compute figure; a shared context is still counted once per view)
                self.stats[f"{split}/view_tokens"] += sum(
                    len(c) + len(r) for c, r in (view_sequence(features, v) for v in self.views)
                )
                rows.append({"id": record["id"], **features, **({"margin": margin} if has_margin else {})})
        for key, value in tok.stats.items():
            self.stats[f"{split}/{key}"] += value
        if not rows:
            source = hp.train if split == "train" else hp.val or f"{hp.train} (val_fraction)"
            dropped = tok.stats["dropped/context_too_long"]
            if not dropped:
                raise FileContentError(
                    f"{source}: no {split} record left: all {len(records)} records have a margin that "
                    "is not a finite number (skipped with on_error: skip)"
                )
            margins = f", {bad_margins} for a bad margin" if bad_margins else ""
            raise FileContentError(
                f"{source}: no {split} record survived truncation: {dropped} of {len(records)} records "
                f"dropped because a context is longer than max_context_length {hp.max_context_length} "
                f"(truncation: drop){margins}; raise max_context_length (below max_length "
                f"{hp.max_length}) or use truncation: left"
            )
        return Dataset.from_list(rows)

    def setup(self, stage: str | None = None) -> None:
        if self.train_data is not None:
            return
        module = getattr(self.trainer, "lightning_module", None) if self.trainer else None
        if self.tokenizer is None and module is not None:
            self.configure(module.tokenizer, module.views, getattr(module, "response_end", None))
        if self.tokenizer is None:
            raise RuntimeError(
                "PreferenceDataModule needs a tokenizer and views: use it in a Trainer or call configure()"
            )
        hp = self.hparams
        records = self.load_records(hp.train)
        val_records = self.load_records(hp.val) if hp.val else None
        if val_records is None and hp.val_fraction > 0:
            split = records.train_test_split(test_size=hp.val_fraction, seed=hp.seed)
            records, val_records = split["train"], split["test"]
        self.train_data = self._tokenize(records, "train")
        self.val_data = self._tokenize(val_records, "val") if val_records is not None else None
        report_data_stats(self.trainer, self.stats, "data")

    # ------------------------------------------------------------------ reference cache
    def collator(self) -> ViewCollator | SharedContextCollator:
        cls = SharedContextCollator if self.hparams.shared_context else ViewCollator
        return cls(self.views, self.tokenizer.pad_token_id)

    def attach_reference(self, module: Any) -> None:
        """Add reference log-prob columns computed by ``module.reference_logps`` (cached on disk,
        keyed by the data and the reference's weights; see ``attach_module_reference``)."""
        attach_module_reference(self, module, self.views)

    # the loaders: ResumableLoaders (train resumes mid-epoch; validation in order)
