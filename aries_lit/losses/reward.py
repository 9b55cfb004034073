"""Reward-model losses: scalar rewards ``r(x, y)`` of the direct views -> a loss.

A reward loss reads the same two views as a preference loss (``direct/chosen`` = ``(x, y_w)``,
``direct/rejected`` = ``(x, y_l)``), but its inputs are the reward model's scores of those
sequences (:class:`PairRewards`), not log-probabilities, so it is called with a
:class:`PairRewards` instead of a :class:`~aries_lit.losses.base.ViewLogProbs`. Only
:class:`~aries_lit.modules.RewardModule` trains with one; the policy modules refuse it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from aries_lit.losses.base import (
    DIRECT_CHOSEN,
    DIRECT_REJECTED,
    LOSSES,
    Loss,
    LossOutput,
    detach_metrics,
    direct_reward_metrics,
)

__all__ = ["BradleyTerryLoss", "PairRewards", "RewardLoss"]


@dataclass
class PairRewards:
    """Inputs of a reward loss for ``B`` pairs: ``chosen`` = ``r(x, y_w)`` and ``rejected`` =
    ``r(x, y_l)``, each ``[B]``; ``margin`` ``[B]``, the pairs' ``margin`` field when the data has one."""

    chosen: Tensor
    rejected: Tensor
    margin: Tensor | None = None


class RewardLoss(Loss):
    """Base of reward-model losses: reads the direct views, needs no reference."""

    views = (DIRECT_CHOSEN, DIRECT_REJECTED)
    needs_reference = False

    def __call__(self, rewards: PairRewards) -> LossOutput:  # type: ignore[override]  # pragma: no cover
        raise NotImplementedError


@LOSSES.register("bradley_terry")
class BradleyTerryLoss(RewardLoss):
    """The Bradley-Terry reward-model loss (Ouyang et al. 2022, InstructGPT Eq. 1), as TRL's
    ``RewardTrainer.compute_loss`` computes it.

    Per pair ``l = -log sigma(r_w - r_l - m)`` with ``m`` the pair's ``margin`` field (0 when the
    data has none or ``use_margin`` is false; Llama 2, Touvron et al. 2023, Eq. 2); the loss is
    ``mean(l) + c * mean((r_w + r_l)^2)``, the second term (added when
    ``center_rewards_coefficient`` = ``c`` is set) pulling rewards towards zero mean
    (Eisenstein et al. 2023, arXiv 2312.09244; TRL's ``RewardConfig.center_rewards_coefficient``).

    Shapes: ``chosen``, ``rejected`` and ``margin`` ``[B]``; loss ``[]``; metrics
    ``rewards/{chosen,rejected,margin,accuracy}`` (``margin`` = ``r_w - r_l``, ``accuracy`` =
    ``r_w > r_l``) and ``loss/bradley_terry``, each ``[B]``, and ``loss/center`` ``[]`` with centring.
    """

    def __init__(self, center_rewards_coefficient: float | None = None, use_margin: bool = True) -> None:
        c = center_rewards_coefficient
        if c is not None and not (isinstance(c, (int, float)) and math.isfinite(c) and c >= 0):
            raise ValueError(
                f"bradley_terry: center_rewards_coefficient must be a finite number >= 0 or null, got {c!r}"
            )
        self.center_rewards_coefficient = c
        self.use_margin = use_margin

    def __call__(self, rewards: PairRewards) -> LossOutput:  # type: ignore[override]
        chosen, rejected = rewards.chosen, rewards.rejected
        if chosen.ndim != 1 or chosen.shape != rejected.shape:
            raise ValueError(
                f"bradley_terry: rewards must be two [B] tensors of one size; got {tuple(chosen.shape)} "
                f"and {tuple(rejected.shape)}"
            )
        diff = chosen - rejected
        if self.use_margin and rewards.margin is not None:
            margin = rewards.margin.to(diff.dtype)
            if margin.shape != diff.shape:
                raise ValueError(
                    f"bradley_terry: margin must be [B] = {tuple(diff.shape)}, got {tuple(margin.shape)}"
                )
            diff = diff - margin
        per_pair = -F.logsigmoid(diff)
        loss = per_pair.mean()
        metrics = {
            **direct_reward_metrics(chosen, rejected),
            **detach_metrics({"loss/bradley_terry": per_pair}),
        }
        if self.center_rewards_coefficient is not None:
            center = self.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
            loss = loss + center
            metrics["loss/center"] = center.detach().float()
        return LossOutput(loss, metrics)
