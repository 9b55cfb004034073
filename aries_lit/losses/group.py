"""Group policy-gradient objectives trained from the loop's own collections: GRPO, Dr. GRPO, RLOO.

A *group* is one prompt ``x`` with ``G_b`` completions ``y_1..y_G`` that the current policy sampled
(the loop's candidates) and their scalar rewards ``r_1..r_G`` (verifier, graded verifier or reward
model; :class:`aries_lit.selectors.group.GroupSelector` writes them). A batch holds ``B`` groups,
``N = sum_b G_b`` completions in all, as ``[N, T]`` per-token log-probs (:class:`GroupLogProbs`).

Advantages (:func:`group_advantages`, per group ``b``; ``mean_b``, ``std_b`` over its rewards,
``std`` unbiased as TRL's ``nanstd``):

* ``grpo`` (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300 Sec. 4.1.2):
  ``A_i = (r_i - mean_b) / (std_b + 1e-4)`` (``scale_rewards="group"``);
* ``dr_grpo`` (Liu et al. 2025, "Understanding R1-Zero-Like Training", arXiv 2503.20783):
  ``A_i = r_i - mean_b`` (``scale_rewards="none"``);
* ``rloo`` (Ahmadian et al. 2024, "Back to Basics", arXiv 2402.14740; leave-one-out baseline of
  Kool et al. 2019): ``A_i = r'_i - (1 / (G_b - 1)) sum_{j != i} r'_j``.

Losses (:func:`group_policy_loss`; ``rho_{i,t} = exp(log pi(y_{i,t}) - log pi_old(y_{i,t}))``,
``clip(rho) = clamp(rho, 1 - eps_low, 1 + eps_high)``, ``k3_{i,t} = exp(q - p) - (q - p) - 1`` with
``p = log pi``, ``q = log pi_ref`` per token, Schulman's k3 estimator of ``KL(pi || pi_ref)``)::

    l_{i,t} = -min(rho_{i,t} A_i, clip(rho_{i,t}) A_i) + beta * k3_{i,t}
    grpo:     L = (1/N) sum_i (1/|y_i|) sum_t l_{i,t}            (per-sequence token mean)
    dr_grpo:  L = (1/(N * L_max)) sum_i sum_t l_{i,t}            (constant normaliser L_max)
    rloo:     r'_i = r_i - beta * sum_t (p_{i,t}^old - q_{i,t})  (k1 KL in the reward, detached)
              L = (1/N) sum_i -min(rho_i A_i, clip(rho_i) A_i),  rho_i = exp(sum_t p_{i,t} - p^old_{i,t})

These are TRL 1.16's ``GRPOTrainer._compute_loss`` (``loss_type="grpo"`` / ``"dr_grpo"``, token-level
importance sampling, no entropy mask or bonus) and ``RLOOTrainer._compute_loss`` with its
KL-in-the-reward, on the same inputs (``tests/test_losses_trl.py``).

**Old log-probs and the importance ratio.** The completions were sampled by the model that started
the stage (``M_t``), and are trained on in one pass. ``old_logps="current"`` (default) sets
``log pi_old`` to the detached current log-probs, so ``rho = 1`` at every step and the clip never
acts: the gradient is the plain policy gradient ``-A_i grad log pi(y_i)`` (TRL does the same when
``num_iterations == 1``: ``old_per_token_logps = per_token_logps.detach()``). ``old_logps="reference"``
uses the reference's log-probs as ``log pi_old``: when the reference is the collecting model (the
default in ``iterate``: the model at the start of the stage), this is the true ratio to the
behaviour policy, ``rho = 1`` at the first step, and the clip acts on later steps of the pass as
the policy moves away from ``M_t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from aries_lit.losses.base import LOSSES, Loss, LossOutput, ViewLogProbs, check_beta, detach_metrics

__all__ = [
    "GROUP_VARIANTS",
    "SCALE_REWARDS",
    "GRPOLoss",
    "GroupLogProbs",
    "GroupLoss",
    "group_advantages",
    "group_policy_loss",
    "k3_kl",
]

#: ``variant`` choices of :class:`GRPOLoss`
GROUP_VARIANTS: tuple[str, ...] = ("grpo", "dr_grpo", "rloo")
#: ``scale_rewards`` choices (TRL's ``GRPOConfig.scale_rewards``; ``batch`` for ``rloo`` is TRL's
#: ``RLOOConfig.normalize_advantages``)
SCALE_REWARDS: tuple[str, ...] = ("group", "batch", "none")
#: TRL's ``1e-4`` added to the standard deviation
STD_EPS = 1e-4


@dataclass
class GroupLogProbs:
    """Inputs of a group loss, for ``B`` groups holding ``N`` completions in all.

    ``policy``, ``reference``, ``old``: ``[N, T]`` per-token log-probs of each completion's tokens
    (any value where ``mask`` is 0); ``mask``: ``[N, T]`` 1 on completion tokens; ``rewards``: ``[N]``;
    ``group_index``: ``[N]`` long, the group ``0..B-1`` of each completion. ``reference`` is None when
    the loss needs none; ``old`` is None unless given (see :class:`GRPOLoss`'s ``old_logps``).
    ``views``: for ARIES + GRPO (:class:`~aries_lit.losses.ARIESLoss` with a group preference), the
    refinement views of each group's ``(y_w, y_l)`` = its best and worst answers, ``[B]`` per view
    (one pair per group, in group order); None otherwise.
    """

    policy: Tensor
    mask: Tensor
    rewards: Tensor
    group_index: Tensor
    reference: Tensor | None = None
    old: Tensor | None = None
    views: ViewLogProbs | None = None

    @property
    def num_groups(self) -> int:
        return int(self.group_index.max()) + 1 if self.group_index.numel() else 0


class GroupLoss(Loss):
    """A loss on groups of completions with rewards; ``__call__`` takes :class:`GroupLogProbs`.

    It reads no preference-pair view (``views = ()``); only
    :class:`aries_lit.modules.GroupPolicyModule` trains with it, alone or in the preference slot of
    :class:`~aries_lit.losses.ARIESLoss` (ARIES Eq. 10 with the group term as ``L_pref``).
    """

    views = ()

    def __call__(self, logps: GroupLogProbs) -> LossOutput:  # type: ignore[override]  # pragma: no cover
        raise NotImplementedError


def _group_sums(values: Tensor, group_index: Tensor, num_groups: int) -> Tensor:
    return torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add(0, group_index, values)


def group_advantages(
    rewards: Tensor, group_index: Tensor, variant: str = "grpo", scale_rewards: str = "group"
) -> Tensor:
    """``[N]`` advantages of ``[N]`` rewards in groups ``group_index`` (``[N]`` long, ``0..B-1``).

    ``grpo`` / ``dr_grpo``: ``A_i = r_i - mean_b``, divided by ``std_b + 1e-4`` (``scale_rewards=
    "group"``; ``std_b`` the unbiased standard deviation of the group's rewards, as TRL's
    ``nanstd``) or by ``std + 1e-4`` over all ``N`` rewards (``"batch"``), or not (``"none"``).
    ``rloo``: ``A_i = r_i - (S_b - r_i) / (G_b - 1)``; ``"batch"`` then standardises over all ``N``
    (TRL's ``normalize_advantages``), ``"group"`` is refused. A group of one completion has
    advantage 0 (TRL: NaN, then ``nan_to_num``). Differentiable in nothing: call it on detached rewards.
    """
    if variant not in GROUP_VARIANTS:
        raise ValueError(f"grpo: variant must be one of {', '.join(GROUP_VARIANTS)}, got {variant!r}")
    if scale_rewards not in SCALE_REWARDS:
        raise ValueError(
            f"grpo: scale_rewards must be one of {', '.join(SCALE_REWARDS)}, got {scale_rewards!r}"
        )
    rewards = rewards.to(torch.float64) if rewards.dtype == torch.float64 else rewards.float()
    num_groups = int(group_index.max()) + 1 if group_index.numel() else 0
    counts = _group_sums(torch.ones_like(rewards), group_index, num_groups)
    sums = _group_sums(rewards, group_index, num_groups)
    n = counts[group_index]
    single = n < 2
    if variant == "rloo":
        if scale_rewards == "group":
            raise ValueError("grpo: variant 'rloo' takes scale_rewards 'none' or 'batch', not 'group'")
        baseline = (sums[group_index] - rewards) / (n - 1).clamp(min=1)
        adv = torch.where(single, torch.zeros_like(rewards), rewards - baseline)
        if scale_rewards == "batch" and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + STD_EPS)
        return adv
    mean = (sums / counts.clamp(min=1))[group_index]
    adv = rewards - mean
    if scale_rewards == "group":
        sq = _group_sums((rewards - mean) ** 2, group_index, num_groups)
        std = (sq / (counts - 1).clamp(min=1)).sqrt()[group_index]
        adv = adv / (std + STD_EPS)
    elif scale_rewards == "batch" and rewards.numel() > 1:
        adv = adv / (rewards.std() + STD_EPS)
    return torch.where(single, torch.zeros_like(adv), adv)


def k3_kl(policy: Tensor, reference: Tensor) -> Tensor:
    """Per-token ``exp(q - p) - (q - p) - 1`` (``p = log pi``, ``q = log pi_ref``; k3, always >= 0)."""
    delta = reference - policy
    return torch.exp(delta) - delta - 1


def group_policy_loss(
    logps: GroupLogProbs,
    variant: str = "grpo",
    beta: float = 0.0,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    scale_rewards: str = "group",
    max_completion_length: int = 1024,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The scalar loss of the module docstring and its metrics (see there for the equations).

    Shapes: ``logps.policy`` / ``reference`` / ``old`` / ``mask`` ``[N, T]``, ``rewards`` and
    ``group_index`` ``[N]``. ``old = None`` means the detached policy (ratio 1). Returns
    ``(loss [], metrics)`` with ``advantages`` ``[N]``, ``kl`` (the masked token mean of k3 for
    ``grpo``/``dr_grpo``, of ``p_old - q`` for ``rloo``; TRL's ``kl``), ``clip_ratio/region`` and
    ``completion_length`` ``[N]``.
    """
    policy, mask = logps.policy, logps.mask.to(logps.policy.dtype)
    old = logps.policy.detach() if logps.old is None else logps.old
    if beta != 0.0 and logps.reference is None:
        raise KeyError("grpo: beta > 0 needs the reference's per-token log-probs")
    lengths = mask.sum(-1)
    rewards = logps.rewards.detach().to(policy.dtype)
    metrics: dict[str, Tensor] = {"completion_length": lengths}
    if variant == "rloo":
        if beta != 0.0:
            seq_kl = ((old - logps.reference) * mask).sum(-1).detach()
            rewards = rewards - beta * seq_kl
            metrics["kl"] = ((old - logps.reference) * mask).sum() / mask.sum().clamp(min=1.0)
        adv = group_advantages(rewards, logps.group_index, variant, scale_rewards).to(policy.dtype)
        coef_1 = torch.exp(((policy - old) * mask).sum(-1))
        coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
        loss = -torch.min(coef_1 * adv, coef_2 * adv).mean()
        clipped = ((coef_1 < 1 - epsilon_low) & (adv < 0)) | ((coef_1 > 1 + epsilon_high) & (adv > 0))
        metrics["clip_ratio/region"] = clipped.to(policy.dtype)
    else:
        adv = group_advantages(rewards, logps.group_index, variant, scale_rewards).to(policy.dtype)
        a = adv.unsqueeze(1)
        coef_1 = torch.exp(policy - old)
        coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
        per_token = -torch.min(coef_1 * a, coef_2 * a)
        if beta != 0.0:
            kl = k3_kl(policy, logps.reference)
            per_token = per_token + beta * kl
            metrics["kl"] = (kl * mask).sum() / mask.sum().clamp(min=1.0)
        if variant == "grpo":
            loss = ((per_token * mask).sum(-1) / lengths.clamp(min=1.0)).mean()
        else:
            loss = (per_token * mask).sum() / (per_token.shape[0] * max_completion_length)
        clipped = ((coef_1 < 1 - epsilon_low) & (a < 0)) | ((coef_1 > 1 + epsilon_high) & (a > 0))
        metrics["clip_ratio/region"] = (clipped.to(policy.dtype) * mask).sum(-1) / lengths.clamp(min=1.0)
    metrics["advantages"] = adv
    metrics["rewards"] = logps.rewards
    return loss, detach_metrics(metrics)


#: the default ``scale_rewards`` of each variant (GRPO's paper scales; Dr. GRPO and RLOO do not)
DEFAULT_SCALE = {"grpo": "group", "dr_grpo": "none", "rloo": "none"}


@LOSSES.register("grpo")
class GRPOLoss(GroupLoss):
    """Group policy gradient on the loop's own collections: GRPO, Dr. GRPO or RLOO (``variant``).

    Equations, shapes and the importance ratio: :mod:`aries_lit.losses.group`. Offline and one
    pass: each collection (``M_t``'s answers, scored) is trained on once, one optimizer step per
    batch of groups, where online GRPO samples fresh groups from the current policy at every step.

    Args:
        variant: ``grpo`` (arXiv 2402.03300: std-scaled advantages, per-sequence token mean),
            ``dr_grpo`` (arXiv 2503.20783: no std scaling, constant normaliser
            ``max_completion_length``) or ``rloo`` (arXiv 2402.14740: leave-one-out baseline,
            sequence-level REINFORCE, KL in the reward as TRL's ``RLOOTrainer``).
        beta: KL coefficient (k3 per token in the loss for ``grpo``/``dr_grpo``; k1 summed per
            sequence in the reward for ``rloo``); 0 loads no reference (unless ``old_logps:
            reference``). TRL's default is 0.0; DeepSeekMath used 0.04.
        epsilon, epsilon_high: the clip range ``[1 - epsilon, 1 + epsilon_high]`` of the ratio
            (``epsilon_high`` defaults to ``epsilon``; TRL's defaults 0.2).
        scale_rewards: ``group``, ``batch`` or ``none``; ``None`` = the variant's own (``group``
            for ``grpo``, ``none`` for ``dr_grpo`` and ``rloo``).
        max_completion_length: Dr. GRPO's constant normaliser (set it to the generator's
            ``max_new_tokens``; TRL uses ``max_completion_length``).
        old_logps: ``current`` (ratio 1, TRL's ``num_iterations=1``) or ``reference`` (the
            reference's log-probs stand for the collecting policy's).
    """

    def __init__(
        self,
        variant: str = "grpo",
        beta: float = 0.04,
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        scale_rewards: str | None = None,
        max_completion_length: int = 1024,
        old_logps: str = "current",
    ) -> None:
        if variant not in GROUP_VARIANTS:
            raise ValueError(f"grpo: variant must be one of {', '.join(GROUP_VARIANTS)}, got {variant!r}")
        if beta != 0.0:
            check_beta("grpo", beta)
        for what, value in (("epsilon", epsilon), ("epsilon_high", epsilon_high)):
            if value is not None and not (
                isinstance(value, (int, float)) and math.isfinite(value) and value > 0
            ):
                raise ValueError(f"grpo: {what} must be a finite number > 0, got {value!r}")
        scale = DEFAULT_SCALE[variant] if scale_rewards is None else scale_rewards
        if scale not in SCALE_REWARDS or (variant == "rloo" and scale == "group"):
            allowed = "none, batch" if variant == "rloo" else ", ".join(SCALE_REWARDS)
            raise ValueError(
                f"grpo: scale_rewards for variant {variant!r} must be one of {allowed}, got {scale!r}"
            )
        if not (isinstance(max_completion_length, int) and max_completion_length > 0):
            raise ValueError(f"grpo: max_completion_length must be an int > 0, got {max_completion_length!r}")
        if old_logps not in ("current", "reference"):
            raise ValueError(f"grpo: old_logps must be 'current' or 'reference', got {old_logps!r}")
        if variant == "rloo" and old_logps == "reference" and beta != 0.0:
            raise ValueError(
                "grpo: variant 'rloo' takes its KL penalty from the old log-probs (sum_t p_old - q, as "
                "TRL's RLOOTrainer), which old_logps 'reference' makes 0: use old_logps 'current' or beta 0"
            )
        self.variant = variant
        self.beta = float(beta)
        self.epsilon = float(epsilon)
        self.epsilon_high = float(epsilon if epsilon_high is None else epsilon_high)
        self.scale_rewards = scale
        self.max_completion_length = max_completion_length
        self.old_logps = old_logps

    def requires_reference(self) -> bool:
        return self.beta != 0.0 or self.old_logps == "reference"

    def __call__(self, logps: GroupLogProbs) -> LossOutput:  # type: ignore[override]
        if self.old_logps == "reference":
            if logps.reference is None:
                raise KeyError("grpo: old_logps 'reference' needs the reference's per-token log-probs")
            logps = replace(logps, old=logps.reference)
        loss, metrics = group_policy_loss(
            logps,
            self.variant,
            self.beta,
            self.epsilon,
            self.epsilon_high,
            self.scale_rewards,
            self.max_completion_length,
        )
        return LossOutput(loss, metrics)
