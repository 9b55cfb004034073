"""Preference losses on the direct views ``x -> y_w`` and ``x -> y_l``: DPO, IPO, hinge, SimPO.

Every loss here reads the views ``direct/chosen`` and ``direct/rejected``. Inputs are ``[B]``
tensors of summed response log-probs (see :class:`~aries_lit.losses.base.ViewLogProbs`);
outputs are a scalar loss (the batch mean of the per-pair losses) and ``[B]`` metrics.

Notation: ``lr_w = log pi(y_w|x) - log pi_ref(y_w|x)`` and ``lr_l`` likewise (summed over the
response tokens), ``|y|`` the response token count, ``sigma`` the logistic function.

Every loss takes ``rpo_alpha`` (default 0): ``rpo_alpha * NLL(y_w|x)`` (per-token mean over the
chosen completions, as TRL normalises it; :mod:`aries_lit.losses.rpo`) is added to the loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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
from aries_lit.losses.rpo import add_rpo, check_rpo_alpha

__all__ = [
    "DPOLoss",
    "HingeLoss",
    "IPOLoss",
    "SimPOLoss",
    "check_inputs",
    "response_lengths",
]


# --------------------------------------------------------------------------- input checks


def check_inputs(logps: ViewLogProbs, views: Iterable[str], reference: bool, loss_name: str) -> None:
    """Raise a clear error when a view's policy (or reference) log-probs are missing or not ``[B]``."""
    views = tuple(views)
    missing = [v for v in views if v not in logps.policy]
    if missing:
        raise KeyError(
            f"{loss_name} needs policy log-probs for the views {', '.join(views)}; "
            f"missing {', '.join(missing)} (got {', '.join(logps.policy) or 'none'})"
        )
    if reference:
        have = logps.reference or {}
        missing = [v for v in views if v not in have]
        if missing:
            raise KeyError(
                f"{loss_name} needs reference log-probs for the views {', '.join(views)}; "
                f"missing {', '.join(missing)} (got {', '.join(have) or 'none'})"
            )
    shapes = {v: tuple(logps.policy[v].shape) for v in views}
    if any(len(s) != 1 for s in shapes.values()) or len(set(shapes.values())) > 1:
        raise ValueError(f"{loss_name}: per-view log-probs must all be [B] tensors of one size; got {shapes}")


def response_lengths(logps: ViewLogProbs, view: str, loss_name: str) -> Tensor:
    """The ``[B]`` response token counts of ``view`` (as float, at least 1)."""
    if view not in logps.num_tokens:
        raise KeyError(
            f"{loss_name} needs the response token counts (ViewLogProbs.num_tokens) of view '{view}'"
        )
    return logps.num_tokens[view].to(logps.policy[view].dtype).clamp(min=1)


def _logps_metrics(logps: ViewLogProbs) -> dict[str, Tensor]:
    return detach_metrics({f"logps/{v}": logps.policy[v] for v in (DIRECT_CHOSEN, DIRECT_REJECTED)})


# --------------------------------------------------------------------------- losses


@LOSSES.register("dpo")
class DPOLoss(PreferenceLoss):
    """DPO (Rafailov et al. 2023; ARIES arXiv 2502.05605 Eq. 3), with optional conservative label smoothing.

    ``m = beta * (lr_w - lr_l)`` (``= u(x, y_l, y_w)`` of Eq. 3), per pair
    ``loss = -(1 - ls) * log sigma(m) - ls * log sigma(-m)`` (cDPO, Mitchell 2023; ``ls = 0`` is
    plain DPO), averaged over the batch.

    Shapes: views ``direct/chosen``, ``direct/rejected`` of policy and reference, each ``[B]``;
    loss ``[]``; metrics ``rewards/{chosen,rejected,margin,accuracy}`` (rewards ``beta * lr``) and
    ``logps/direct/{chosen,rejected}``, each ``[B]``.
    """

    def __init__(self, beta: float = 0.1, label_smoothing: float = 0.0, rpo_alpha: float = 0.0) -> None:
        check_beta("dpo", beta)
        check_rpo_alpha("dpo", rpo_alpha)
        if not (isinstance(label_smoothing, (int, float)) and 0.0 <= label_smoothing < 0.5):
            raise ValueError(f"dpo: label_smoothing must be in [0, 0.5), got {label_smoothing!r}")
        self.beta = beta
        self.label_smoothing = label_smoothing
        self.rpo_alpha = rpo_alpha

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, True, "dpo")
        chosen = self.beta * logps.log_ratio(DIRECT_CHOSEN)
        rejected = self.beta * logps.log_ratio(DIRECT_REJECTED)
        margin = chosen - rejected
        ls = self.label_smoothing
        losses = -(1.0 - ls) * F.logsigmoid(margin)
        if ls > 0:
            losses = losses - ls * F.logsigmoid(-margin)
        out = LossOutput(losses.mean(), {**direct_reward_metrics(chosen, rejected), **_logps_metrics(logps)})
        return add_rpo(out, logps, self.rpo_alpha, "dpo")


@LOSSES.register("ipo")
class IPOLoss(PreferenceLoss):
    """IPO (Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human Preferences").

    ``h = lr_w / |y_w| - lr_l / |y_l|`` (log-ratios normalised by the response token count, as in
    the IPO paper's implementation and TRL's ``loss_type="ipo"``), per pair
    ``loss = (h - 1 / (2 * beta))^2``, averaged over the batch.

    Shapes: views ``direct/chosen``, ``direct/rejected`` of policy and reference, each ``[B]``, and
    their ``num_tokens`` ``[B]``; loss ``[]``; metrics as :class:`DPOLoss` (rewards ``beta * lr``,
    summed log-ratios), each ``[B]``.
    """

    def __init__(self, beta: float = 0.1, rpo_alpha: float = 0.0) -> None:
        check_beta("ipo", beta)
        check_rpo_alpha("ipo", rpo_alpha)
        self.beta = beta
        self.rpo_alpha = rpo_alpha

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, True, "ipo")
        lr_w = logps.log_ratio(DIRECT_CHOSEN)
        lr_l = logps.log_ratio(DIRECT_REJECTED)
        h = lr_w / response_lengths(logps, DIRECT_CHOSEN, "ipo") - lr_l / response_lengths(
            logps, DIRECT_REJECTED, "ipo"
        )
        losses = (h - 1.0 / (2.0 * self.beta)) ** 2
        metrics = direct_reward_metrics(self.beta * lr_w, self.beta * lr_l)
        out = LossOutput(losses.mean(), {**metrics, **_logps_metrics(logps)})
        return add_rpo(out, logps, self.rpo_alpha, "ipo")


@LOSSES.register("hinge")
class HingeLoss(PreferenceLoss):
    """Hinge / SLiC preference loss (Zhao et al. 2023; TRL ``loss_type="hinge"``).

    ``h = lr_w - lr_l``, per pair ``loss = relu(1 - beta * h)``, averaged over the batch.

    Shapes: views ``direct/chosen``, ``direct/rejected`` of policy and reference, each ``[B]``;
    loss ``[]``; metrics as :class:`DPOLoss`, each ``[B]``.
    """

    def __init__(self, beta: float = 0.1, rpo_alpha: float = 0.0) -> None:
        check_beta("hinge", beta)
        check_rpo_alpha("hinge", rpo_alpha)
        self.beta = beta
        self.rpo_alpha = rpo_alpha

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, True, "hinge")
        chosen = self.beta * logps.log_ratio(DIRECT_CHOSEN)
        rejected = self.beta * logps.log_ratio(DIRECT_REJECTED)
        losses = torch.relu(1.0 - (chosen - rejected))
        out = LossOutput(losses.mean(), {**direct_reward_metrics(chosen, rejected), **_logps_metrics(logps)})
        return add_rpo(out, logps, self.rpo_alpha, "hinge")


@LOSSES.register("simpo")
class SimPOLoss(PreferenceLoss):
    """SimPO (Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward").

    Reference-free: per pair
    ``loss = -log sigma(beta * (log pi(y_w|x) / |y_w| - log pi(y_l|x) / |y_l|) - gamma)``,
    averaged over the batch.

    Shapes: policy views ``direct/chosen``, ``direct/rejected`` ``[B]`` and their ``num_tokens``
    ``[B]`` (no reference); loss ``[]``; metrics ``rewards/*`` (rewards ``beta * log pi(y|x) / |y|``)
    and ``logps/direct/*``, each ``[B]``.
    """

    needs_reference = False

    def __init__(self, beta: float = 2.0, gamma: float = 0.5, rpo_alpha: float = 0.0) -> None:
        check_beta("simpo", beta)
        check_rpo_alpha("simpo", rpo_alpha)
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma >= 0):
            raise ValueError(
                f"simpo: gamma (the target reward margin) must be a finite number >= 0, got {gamma!r}"
            )
        self.beta = beta
        self.gamma = gamma
        self.rpo_alpha = rpo_alpha

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, False, "simpo")
        chosen = self.beta * logps.policy[DIRECT_CHOSEN] / response_lengths(logps, DIRECT_CHOSEN, "simpo")
        rejected = (
            self.beta * logps.policy[DIRECT_REJECTED] / response_lengths(logps, DIRECT_REJECTED, "simpo")
        )
        losses = -F.logsigmoid(chosen - rejected - self.gamma)
        out = LossOutput(losses.mean(), {**direct_reward_metrics(chosen, rejected), **_logps_metrics(logps)})
        return add_rpo(out, logps, self.rpo_alpha, "simpo")
