"""Group data for GRPO / Dr. GRPO / RLOO: records of one prompt with several scored completions.

A group record (written by ``aries-lit select --selector '{class_path: group, init_args: {scorer:
verifier}}'``, :class:`aries_lit.selectors.group.GroupSelector`; other fields are ignored)::

    {"id": "q17", "prompt": "..." | [chat messages], "completions": ["...", ...], "rewards": [1.0, 0.0, ...]}

Each completion becomes one row ``chat(x) + y_k + <end of turn>``, the context masked out of the
loss, exactly as a direct view of :mod:`aries_lit.data.views` (same chat rendering, same end-of-turn
marker, same left truncation of the context and cut of the completion to ``max_length``). A batch
holds ``batch_size`` *groups*, ``N`` rows in all, with ``rewards`` ``[N]`` and ``group_index`` ``[N]``.

For ARIES + GRPO (:class:`~aries_lit.losses.ARIESLoss` with ``grpo`` as its preference) the loss also
reads the refinement views of one pair per group: the record's ``chosen`` / ``rejected`` (the group's
best and worst answers, as the ``group`` selector writes them) are tokenized into those views by the
same :class:`~aries_lit.data.views.ViewTokenizer` a pair record goes through (the ``template``
option's refinement template ``z``: ``refine_l`` = ``chat(z(x, y_l))``, ``refine_w`` =
``chat(z(x, y_w))``), and collated by the pair collators into a second sub-batch ``pair_views``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch
from datasets import Dataset

from aries_lit.core.chat import chat_context, end_of_turn
from aries_lit.core.errors import DataValidationError, FileContentError
from aries_lit.data.collator import SharedContextCollator, ViewCollator, pad_rows
from aries_lit.data.data_stats import report_data_stats
from aries_lit.data.sampler import ResumableLoaders
from aries_lit.data.views import ViewTokenizer
from aries_lit.prompts.templates import RefinementTemplate
from aries_lit.records import ON_ERROR, RecordStream, open_records

__all__ = [
    "GroupCollator",
    "GroupDataModule",
    "check_group_record",
    "checked_records",
    "tokenize_completions",
]


def checked_records(
    stream: RecordStream,
    split: str,
    check: Callable[[str, int, dict[str, Any]], None],
    stats: Counter,
    offset: int = 0,
    on_error: str = "raise",
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(record number, record)`` of the valid records of ``stream`` past the first ``offset``.

    ``check(source, number, record)`` raises :class:`DataValidationError` for a bad record (as do
    unreadable ones): ``on_error="raise"`` lets it through, ``"skip"`` counts it in ``stats`` as
    ``<split>/skipped_invalid/<reason>`` and goes on.
    """
    for number, record in stream.items:
        if number <= offset:
            continue
        try:
            if isinstance(record, DataValidationError):
                raise record
            check(stream.source, number, record)
        except DataValidationError as err:
            if on_error == "raise":
                raise
            stats[f"{split}/skipped_invalid/{getattr(err, 'reason', None) or 'invalid'}"] += 1
            continue
        yield number, record


def tokenize_completions(
    tokenizer: Any,
    prompt: str | list[dict[str, Any]],
    completions: list[str],
    max_length: int,
    max_context_length: int,
    stats: Counter,
    split: str,
) -> tuple[list[int], list[list[int]]]:
    """``(chat(x) ids, [y_k + <end of turn> ids, ...])``, as a direct view tokenizes: a context over
    ``max_context_length`` tokens cut from the left, each completion cut to fit ``max_length``
    behind it; every cut counted in ``stats`` (``<split>/truncated/context``, ``.../completion``)."""
    eot = end_of_turn(tokenizer)
    ctx = tokenizer(chat_context(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    if len(ctx) > max_context_length:
        stats[f"{split}/truncated/context"] += 1
        ctx = ctx[-max_context_length:]
    room = max_length - len(ctx)
    out = []
    for text in completions:
        ids = tokenizer(text + eot, add_special_tokens=False)["input_ids"]
        if len(ids) > room:
            stats[f"{split}/truncated/completion"] += 1
            ids = ids[:room]
        out.append(ids)
    return ctx, out


def check_group_record(source: str, number: int, record: dict[str, Any], pair: bool = False) -> None:
    """Raise :class:`DataValidationError` (file, record, field) unless ``record`` is a group record;
    with ``pair`` it must also carry the group's best and worst answers (``chosen``, ``rejected``)."""

    def bad(field: str, message: str, reason: str = "wrong_type") -> DataValidationError:
        return DataValidationError(source, number, field, message, reason=reason)

    for key in ("id", "prompt", "completions", "rewards"):
        if key not in record:
            raise bad(
                key, f"missing field '{key}' (a group record has id, prompt, completions, rewards)", "missing"
            )
    if not isinstance(record["prompt"], (str, list)):
        raise bad("prompt", "must be a string or a list of chat messages")
    completions, rewards = record["completions"], record["rewards"]
    if (
        not isinstance(completions, list)
        or not completions
        or not all(isinstance(c, str) for c in completions)
    ):
        raise bad("completions", "must be a non-empty list of strings")
    if not isinstance(rewards, list) or len(rewards) != len(completions):
        raise bad("rewards", f"must be a list of {len(completions)} numbers, one per completion")
    for r in rewards:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
            raise bad("rewards", f"must hold finite numbers, got {r!r}")
    for key in ("chosen", "rejected") if pair else ():
        if key not in record:
            raise bad(
                key,
                f"missing field '{key}' (the refine term reads the group's best and worst answers, "
                "chosen and rejected, as the group selector writes them)",
                "missing",
            )
        if not isinstance(record[key], str) or not record[key]:
            raise bad(key, "must be a non-empty string")


class GroupDataModule(ResumableLoaders, L.LightningDataModule):
    """Group records (``id``, ``prompt``, ``completions``, ``rewards``) for a group loss (``grpo``),
    and for ARIES + GRPO also their ``chosen`` / ``rejected`` (the refinement views' ``y_w``, ``y_l``).

    Args:
        train: a JSONL/JSON/Parquet file or a ``datasets`` folder of group records.
        val: the same for validation (optional).
        max_length, max_context_length: a context longer than ``max_context_length`` tokens is cut
            from the left, a completion cut to fit ``max_length`` behind it (both counted).
        batch_size: groups per batch (each completion is one row).
        limit, offset: skip the first ``offset`` records, then use at most ``limit``.
        on_error: ``raise`` stops at the first invalid record (file, record number, field);
            ``skip`` drops it and counts it in ``data_stats.json``.
        min_group_size: groups with fewer completions are dropped (counted; an advantage needs 2).
        template: the refinement template ``z`` (``paper``, ``analysis``, ``short`` or a text, as
            :class:`~aries_lit.data.PreferenceDataModule`'s; an ``iterate`` run's ``template:`` fills
            it). Used only when the loss reads refinement views (ARIES + GRPO), built from each
            record's ``chosen`` (``y_w``) and ``rejected`` (``y_l``), which are then required.
        shared_context: collate those views with each context once and both responses after it
            (:class:`~aries_lit.data.collator.SharedContextCollator`; ``false``: one row per view).
    """

    def __init__(
        self,
        train: str,
        val: str | None = None,
        max_length: int = 1024,
        max_context_length: int = 768,
        batch_size: int = 2,
        val_batch_size: int | None = None,
        limit: int | None = None,
        offset: int = 0,
        on_error: str = "raise",
        shuffle: bool = True,
        seed: int = 0,
        num_workers: int = 0,
        min_group_size: int = 2,
        template: str = "paper",
        shared_context: bool = True,
    ) -> None:
        super().__init__()
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, not '{on_error}'")
        if max_context_length >= max_length:
            raise ValueError(
                f"max_context_length ({max_context_length}) must be below max_length ({max_length})"
            )
        self.save_hyperparameters()
        self.template = RefinementTemplate.from_spec(template)
        self.tokenizer: Any = None
        self.views: tuple[str, ...] = ()
        self.train_data: Dataset | None = None
        self.val_data: Dataset | None = None
        self.stats: Counter = Counter()

    def configure(self, tokenizer: Any, views: tuple[str, ...] = (), response_end: str | None = None) -> None:
        """Set the tokenizer and the pair views the loss reads besides the group rows (done from the
        LightningModule inside a Trainer; ARIES + GRPO: the refinement views). ``response_end`` is not
        used: every response closes with the chat template's end of turn, as the group rows do."""
        self.tokenizer, self.views = tokenizer, tuple(views)

    def load_records(self, source: str, split: str) -> list[dict[str, Any]]:
        hp = self.hparams
        out: list[dict[str, Any]] = []
        records = checked_records(
            open_records(source), split, self._check_record, self.stats, hp.offset, hp.on_error
        )
        if hp.limit is not None and hp.limit <= 0:
            records = iter(())
        for _, record in records:
            if len(record["completions"]) < hp.min_group_size:
                self.stats[f"{split}/skipped/too_few_completions"] += 1
                continue
            out.append(record)
            if hp.limit is not None and len(out) >= hp.limit:
                break  # before reading further: a bad record past the limit is never checked
        if not out:
            raise FileContentError(
                f"{source}: no usable group record (see data_stats.json counts: {dict(self.stats)})"
            )
        return out

    def _check_record(self, source: str, number: int, record: dict[str, Any]) -> None:
        check_group_record(source, number, record, pair=bool(self.views))

    def pair_tokenizer(self) -> ViewTokenizer:
        """The pair records' view tokenizer, for the views of each group's ``(chosen, rejected)``."""
        hp = self.hparams
        return ViewTokenizer(self.tokenizer, self.views, self.template, hp.max_length, hp.max_context_length)

    def tokenize(self, records: list[dict[str, Any]], split: str) -> Dataset:
        hp = self.hparams
        pairs = self.pair_tokenizer() if self.views else None
        rows = []
        for record in records:
            ctx, completions = tokenize_completions(
                self.tokenizer,
                record["prompt"],
                record["completions"],
                hp.max_length,
                hp.max_context_length,
                self.stats,
                split,
            )
            row = {
                "id": str(record["id"]),
                "ctx": ctx,
                "completions": completions,
                "rewards": record["rewards"],
            }
            if pairs is not None:
                features = pairs(record)
                assert features is not None  # left truncation never drops a record
                row.update(features)
            rows.append(row)
            self.stats[f"{split}/groups"] += 1
            self.stats[f"{split}/completions"] += len(completions)
        for key, value in (pairs.stats if pairs is not None else {}).items():
            self.stats[f"{split}/pairs/{key}"] += value
        return Dataset.from_list(rows)

    def setup(self, stage: str | None = None) -> None:
        if self.train_data is not None:
            return
        module = getattr(self.trainer, "lightning_module", None) if self.trainer else None
        if self.tokenizer is None and module is not None:
            self.configure(module.tokenizer, module.views)
        if self.tokenizer is None:
            raise RuntimeError("GroupDataModule needs a tokenizer: use it in a Trainer or call configure()")
        hp = self.hparams
        self.train_data = self.tokenize(self.load_records(hp.train, "train"), "train")
        if hp.val:
            self.val_data = self.tokenize(self.load_records(hp.val, "val"), "val")
        report_data_stats(self.trainer, self.stats, "group data")

    def collator(self) -> GroupCollator:
        return GroupCollator(
            self.tokenizer.pad_token_id, views=self.views, shared_context=self.hparams.shared_context
        )


class GroupCollator:
    """Groups -> one row per completion: ``input_ids``, ``attention_mask``, ``loss_mask`` ``[N, T]``
    (right-padded, ``loss_mask`` True on completion tokens), ``rewards`` ``[N]`` float32,
    ``group_index`` ``[N]`` (the group's position in the batch), ``batch_size`` (groups), ``ids``.

    With ``views`` (ARIES + GRPO's refinement views) it adds ``pair_views``: the batch of the pair
    collator (:class:`~aries_lit.data.collator.SharedContextCollator`, or
    :class:`~aries_lit.data.collator.ViewCollator` without ``shared_context``) over the same groups,
    one pair per group, for :meth:`aries_lit.modules.PolicyModule.view_logps`. A second sub-batch,
    not more rows of the first: a refinement context holds a whole previous answer and the template,
    so its rows are longer than the group rows, and shared-context packing needs its 4-D mask.
    """

    def __init__(
        self,
        pad_token_id: int,
        pad_to_multiple_of: int = 8,
        views: tuple[str, ...] = (),
        shared_context: bool = True,
    ) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        pair_cls = SharedContextCollator if shared_context else ViewCollator
        self.pair_collator = pair_cls(tuple(views), pad_token_id, pad_to_multiple_of) if views else None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows, rewards, group_index = [], [], []
        for b, f in enumerate(features):
            for ids, reward in zip(f["completions"], f["rewards"]):
                rows.append((f["ctx"], ids))
                rewards.append(float(reward))
                group_index.append(b)
        input_ids, attention_mask, loss_mask = pad_rows(rows, self.pad_token_id, self.pad_to_multiple_of)
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "loss_mask": loss_mask,
            "rewards": torch.tensor(rewards, dtype=torch.float32),
            "group_index": torch.tensor(group_index, dtype=torch.long),
            "batch_size": len(features),
            "ids": [f.get("id") for f in features],
        }
        if self.pair_collator is not None:
            batch["pair_views"] = self.pair_collator(features)
        return batch
