"""Likelihood losses on chosen responses: SFT (Eq. 2) and ARIES-SFT (Eq. 4) of arXiv 2502.05605."""

from __future__ import annotations

from torch import Tensor

from aries_lit.losses.base import (
    DIRECT_CHOSEN,
    LOSSES,
    REFINE_L_CHOSEN,
    LossOutput,
    SFTLoss,
    ViewLogProbs,
    detach_metrics,
)
from aries_lit.losses.preference import check_inputs, response_lengths

__all__ = ["ARIESSFT", "SFT", "REDUCTIONS"]

#: ``token_mean``: summed log-probs over the batch / total response tokens (per-token NLL, as
#: most SFT trainers report it); ``sequence_sum``: the literal equation, summed log-prob per
#: sequence averaged over the batch.
REDUCTIONS = ("token_mean", "sequence_sum")


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def _nll(logps: ViewLogProbs, view: str, reduction: str, name: str) -> Tensor:
    """``-E[log pi(y|c)]`` of one view, reduced over the batch."""
    lp = logps.policy[view]
    if reduction == "token_mean":
        return -lp.sum() / response_lengths(logps, view, name).sum()
    return -lp.mean()


def _metrics(logps: ViewLogProbs, views: tuple[str, ...], name: str) -> dict[str, Tensor]:
    metrics = {f"logps/{v}": logps.policy[v] for v in views}
    for v in views:
        if v in logps.num_tokens:
            metrics[f"nll_per_token/{v}"] = -logps.policy[v] / response_lengths(logps, v, name)
    return detach_metrics(metrics)


@LOSSES.register("sft")
class SFT(SFTLoss):
    """SFT (ARIES arXiv 2502.05605 Eq. 2): ``L = -E[log pi(y_w | x)]``.

    ``reduction="token_mean"`` (default) divides the batch's summed log-probs by its total response
    token count (``num_tokens``); ``"sequence_sum"`` is the literal Eq. 2, the summed log-prob of
    each sequence averaged over the batch.

    Shapes: policy view ``direct/chosen`` ``[B]`` (and its ``num_tokens`` ``[B]`` for
    ``token_mean``); loss ``[]``; metrics ``logps/direct/chosen`` and, when token counts are given,
    ``nll_per_token/direct/chosen``, each ``[B]``.
    """

    views = (DIRECT_CHOSEN,)

    def __init__(self, reduction: str = "token_mean") -> None:
        _check_reduction("sft", reduction)
        self.reduction = reduction

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, False, "sft")
        loss = _nll(logps, DIRECT_CHOSEN, self.reduction, "sft")
        return LossOutput(loss, _metrics(logps, self.views, "sft"))


@LOSSES.register("aries_sft")
class ARIESSFT(SFTLoss):
    """ARIES-SFT (ARIES arXiv 2502.05605 Eq. 4): ``L = -E[log pi(y_w | x) + log pi(y_w | x, y_l, z)]``.

    The chosen answer is learned both directly and as the refinement of the rejected one. Each of
    the two terms is reduced as in :class:`SFT` (``token_mean``: per-token mean over the batch of that
    view; ``sequence_sum``: the literal equation) and the two are added.

    Shapes: policy views ``direct/chosen`` and ``refine_l/chosen``, each ``[B]`` (and their
    ``num_tokens`` ``[B]`` for ``token_mean``); loss ``[]``; metrics ``logps/<view>`` and, when token
    counts are given, ``nll_per_token/<view>``, each ``[B]``.
    """

    views = (DIRECT_CHOSEN, REFINE_L_CHOSEN)

    def __init__(self, reduction: str = "token_mean") -> None:
        _check_reduction("aries_sft", reduction)
        self.reduction = reduction

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, False, "aries_sft")
        loss = _nll(logps, DIRECT_CHOSEN, self.reduction, "aries_sft") + _nll(
            logps, REFINE_L_CHOSEN, self.reduction, "aries_sft"
        )
        return LossOutput(loss, _metrics(logps, self.views, "aries_sft"))
