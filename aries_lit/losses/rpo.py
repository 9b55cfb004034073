"""The RPO term: an NLL on the chosen answer added to a pairwise loss (``rpo_alpha``).

Iterative RPO (Pang et al. 2024, arXiv 2404.19733) adds ``alpha * NLL(y_w | x)`` to DPO. The NLL is
normalised as TRL does it (``loss_type=["sigmoid", "sft"], loss_weights=[1, rpo_alpha]`` in TRL
1.16, whose ``"sft"`` loss is the mean over every chosen completion token of the batch):
``NLL = -sum_b log pi(y_w^b | x^b) / sum_b |y_w^b|`` computed from the ``[B]`` summed log-probs
and ``num_tokens`` of ``direct/chosen``.
"""

from __future__ import annotations

import math

from torch import Tensor

from aries_lit.losses.base import DIRECT_CHOSEN, LossOutput, ViewLogProbs

__all__ = ["add_rpo", "check_rpo_alpha", "chosen_token_nll"]


def check_rpo_alpha(loss_name: str, rpo_alpha: float) -> None:
    """Raise ``ValueError`` unless ``rpo_alpha`` is a finite number >= 0."""
    if not (isinstance(rpo_alpha, (int, float)) and math.isfinite(rpo_alpha) and rpo_alpha >= 0):
        raise ValueError(f"{loss_name}: rpo_alpha must be a finite number >= 0, got {rpo_alpha!r}")


def chosen_token_nll(logps: ViewLogProbs, loss_name: str) -> Tensor:
    """``-sum_b log pi(y_w|x) / sum_b |y_w|`` (scalar): the per-token NLL of the chosen answers."""
    if DIRECT_CHOSEN not in logps.num_tokens:
        raise KeyError(f"{loss_name} needs ViewLogProbs.num_tokens of view 'direct/chosen' (rpo_alpha > 0)")
    lp = logps.policy[DIRECT_CHOSEN]
    n = logps.num_tokens[DIRECT_CHOSEN].to(lp.dtype).sum().clamp(min=1)
    return -lp.sum() / n


def add_rpo(out: LossOutput, logps: ViewLogProbs, rpo_alpha: float, loss_name: str) -> LossOutput:
    """``out`` plus ``rpo_alpha * NLL`` (metric ``loss/nll``) when ``rpo_alpha > 0``; else ``out``."""
    if rpo_alpha <= 0:
        return out
    nll = chosen_token_nll(logps, loss_name)
    metrics = {**out.metrics, "loss/nll": nll.detach().float()}
    return LossOutput(out.loss + rpo_alpha * nll, metrics)
