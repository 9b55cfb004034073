"""The other pairwise losses of TRL 1.16's ``DPOConfig.loss_type`` (``sigmoid``, ``hinge`` and
``ipo`` are :mod:`aries_lit.losses.preference`'s ``dpo``, ``hinge`` and ``ipo``).

Each reads the views ``direct/chosen`` and ``direct/rejected`` of policy and reference: ``[B]``
summed response log-probs (and ``num_tokens`` ``[B]`` where said). Notation as in
:mod:`aries_lit.losses.preference`: ``lr_w = log pi(y_w|x) - log pi_ref(y_w|x)``, ``lr_l`` likewise,
``h = lr_w - lr_l``, ``sigma`` the logistic function. Each returns the batch mean of its per-pair
losses (``[]``) plus ``rpo_alpha * NLL(y_w|x)`` (:mod:`aries_lit.losses.rpo`), and the metrics of
:class:`~aries_lit.losses.preference.DPOLoss` (rewards ``beta * lr``), each ``[B]``. The registry
name is TRL's ``loss_type``.
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
    direct_reward_metrics,
)
from aries_lit.losses.preference import _logps_metrics, check_inputs, response_lengths
from aries_lit.losses.rpo import add_rpo, check_rpo_alpha

__all__ = [
    "AOTLoss",
    "AOTUnpairedLoss",
    "APODownLoss",
    "APOZeroLoss",
    "BCOPairLoss",
    "DiscoPOPLoss",
    "EXOPairLoss",
    "NCAPairLoss",
    "PairwiseLoss",
    "RobustDPOLoss",
    "SPPOHardLoss",
    "SigmoidNormLoss",
    "check_smoothing",
]


def check_smoothing(loss_name: str, value: float, low_open: bool = False) -> None:
    """Raise ``ValueError`` unless ``label_smoothing`` lies in ``[0, 0.5)`` (``(0, 0.5)`` if ``low_open``)."""
    ok = isinstance(value, (int, float)) and (0.0 < value if low_open else 0.0 <= value) and value < 0.5
    if not ok:
        interval = "(0, 0.5)" if low_open else "[0, 0.5)"
        raise ValueError(f"{loss_name}: label_smoothing must be in {interval}, got {value!r}")


class PairwiseLoss(PreferenceLoss):
    """Base of the losses here: ``beta`` and ``rpo_alpha``; subclasses define :meth:`pair_losses`."""

    def __init__(self, beta: float = 0.1, rpo_alpha: float = 0.0) -> None:
        name = self._name()
        check_beta(name, beta)
        check_rpo_alpha(name, rpo_alpha)
        self.beta = beta
        self.rpo_alpha = rpo_alpha

    @classmethod
    def _name(cls) -> str:
        return getattr(cls, "registry_name", cls.__name__)

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        """The ``[B]`` per-pair losses."""
        raise NotImplementedError  # pragma: no cover - interface

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        name = self._name()
        check_inputs(logps, self.views, True, name)
        lr_w = logps.log_ratio(DIRECT_CHOSEN)
        lr_l = logps.log_ratio(DIRECT_REJECTED)
        losses = self.pair_losses(logps, lr_w, lr_l)
        metrics = {**direct_reward_metrics(self.beta * lr_w, self.beta * lr_l), **_logps_metrics(logps)}
        return add_rpo(LossOutput(losses.mean(), metrics), logps, self.rpo_alpha, name)


@LOSSES.register("robust")
class RobustDPOLoss(PairwiseLoss):
    """Robust DPO (Chowdhury et al. 2024, arXiv 2403.00409), unbiased under label flips of rate ``ls``.

    ``loss = [-(1 - ls) log sigma(beta h) + ls log sigma(-beta h)] / (1 - 2 ls)``, ``ls`` in ``[0, 0.5)``.
    """

    def __init__(self, beta: float = 0.1, label_smoothing: float = 0.0, rpo_alpha: float = 0.0) -> None:
        super().__init__(beta, rpo_alpha)
        check_smoothing("robust", label_smoothing)
        self.label_smoothing = label_smoothing

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        m, ls = self.beta * (lr_w - lr_l), self.label_smoothing
        return (-(1 - ls) * F.logsigmoid(m) + ls * F.logsigmoid(-m)) / (1 - 2 * ls)


@LOSSES.register("exo_pair")
class EXOPairLoss(PairwiseLoss):
    """EXO-pref (Ji et al. 2024, arXiv 2402.00856, Eq. 16): ``KL(q || p)`` over {y_w, y_l}.

    ``q_w = sigma(beta h)``, ``q_l = sigma(-beta h)``, ``p = (1 - eps, eps)``;
    ``loss = q_w (log q_w - log(1 - eps)) + q_l (log q_l - log eps)``. ``eps = label_smoothing``
    in ``(0, 0.5)`` (paper: 1e-3).
    """

    def __init__(self, beta: float = 0.1, label_smoothing: float = 1e-3, rpo_alpha: float = 0.0) -> None:
        super().__init__(beta, rpo_alpha)
        check_smoothing("exo_pair", label_smoothing, low_open=True)
        self.label_smoothing = label_smoothing

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        m, eps = self.beta * (lr_w - lr_l), self.label_smoothing
        qw_log, ql_log = F.logsigmoid(m), F.logsigmoid(-m)
        return qw_log.exp() * (qw_log - math.log1p(-eps)) + ql_log.exp() * (ql_log - math.log(eps))


@LOSSES.register("nca_pair")
class NCAPairLoss(PairwiseLoss):
    """NCA, pairwise (Chen et al. 2024, "Noise Contrastive Alignment", arXiv 2402.05369).

    ``r = beta * lr``; ``loss = -log sigma(r_w) - 1/2 log sigma(-r_w) - 1/2 log sigma(-r_l)``.
    """

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        rw, rl = self.beta * lr_w, self.beta * lr_l
        return -F.logsigmoid(rw) - 0.5 * F.logsigmoid(-rw) - 0.5 * F.logsigmoid(-rl)


@LOSSES.register("bco_pair")
class BCOPairLoss(PairwiseLoss):
    """BCO on pairs (Jung et al. 2024, arXiv 2404.04656), as TRL 1.16 computes it: no running mean.

    ``r = beta * lr``; ``loss = -log sigma(r_w) - log sigma(-r_l)``. (Older TRL versions subtracted
    a running mean ``delta`` of the rewards; TRL 1.16's ``bco_pair`` keeps no state, nor does this.)
    """

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        return -F.logsigmoid(self.beta * lr_w) - F.logsigmoid(-self.beta * lr_l)


@LOSSES.register("sppo_hard")
class SPPOHardLoss(PairwiseLoss):
    """SPPO with hard probabilities (Wu et al. 2024, arXiv 2405.00675, Eq. 4.7 with P = 1 / 0).

    ``loss = (lr_w - 1 / (2 beta))^2 + (lr_l + 1 / (2 beta))^2``.
    """

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        return (lr_w - 0.5 / self.beta) ** 2 + (lr_l + 0.5 / self.beta) ** 2


class _AOTBase(PairwiseLoss):
    def __init__(self, beta: float = 0.1, label_smoothing: float = 0.0, rpo_alpha: float = 0.0) -> None:
        super().__init__(beta, rpo_alpha)
        check_smoothing(self._name(), label_smoothing)
        self.label_smoothing = label_smoothing

    def _smoothed(self, delta: Tensor) -> Tensor:
        m, ls = self.beta * delta, self.label_smoothing
        return -(1 - ls) * F.logsigmoid(m) - ls * F.logsigmoid(-m)


@LOSSES.register("aot")
class AOTLoss(_AOTBase):
    """AOT, paired (Melnyk et al. 2024, "Distributional Preference Alignment via OT", arXiv 2406.05882).

    With ``d = log pi(y_w|x) - log pi(y_l|x)`` and ``d_ref`` likewise, both sorted over the batch:
    ``loss_i = -(1 - ls) log sigma(beta (d_(i) - d_ref(i))) - ls log sigma(-beta (...))``. The sort
    couples pairs across the batch, so the loss depends on the whole batch (not per pair).
    """

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        d = logps.policy[DIRECT_CHOSEN] - logps.policy[DIRECT_REJECTED]
        d_ref = logps.ref(DIRECT_CHOSEN) - logps.ref(DIRECT_REJECTED)
        return self._smoothed(torch.sort(d, dim=0).values - torch.sort(d_ref, dim=0).values)


@LOSSES.register("aot_unpaired")
class AOTUnpairedLoss(_AOTBase):
    """AOT, unpaired (Melnyk et al. 2024, arXiv 2406.05882): ``lr_w`` and ``lr_l`` sorted separately.

    ``loss_i = -(1 - ls) log sigma(beta (lr_w(i) - lr_l(i))) - ls log sigma(-beta (...))``.
    """

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        return self._smoothed(torch.sort(lr_w, dim=0).values - torch.sort(lr_l, dim=0).values)


@LOSSES.register("apo_zero")
class APOZeroLoss(PairwiseLoss):
    """APO-zero (D'Oosterlinck et al. 2024, "Anchored Preference Optimization", arXiv 2408.06266, Eq. 7).

    ``loss = 1 - sigma(beta lr_w) + sigma(beta lr_l)``: raise chosen, lower rejected.
    """

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        return 1 - torch.sigmoid(self.beta * lr_w) + torch.sigmoid(self.beta * lr_l)


@LOSSES.register("apo_down")
class APODownLoss(PairwiseLoss):
    """APO-down (arXiv 2408.06266, Eq. 8): ``loss = sigma(beta lr_w) + 1 - sigma(beta h)``.

    For chosen answers worse than the model's own: lower both, the rejected more.
    """

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        return torch.sigmoid(self.beta * lr_w) + 1 - torch.sigmoid(self.beta * (lr_w - lr_l))


@LOSSES.register("discopop")
class DiscoPOPLoss(PairwiseLoss):
    """DiscoPOP, log-ratio modulated loss (Chan et al. 2024, arXiv 2406.08414, Eq. 5).

    ``m = beta h``, ``w = sigma(m / tau)``; ``loss = (1 - w) (-log sigma(m)) + w exp(-m)``
    (paper: ``tau = 0.05``).
    """

    def __init__(self, beta: float = 0.1, tau: float = 0.05, rpo_alpha: float = 0.0) -> None:
        super().__init__(beta, rpo_alpha)
        check_beta("discopop", tau, "tau")
        self.tau = tau

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        m = self.beta * (lr_w - lr_l)
        w = torch.sigmoid(m / self.tau)
        return -F.logsigmoid(m) * (1 - w) + torch.exp(-m) * w


@LOSSES.register("sigmoid_norm")
class SigmoidNormLoss(PairwiseLoss):
    """Length-normalised DPO (TRL ``sigmoid_norm``; the LN-DPO of Ahrabian et al. 2024, arXiv 2409.06411 §3).

    ``loss = -log sigma(beta (lr_w / |y_w| - lr_l / |y_l|))``; needs ``num_tokens`` ``[B]``.
    """

    def pair_losses(self, logps: ViewLogProbs, lr_w: Tensor, lr_l: Tensor) -> Tensor:
        nw = response_lengths(logps, DIRECT_CHOSEN, "sigmoid_norm")
        nl = response_lengths(logps, DIRECT_REJECTED, "sigmoid_norm")
        return -F.logsigmoid(self.beta * (lr_w / nw - lr_l / nl))
