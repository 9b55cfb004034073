"""Unpaired data for KTO: single completions labelled desirable or undesirable (TRL's unpaired format).

An unpaired record (TRL ``KTOTrainer``'s unpaired dataset; written by ``aries-lit select --selector
'{class_path: unpaired, init_args: {scorer: verifier}}'``, :class:`aries_lit.selectors.unpaired.
UnpairedSelector`; other fields are ignored)::

    {"id": "q17#2" (optional), "prompt": "..." | [chat messages],
     "completion": "..." | [{"role": "assistant", "content": "..."}], "label": true | false}

Each record becomes one row ``chat(x) + y + <end of turn>``, the context masked out of the loss,
exactly as a direct view of :mod:`aries_lit.data.views` (the same chat rendering, end-of-turn
marker, left truncation of the context and cut of the completion to ``max_length``;
:func:`~aries_lit.data.groups.tokenize_completions`). A batch holds ``batch_size`` examples, any mix
of labels, as ``[N, T]`` rows with ``labels`` ``[N]``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import lightning as L
import torch
from datasets import Dataset

from aries_lit.core.errors import DataValidationError, FileContentError
from aries_lit.data.collator import pad_rows
from aries_lit.data.data_stats import report_data_stats
from aries_lit.data.groups import checked_records, tokenize_completions
from aries_lit.data.reference_cache import attach_module_reference
from aries_lit.data.sampler import ResumableLoaders
from aries_lit.records import ON_ERROR, open_records
from aries_lit.records.readers import kind_of
from aries_lit.records.trl_format import InvalidRecord, check_messages, check_prompt

__all__ = ["UNPAIRED_VIEW", "UnpairedCollator", "UnpairedDataModule", "check_unpaired_record"]

#: the one row kind of an unpaired batch (``batch["views"]``, the reference cache's ``ref.completion``
#: column); not a pair view of :mod:`aries_lit.core.view_names`
UNPAIRED_VIEW = "completion"
REQUIRED = ("prompt", "completion", "label")


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """The answer of a checked record's ``completion`` (a string or one assistant message)."""
    return completion if isinstance(completion, str) else completion[0]["content"]


def check_unpaired_record(source: str, number: int, record: dict[str, Any]) -> None:
    """Raise :class:`DataValidationError` (file, record, field) unless ``record`` is an unpaired record."""

    def bad(field: str, message: str, reason: str = "wrong_type") -> DataValidationError:
        return DataValidationError(source, number, field, message, reason=reason)

    for key in REQUIRED:
        if record.get(key) is None:
            what = "missing field" if key not in record else "is null"
            raise bad(key, f"{what} (an unpaired record has prompt, completion, label)", "missing_field")
    rid = record.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int)) or not str(rid).strip()):
        raise bad("id", f"an id must be a non-empty string or an integer, got {rid!r}")
    try:
        check_prompt(record["prompt"], "prompt")
        completion = record["completion"]
        if isinstance(completion, list):
            messages = check_messages(completion, "completion")
            if len(messages) != 1 or messages[0]["role"] != "assistant":
                roles = [m["role"] for m in messages]
                raise InvalidRecord(
                    "completion", f"must be one assistant message, got roles {roles}", "wrong_type"
                )
            completion = messages[0]["content"]
        elif not isinstance(completion, str):
            raise InvalidRecord(
                "completion",
                f"expected a string or one assistant message, got {kind_of(completion)}",
                "wrong_type",
            )
        if not completion.strip():
            raise InvalidRecord("completion", "empty completion", "empty_response")
    except InvalidRecord as err:
        raise bad(err.field or "prompt", err.message, err.reason) from None
    if not isinstance(record["label"], bool):
        raise bad("label", f"must be true (desirable) or false (undesirable), got {record['label']!r}")


class UnpairedDataModule(ResumableLoaders, L.LightningDataModule):
    """Unpaired records (``prompt``, ``completion``, ``label``, optional ``id``) for an unpaired loss
    (``kto``), trained by :class:`aries_lit.modules.UnpairedPolicyModule`.

    Args:
        train: a JSONL/JSON/Parquet file or a ``datasets`` folder of unpaired records.
        val: the same for validation (optional).
        max_length, max_context_length: a context longer than ``max_context_length`` tokens is cut
            from the left, a completion cut to fit ``max_length`` behind it (both counted).
        batch_size: examples per batch (one row each).
        limit, offset: skip the first ``offset`` records, then use at most ``limit``.
        on_error: ``raise`` stops at the first invalid record (file, record number, field);
            ``skip`` drops it and counts it in ``data_stats.json``.
        allow_one_label: train on a set whose examples are all desirable or all undesirable. Off by
            default, such a set is refused: KTO's weights (Eq. 8) balance the two kinds, and a
            one-sided set is most often a selection gone wrong (a verifier that found no correct
            answer). TRL accepts it; so does this with ``allow_one_label: true`` (batches without one
            kind are fine either way).
        reference_cache_dir: where ``precompute_reference`` keeps the reference log-probs (default
            ``<default_root_dir>/reference_cache``).

    ``data_stats.json`` counts ``<split>/examples``, ``/desirable``, ``/undesirable``, truncations
    and skipped records.
    """

    def __init__(
        self,
        train: str,
        val: str | None = None,
        max_length: int = 1024,
        max_context_length: int = 768,
        batch_size: int = 8,
        val_batch_size: int | None = None,
        limit: int | None = None,
        offset: int = 0,
        on_error: str = "raise",
        shuffle: bool = True,
        seed: int = 0,
        num_workers: int = 0,
        allow_one_label: bool = False,
        reference_cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, not '{on_error}'")
        if max_context_length >= max_length:
            raise ValueError(
                f"max_context_length ({max_context_length}) must be below max_length ({max_length})"
            )
        self.save_hyperparameters()
        self.tokenizer: Any = None
        self.train_data: Dataset | None = None
        self.val_data: Dataset | None = None
        self.stats: Counter = Counter()

    def configure(self, tokenizer: Any, views: tuple[str, ...] = (), response_end: str | None = None) -> None:
        """Set the tokenizer (done from the LightningModule inside a Trainer)."""
        self.tokenizer = tokenizer

    def load_records(self, source: str, split: str) -> list[dict[str, Any]]:
        """The valid records of ``source`` (``id`` filled in as ``<file stem>-<record number>``)."""
        hp = self.hparams
        stream = open_records(source)
        out: list[dict[str, Any]] = []
        records = checked_records(stream, split, check_unpaired_record, self.stats, hp.offset, hp.on_error)
        if hp.limit is not None and hp.limit <= 0:
            records = iter(())
        for number, record in records:
            rid = record.get("id")
            out.append({**record, "id": f"{stream.stem}-{number}" if rid is None else str(rid)})
            if hp.limit is not None and len(out) >= hp.limit:
                break  # before reading further: a bad record past the limit is never checked
        if not out:
            raise FileContentError(
                f"{source}: no usable unpaired record (see data_stats.json counts: {dict(self.stats)})"
            )
        desirable = sum(r["label"] for r in out)
        if split == "train" and not hp.allow_one_label and desirable in (0, len(out)):
            kind = "undesirable" if desirable else "desirable"
            raise FileContentError(
                f"{source}: all {len(out)} training examples are labelled "
                f"{'desirable' if desirable else 'undesirable'}, none {kind}; KTO weighs both kinds "
                "(check the selection, or set data.init_args.allow_one_label: true to train anyway)"
            )
        return out

    def tokenize(self, records: list[dict[str, Any]], split: str) -> Dataset:
        hp = self.hparams
        rows = []
        for record in records:
            ctx, (completion,) = tokenize_completions(
                self.tokenizer,
                record["prompt"],
                [completion_text(record["completion"])],
                hp.max_length,
                hp.max_context_length,
                self.stats,
                split,
            )
            rows.append({"id": record["id"], "ctx": ctx, "completion": completion, "label": record["label"]})
            self.stats[f"{split}/examples"] += 1
            self.stats[f"{split}/{'desirable' if record['label'] else 'undesirable'}"] += 1
        return Dataset.from_list(rows)

    def setup(self, stage: str | None = None) -> None:
        if self.train_data is not None:
            return
        module = getattr(self.trainer, "lightning_module", None) if self.trainer else None
        # UnpairedPolicyModule's flag, not its class: data may not import modules (tests/test_layers.py)
        if module is not None and not getattr(module, "accepts_unpaired_loss", False):
            raise ValueError(
                f"UnpairedDataModule feeds an unpaired loss, which {type(module).__name__} does not "
                "train: use model.class_path aries_lit.modules.UnpairedPolicyModule"
            )
        if self.tokenizer is None and module is not None:
            self.configure(module.tokenizer)
        if self.tokenizer is None:
            raise RuntimeError(
                "UnpairedDataModule needs a tokenizer: use it in a Trainer or call configure()"
            )
        hp = self.hparams
        self.train_data = self.tokenize(self.load_records(hp.train, "train"), "train")
        if hp.val:
            self.val_data = self.tokenize(self.load_records(hp.val, "val"), "val")
        report_data_stats(self.trainer, self.stats, "unpaired data")

    def collator(self) -> UnpairedCollator:
        return UnpairedCollator(self.tokenizer.pad_token_id)

    def attach_reference(self, module: Any) -> None:
        """Add reference log-prob columns computed by ``module.reference_logps`` (cached on disk,
        keyed by the data and the reference's weights; see ``attach_module_reference``)."""
        attach_module_reference(self, module, (UNPAIRED_VIEW,))


class UnpairedCollator:
    """Examples -> ``input_ids``, ``attention_mask``, ``loss_mask`` ``[N, T]`` (right-padded,
    ``loss_mask`` True on completion tokens), ``labels`` ``[N]`` bool, ``batch_size`` (``N``),
    ``ids``, ``views`` (``["completion"]``) and, when the reference is cached, ``ref.completion`` ``[N]``."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int = 8) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [(f["ctx"], f["completion"]) for f in features]
        input_ids, attention_mask, loss_mask = pad_rows(rows, self.pad_token_id, self.pad_to_multiple_of)
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "loss_mask": loss_mask,
            "labels": torch.tensor([bool(f["label"]) for f in features], dtype=torch.bool),
            "views": [UNPAIRED_VIEW],
            "batch_size": len(features),
            "ids": [f.get("id") for f in features],
        }
        key = f"ref.{UNPAIRED_VIEW}"
        if features and all(key in f for f in features):
            batch[key] = torch.tensor([float(f[key]) for f in features], dtype=torch.float32)
        return batch
