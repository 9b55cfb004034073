"""Collate tokenized pairs into one padded batch holding every view the loss needs.

All views of a batch go through the model in one forward: rows are ordered view-major
(``[view_0 x B, view_1 x B, ...]``), so :func:`split_views` cuts the per-row results back
into ``{view: [B]}``.

Both collators also give ``score_index``: per view (view-major, ``[V*B]``) the flat ``row * T + t``
position of the last token of its ``(context, response)`` sequence that is not the pad token,
where a sequence classifier (a reward model) reads its score, as
``AutoModelForSequenceClassification`` does on a right-padded row; and ``margin`` ``[B]`` when
pairs carry a ``margin`` field (0 for a pair of the batch without one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from aries_lit.data.views import view_sequence


def pad_rows(
    rows: list[tuple[list[int], list[int]]], pad_token_id: int, pad_to_multiple_of: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """``(context, response)`` token rows, right-padded to the longest (rounded up to a multiple of
    ``pad_to_multiple_of``): ``input_ids`` and ``attention_mask`` ``[N, T]`` (long) and ``loss_mask``
    ``[N, T]`` (bool, True on the response tokens)."""
    longest = max(len(c) + len(r) for c, r in rows)
    if pad_to_multiple_of > 1:
        longest = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    n = len(rows)
    input_ids = torch.full((n, longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((n, longest), dtype=torch.long)
    loss_mask = torch.zeros((n, longest), dtype=torch.bool)
    for i, (ctx, resp) in enumerate(rows):
        seq = list(ctx) + list(resp)
        input_ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention_mask[i, : len(seq)] = 1
        loss_mask[i, len(ctx) : len(seq)] = True
    return input_ids, attention_mask, loss_mask

@dataclass
class ViewCollator:
    """Builds ``input_ids``, ``attention_mask`` and ``loss_mask`` (1 on response tokens only)."""

    views: tuple[str, ...]
    pad_token_id: int
    pad_to_multiple_of: int = 8

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows: list[tuple[list[int], list[int]]] = [view_sequence(f, v) for v in self.views for f in features]
        input_ids, attention_mask, loss_mask = pad_rows(rows, self.pad_token_id, self.pad_to_multiple_of)
        longest = input_ids.shape[1]
        score_index = []
        for i, (ctx, resp) in enumerate(rows):
            seq = ctx + resp
            score_index.append(i * longest + max(0, _last_non_pad(seq, 0, len(seq), self.pad_token_id)))
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "loss_mask": loss_mask,
            "score_index": torch.tensor(score_index, dtype=torch.long),
            "views": list(self.views),
            "batch_size": len(features),
            "ids": [f.get("id") for f in features],
        }
        return _with_reference(batch, features, self.views)


def _with_reference(
    batch: dict[str, Any], features: list[dict[str, Any]], views: tuple[str, ...]
) -> dict[str, Any]:
    """Carry cached reference log-probs (``ref.<view>`` columns) and pair margins into the batch."""
    for view in views:
        key = f"ref.{view}"
        if all(key in f for f in features):
            batch[key] = torch.tensor([float(f[key]) for f in features], dtype=torch.float32)
    if any(f.get("margin") is not None for f in features):  # a pair without one counts 0
        batch["margin"] = torch.tensor([float(f.get("margin") or 0.0) for f in features], dtype=torch.float32)
    return batch


def _last_non_pad(seq: list[int], start: int, end: int, pad_token_id: int) -> int:
    """The last position in ``seq[start:end]`` whose token is not ``pad_token_id`` (``-1`` if none)."""
    for t in range(end - 1, start - 1, -1):
        if seq[t] != pad_token_id:
            return t
    return -1


def split_views(values: Tensor, views: list[str], batch_size: int) -> dict[str, Tensor]:
    """``[V*B]`` view-major values -> ``{view: [B]}``."""
    return {v: values[i * batch_size : (i + 1) * batch_size] for i, v in enumerate(views)}


def reference_from_batch(batch: dict[str, Any]) -> dict[str, Tensor] | None:
    """Cached reference log-probs carried by the batch, if every view has them."""
    refs = {v: batch[f"ref.{v}"] for v in batch["views"] if f"ref.{v}" in batch}
    return refs if len(refs) == len(batch["views"]) else None


@dataclass
class SharedContextCollator:
    """One row per (pair, context): the context once, then every response the loss needs after it.

    The two direct views share ``x`` and each pair of refinement views shares ``(x, y_prev, z)``,
    which holds a whole previous answer and the template, so ARIES's six views cost three
    contexts instead of six. A 4-D attention mask keeps the second response from seeing the
    first, and its position ids restart right after the context, so every response is scored
    exactly as in its own sequence.

    Returns ``input_ids``, ``position_ids``, a boolean ``attention_mask`` ``[rows, 1, T, T]``, and
    per scored token the flat index of the predicting position (``pred_index``), its id
    (``target_ids``) and the view-major output slot it sums into (``out_index``).
    """

    views: tuple[str, ...]
    pad_token_id: int
    pad_to_multiple_of: int = 8

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        from aries_lit.data.views import needed_parts  # local: views imports losses

        contexts, _ = needed_parts(self.views)
        by_context = {c: [v for v in self.views if v.split("/")[0] == c] for c in contexts}
        batch_size = len(features)
        slot = {v: i for i, v in enumerate(self.views)}
        rows, row_layout = [], []
        score_index = [0] * (len(self.views) * batch_size)
        for ctx in contexts:
            for b, f in enumerate(features):
                ctx_ids = f[f"ctx.{ctx}"]
                seq, spans = list(ctx_ids), []
                for view in by_context[ctx]:
                    resp = f[f"resp.{view.split('/')[1]}"]
                    spans.append((slot[view] * batch_size + b, len(seq), len(resp)))
                    seq.extend(resp)
                rows.append(seq)
                row_layout.append((len(ctx_ids), spans))
        longest = max(len(r) for r in rows)
        if self.pad_to_multiple_of > 1:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(rows)
        input_ids = torch.full((n, longest), self.pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((n, longest), dtype=torch.long)
        mask = torch.tril(torch.ones((longest, longest), dtype=torch.bool)).repeat(n, 1, 1)
        pred, targets, out = [], [], []
        for r, (seq, (ctx_len, spans)) in enumerate(zip(rows, row_layout)):
            input_ids[r, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            position_ids[r] = torch.arange(longest)
            for k, (out_slot, start, length) in enumerate(spans):
                last = _last_non_pad(seq, start, start + length, self.pad_token_id)
                if last < 0:  # an all-pad response: the sequence's last non-pad token is in the context
                    last = max(0, _last_non_pad(seq, 0, ctx_len, self.pad_token_id))
                score_index[out_slot] = r * longest + last
                if k > 0:  # later responses: positions restart after the context, earlier responses hidden
                    position_ids[r, start : start + length] = torch.arange(ctx_len, ctx_len + length)
                    mask[r, start : start + length, ctx_len:start] = False
                for j in range(length):
                    pred.append(r * longest + (start + j - 1 if j > 0 else ctx_len - 1))
                    targets.append(seq[start + j])
                    out.append(out_slot)
            if len(seq) < longest:  # padding continues the positions of the last span
                last = int(position_ids[r, len(seq) - 1])
                position_ids[r, len(seq) :] = torch.arange(last + 1, last + 1 + longest - len(seq))
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "position_ids": position_ids,
            "attention_mask": mask.unsqueeze(1),
            "pred_index": torch.tensor(pred, dtype=torch.long),
            "target_ids": torch.tensor(targets, dtype=torch.long),
            "out_index": torch.tensor(out, dtype=torch.long),
            "score_index": torch.tensor(score_index, dtype=torch.long),
            "views": list(self.views),
            "batch_size": batch_size,
            "ids": [f.get("id") for f in features],
        }
        return _with_reference(batch, features, self.views)
