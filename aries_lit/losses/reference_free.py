"""Reference-free pairwise losses with an SFT term: ORPO and CPO (``needs_reference = False``: no
reference model is loaded or run).

Both read the policy views ``direct/chosen``, ``direct/rejected`` (``[B]`` summed log-probs) and
their ``num_tokens`` ``[B]``. ``NLL = -sum_b log pi(y_w|x) / sum_b |y_w|`` is the per-token NLL of
the chosen answers over the batch (:func:`aries_lit.losses.rpo.chosen_token_nll`), as TRL's
trainers compute it from the chosen labels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from aries_lit.losses.base import (
    DIRECT_CHOSEN,
    DIRECT_REJECTED,
    LOSSES,
    LossOutput,
    PreferenceLoss,
    ViewLogProbs,
    check_beta,
    detach_metrics,
    direct_reward_metrics,
)
from aries_lit.losses.pairwise_trl import check_smoothing
from aries_lit.losses.preference import _logps_metrics, check_inputs, response_lengths
from aries_lit.losses.rpo import chosen_token_nll

__all__ = ["CPOLoss", "ORPOLoss", "log1mexp"]


def log1mexp(x: Tensor) -> Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, stable on both sides of ``-log 2``."""
    return torch.where(x < -math.log(2), torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


@LOSSES.register("orpo")
class ORPOLoss(PreferenceLoss):
    """ORPO (Hong et al. 2024, arXiv 2403.07691, Eqs. 4-7; TRL ``ORPOTrainer``).

    With the average per-token log-probs ``a = log pi(y|x) / |y|`` and
    ``log odds(y|x) = a - log(1 - exp(a))``:
    ``L = NLL - beta * mean_b log sigma(log odds(y_w|x) - log odds(y_l|x))`` (paper ``lambda`` =
    ``beta``, default 0.1). Metrics: rewards ``beta * a``, ``orpo/log_odds`` ``[B]``, ``loss/nll``.
    """

    needs_reference = False

    def __init__(self, beta: float = 0.1) -> None:
        check_beta("orpo", beta)
        self.beta = beta

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, False, "orpo")
        a_w = logps.policy[DIRECT_CHOSEN] / response_lengths(logps, DIRECT_CHOSEN, "orpo")
        a_l = logps.policy[DIRECT_REJECTED] / response_lengths(logps, DIRECT_REJECTED, "orpo")
        log_odds = (a_w - a_l) - (log1mexp(a_w) - log1mexp(a_l))
        nll = chosen_token_nll(logps, "orpo")
        loss = nll - self.beta * F.logsigmoid(log_odds).mean()
        metrics = {
            **direct_reward_metrics(self.beta * a_w, self.beta * a_l),
            **_logps_metrics(logps),
            **detach_metrics({"orpo/log_odds": log_odds, "loss/nll": nll}),
        }
        return LossOutput(loss, metrics)


@LOSSES.register("cpo")
class CPOLoss(PreferenceLoss):
    """CPO (Xu et al. 2024, arXiv 2401.08417, Eq. 3 plus the NLL term; TRL ``CPOTrainer``, sigmoid).

    ``h = log pi(y_w|x) - log pi(y_l|x)`` (summed log-probs, no reference);
    ``L = mean_b [-(1 - ls) log sigma(beta h) - ls log sigma(-beta h)] + cpo_alpha * NLL``
    (TRL defaults ``beta = 0.1``, ``cpo_alpha = 1``, ``label_smoothing = 0``). Metrics: rewards
    ``beta * log pi(y|x)``, ``loss/nll``.
    """

    needs_reference = False

    def __init__(self, beta: float = 0.1, cpo_alpha: float = 1.0, label_smoothing: float = 0.0) -> None:
        check_beta("cpo", beta)
        if not (isinstance(cpo_alpha, (int, float)) and math.isfinite(cpo_alpha) and cpo_alpha >= 0):
            raise ValueError(f"cpo: cpo_alpha must be a finite number >= 0, got {cpo_alpha!r}")
        check_smoothing("cpo", label_smoothing)
        self.beta = beta
        self.cpo_alpha = cpo_alpha
        self.label_smoothing = label_smoothing

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, False, "cpo")
        lw, ll = logps.policy[DIRECT_CHOSEN], logps.policy[DIRECT_REJECTED]
        m, ls = self.beta * (lw - ll), self.label_smoothing
        loss = (-(1 - ls) * F.logsigmoid(m) - ls * F.logsigmoid(-m)).mean()
        metrics = {**direct_reward_metrics(self.beta * lw, self.beta * ll), **_logps_metrics(logps)}
        if self.cpo_alpha > 0:
            nll = chosen_token_nll(logps, "cpo")
            loss = loss + self.cpo_alpha * nll
            metrics["loss/nll"] = nll.detach().float()
        return LossOutput(loss, metrics)
