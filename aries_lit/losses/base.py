"""The call contract every loss follows.

A loss declares the *views* it needs (``(context, response)`` pairs named in
:mod:`aries_lit.core.view_names`, tokenized by :mod:`aries_lit.data.views`), receives per-view summed
log-probabilities of the policy (and of the frozen reference when ``needs_reference``) and returns
the scalar loss plus per-example metrics. Losses hold no parameters and never see the model.

Reward-model losses (:mod:`aries_lit.losses.reward`) read the same direct views but receive the
reward model's scalar scores of them (``PairRewards``) instead of log-probabilities. Unpaired losses
(:class:`UnpairedLoss`, KTO) take the summed log-probs of single labelled completions
(:class:`UnpairedLogProbs`) instead of views of pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from aries_lit.core.view_names import (  # the view vocabulary, part of the call contract
    ALL_VIEWS,
    CONTEXTS,
    DIRECT,
    DIRECT_CHOSEN,
    DIRECT_REJECTED,
    REFINE_L,
    REFINE_L_CHOSEN,
    REFINE_L_REJECTED,
    REFINE_W,
    REFINE_W_CHOSEN,
    REFINE_W_REJECTED,
    RESPONSES,
    split_view,
)


@dataclass
class ViewLogProbs:
    """Inputs of a loss, for a batch of ``B`` preference pairs.

    ``policy[v]`` and ``reference[v]`` are ``[B]`` tensors of summed token log-probs
    ``log pi(y | c)`` of view ``v``; ``num_tokens[v]`` is the ``[B]`` response length.
    """

    policy: dict[str, Tensor]
    reference: dict[str, Tensor] | None = None
    num_tokens: dict[str, Tensor] = field(default_factory=dict)

    def ref(self, view: str) -> Tensor:
        if self.reference is None or view not in self.reference:
            raise KeyError(f"reference log-probs for view '{view}' are missing")
        return self.reference[view]

    def log_ratio(self, view: str) -> Tensor:
        """``log pi(y|c) - log pi_ref(y|c)`` of one view."""
        return self.policy[view] - self.ref(view)


@dataclass
class LossOutput:
    """A scalar ``loss`` and ``metrics``: name -> ``[B]`` per-example (or scalar) tensors, detached."""

    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class UnpairedLogProbs:
    """Inputs of an unpaired loss, for a batch of ``N`` single completions, each labelled desirable
    (``True``) or undesirable (``False``), as TRL's ``KTOTrainer`` reads them.

    ``policy`` and ``reference``: ``[N]`` summed log-probs ``log pi(y_i | x_i)`` of each completion
    (``reference`` None when the loss needs none); ``labels``: ``[N]`` bool; ``num_tokens``: ``[N]``
    completion lengths (or None).
    """

    policy: Tensor
    labels: Tensor
    reference: Tensor | None = None
    num_tokens: Tensor | None = None

    def log_ratio(self) -> Tensor:
        """``[N]`` ``log pi(y_i|x_i) - log pi_ref(y_i|x_i)``."""
        if self.reference is None:
            raise KeyError("reference log-probs of the unpaired completions are missing")
        return self.policy - self.reference


class Loss:
    """Base of every loss: declare ``views`` and ``needs_reference``, implement ``__call__``."""

    #: the views this loss reads (the collator builds only these)
    views: ClassVar[tuple[str, ...]] = ()
    #: whether the frozen reference's log-probs are needed
    needs_reference: ClassVar[bool] = True

    def required_views(self) -> tuple[str, ...]:
        """Views needed by this instance (composites override this)."""
        return tuple(self.views)

    def requires_reference(self) -> bool:
        return self.needs_reference

    def __call__(self, logps: ViewLogProbs) -> LossOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class PreferenceLoss(Loss):
    """A loss on the direct views ``x -> y_w`` and ``x -> y_l`` (DPO, IPO, hinge, SimPO, ...)."""

    views = (DIRECT_CHOSEN, DIRECT_REJECTED)


class RefineLoss(Loss):
    """A loss on the refinement views (refine-MSE, BT_refine)."""

    views = (REFINE_L_CHOSEN, REFINE_L_REJECTED, REFINE_W_CHOSEN, REFINE_W_REJECTED)


class UnpairedLoss(Loss):
    """A loss on unpaired examples (one completion and a desirable / undesirable label each).

    Its entry point is :meth:`unpaired`, which takes :class:`UnpairedLogProbs`; calling the loss on
    them does the same. Only :class:`aries_lit.modules.UnpairedPolicyModule` trains it, on
    :class:`aries_lit.data.UnpairedDataModule` records. A loss that is also a
    :class:`PreferenceLoss` (``kto``) reads the direct views of pairs too when called on
    :class:`ViewLogProbs`; one with no views trains on unpaired data only.
    """

    views = ()

    def unpaired(self, logps: UnpairedLogProbs) -> LossOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, logps: UnpairedLogProbs) -> LossOutput:  # type: ignore[override]
        return self.unpaired(logps)


class SFTLoss(Loss):
    """A likelihood loss on chosen responses (no reference)."""

    needs_reference = False


def check_beta(loss_name: str, beta: float, what: str = "beta") -> None:
    """Raise ``ValueError`` (``"{loss_name}: {what} must be a finite number > 0, got ..."``) unless
    ``beta`` is a finite number > 0; ``what`` names the coefficient in the message."""
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise ValueError(f"{loss_name}: {what} must be a finite number > 0, got {beta!r}")


def detach_metrics(metrics: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().float() for k, v in metrics.items()}


def direct_reward_metrics(chosen_rewards: Tensor, rejected_rewards: Tensor) -> dict[str, Tensor]:
    """Implicit-reward metrics of the direct views (as TRL reports them)."""
    return detach_metrics(
        {
            "rewards/chosen": chosen_rewards,
            "rewards/rejected": rejected_rewards,
            "rewards/margin": chosen_rewards - rejected_rewards,
            "rewards/accuracy": (chosen_rewards > rejected_rewards).to(torch.float32),
        }
    )


from aries_lit.core.registry import Registry  # noqa: E402

#: short name -> loss class; ``@LOSSES.register("name")`` adds one
LOSSES: Registry[Loss] = Registry("losses", Loss)

__all__ = [
    "ALL_VIEWS",
    "CONTEXTS",
    "DIRECT",
    "DIRECT_CHOSEN",
    "DIRECT_REJECTED",
    "LOSSES",
    "REFINE_L",
    "REFINE_L_CHOSEN",
    "REFINE_L_REJECTED",
    "REFINE_W",
    "REFINE_W_CHOSEN",
    "REFINE_W_REJECTED",
    "RESPONSES",
    "Loss",
    "LossOutput",
    "PreferenceLoss",
    "RefineLoss",
    "SFTLoss",
    "UnpairedLogProbs",
    "UnpairedLoss",
    "ViewLogProbs",
    "check_beta",
    "detach_metrics",
    "direct_reward_metrics",
    "split_view",
]
