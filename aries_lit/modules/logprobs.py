"""Summed response log-probabilities ``log pi(y | c)`` for a batch of views.

Only response tokens need logits, so the LM head runs on the hidden states at response
positions alone (gathered flat), in chunks: no ``[rows, seq, vocab]`` fp32 tensor is ever
materialised (TRL users' "full-vocabulary fp32 logits" memory blow-up), and context tokens
cost no LM-head FLOPs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint


def _unwrap(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _decoder_and_head(model: Any) -> tuple[Any, Any] | None:
    inner = _unwrap(model)
    prefix = getattr(inner, "base_model_prefix", None)
    decoder = getattr(inner, prefix, None) if prefix else None
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if decoder is None or head is None or decoder is inner:
        return None
    return decoder, head


def _token_logps(hidden: Tensor, targets: Tensor, head: Any, chunk_size: int) -> Tensor:
    def chunk_logps(h: Tensor, t: Tensor) -> Tensor:
        logits = head(h).float()
        return logits.gather(-1, t.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)

    if hidden.shape[0] <= chunk_size:
        return chunk_logps(hidden, targets)
    parts = []
    for start in range(0, hidden.shape[0], chunk_size):
        h, t = hidden[start : start + chunk_size], targets[start : start + chunk_size]
        if torch.is_grad_enabled() and h.requires_grad:
            parts.append(checkpoint(chunk_logps, h, t, use_reentrant=False))
        else:
            parts.append(chunk_logps(h, t))
    return torch.cat(parts)


def _masked_token_logps(
    model: Any, input_ids: Tensor, attention_mask: Tensor, target_mask: Tensor, chunk_size: int
) -> Tensor:
    """``[K]`` log-probs of the tokens ``input_ids[:, 1:][target_mask]`` (``target_mask``: ``[N, T-1]``),
    in row-major order: the LM head on the response positions' hidden states alone, in chunks,
    or full logits for a model without a separable head."""
    targets = input_ids[:, 1:][target_mask]
    parts = _decoder_and_head(model)
    if parts is not None:
        decoder, head = parts
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return _token_logps(out.last_hidden_state[:, :-1][target_mask], targets, head, chunk_size)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1]
    selected = logits[target_mask].float()
    return selected.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(selected, -1)


def sequence_logprobs(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    loss_mask: Tensor,
    chunk_size: int = 4096,
) -> tuple[Tensor, Tensor]:
    """Summed log-probs of the masked (response) tokens of each row, and their counts.

    Args:
        input_ids, attention_mask: ``[N, T]`` right-padded rows.
        loss_mask: ``[N, T]`` bool, True on the tokens whose log-prob counts.
        chunk_size: response tokens per LM-head chunk (chunks past the first are
            recomputed in backward instead of keeping their logits).

    Returns:
        ``([N] float32 sums, [N] token counts)``.
    """
    target_mask = loss_mask[:, 1:]
    token_logps = _masked_token_logps(model, input_ids, attention_mask, target_mask, chunk_size)
    row_index = torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1).expand_as(target_mask)
    sums = torch.zeros(input_ids.shape[0], dtype=torch.float32, device=input_ids.device)
    sums = sums.index_add(0, row_index[target_mask], token_logps.float())
    counts = target_mask.sum(-1)
    return sums, counts


def packed_logprobs(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    position_ids: Tensor,
    pred_index: Tensor,
    target_ids: Tensor,
    out_index: Tensor,
    num_outputs: int,
    chunk_size: int = 4096,
) -> tuple[Tensor, Tensor]:
    """Summed log-probs for rows that hold several responses after one shared context.

    Args:
        input_ids, position_ids: ``[R, T]``; attention_mask: boolean ``[R, 1, T, T]``.
        pred_index: ``[K]`` flat ``r * T + t`` positions whose hidden state predicts each scored token.
        target_ids: ``[K]`` the scored tokens; out_index: ``[K]`` their output slot in ``[num_outputs]``.

    Returns:
        ``([num_outputs] float32 sums, [num_outputs] token counts)``.
    """
    parts = _decoder_and_head(model)
    if parts is None:
        raise ValueError(
            "shared-context packing needs a model with a separable decoder and LM head; "
            "set data.init_args.shared_context: false"
        )
    decoder, head = parts
    hidden = decoder(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
    ).last_hidden_state
    flat = hidden.reshape(-1, hidden.shape[-1])
    token_logps = _token_logps(flat[pred_index], target_ids, head, chunk_size)
    sums = torch.zeros(num_outputs, dtype=torch.float32, device=input_ids.device)
    sums = sums.index_add(0, out_index, token_logps.float())
    counts = torch.bincount(out_index, minlength=num_outputs)
    return sums, counts


def token_logprobs(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    loss_mask: Tensor,
    chunk_size: int = 4096,
) -> tuple[Tensor, Tensor]:
    """Per-token log-probs of the masked (response) tokens, as :func:`sequence_logprobs` computes them
    before it sums them (the same LM-head chunking).

    Args:
        input_ids, attention_mask, loss_mask: ``[N, T]`` right-padded rows, as for :func:`sequence_logprobs`.

    Returns:
        ``([N, T-1] float32 log-probs, [N, T-1] bool mask)``: position ``t`` scores token ``t + 1``;
        0 where the mask is False.
    """
    target_mask = loss_mask[:, 1:]
    flat = _masked_token_logps(model, input_ids, attention_mask, target_mask, chunk_size)
    out = torch.zeros(target_mask.shape, dtype=torch.float32, device=input_ids.device)
    out = out.masked_scatter(target_mask, flat.float())
    return out, target_mask
