"""Collate tokenized pairs into one padded batch holding every view the loss needs.

All views of a batch go through the model in one forward: rows are ordered view-major
(``[view_0 x B, view_1 x B, ...]``), so :func:`split_views` cuts the per-row results back
into ``{view: [B]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from aries_lit.data.views import view_sequence


@dataclass
class ViewCollator:
    """Builds ``input_ids``, ``attention_mask`` and ``loss_mask`` (1 on response tokens only)."""

    views: tuple[str, ...]
    pad_token_id: int
    pad_to_multiple_of: int = 8

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows: list[tuple[list[int], list[int]]] = [view_sequence(f, v) for v in self.views for f in features]
        longest = max(len(c) + len(r) for c, r in rows)
        if self.pad_to_multiple_of > 1:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(rows)
        input_ids = torch.full((n, longest), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((n, longest), dtype=torch.long)
        loss_mask = torch.zeros((n, longest), dtype=torch.bool)
        for i, (ctx, resp) in enumerate(rows):
            seq = ctx + resp
            input_ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            attention_mask[i, : len(seq)] = 1
            loss_mask[i, len(ctx) : len(seq)] = True
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "loss_mask": loss_mask,
            "views": list(self.views),
            "batch_size": len(features),
            "ids": [f.get("id") for f in features],
        }
        for view in self.views:
            key = f"ref.{view}"
            if all(key in f for f in features):
                batch[key] = torch.tensor([float(f[key]) for f in features], dtype=torch.float32)
        return batch


def split_views(values: Tensor, views: list[str], batch_size: int) -> dict[str, Tensor]:
    """``[V*B]`` view-major values -> ``{view: [B]}``."""
    return {v: values[i * batch_size : (i + 1) * batch_size] for i, v in enumerate(views)}


def reference_from_batch(batch: dict[str, Any]) -> dict[str, Tensor] | None:
    """Cached reference log-probs carried by the batch, if every view has them."""
    refs = {v: batch[f"ref.{v}"] for v in batch["views"] if f"ref.{v}" in batch}
    return refs if len(refs) == len(batch["views"]) else None
