"""KTO (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization", arXiv
2402.01306) on paired and on unpaired data.

*Paired*: the chosen answer of a pair is a *desirable* example, the rejected one an *undesirable*
example, so a batch of ``B`` pairs is TRL's unpaired batch of ``2B`` rows
(``trl.unpair_preference_dataset``: one ``label=True`` row per chosen answer, one ``label=False``
row per rejected answer). *Unpaired*: a batch of ``N`` labelled completions
(:class:`~aries_lit.losses.base.UnpairedLogProbs`, TRL's ``{"prompt", "completion", "label"}``
rows), through :meth:`KTOLoss.unpaired`.

The per-example losses are exactly those of TRL 1.16's ``KTOTrainer._compute_loss``
(:func:`kto_losses`); what differs, and only on where its inputs come from, is the KL estimate
``z0`` (:func:`kl_estimate`, see :class:`KTOLoss`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from aries_lit.losses.base import (
    DIRECT_CHOSEN,
    DIRECT_REJECTED,
    LOSSES,
    LossOutput,
    PreferenceLoss,
    UnpairedLogProbs,
    UnpairedLoss,
    ViewLogProbs,
    check_beta,
    detach_metrics,
    direct_reward_metrics,
)
from aries_lit.losses.preference import _logps_metrics, check_inputs

__all__ = ["KTO_LOSS_TYPES", "KTOLoss", "kl_estimate", "kto_losses", "kto_weight_advice"]

#: TRL 1.16 ``KTOConfig.loss_type`` choices
KTO_LOSS_TYPES: tuple[str, ...] = ("kto", "apo_zero_unpaired")
#: the paper's Eq. 8 range of ``w_d n_D / (w_u n_U)`` (TRL rounds the upper bound to 1.33)
WEIGHT_RATIO_RANGE: tuple[float, float] = (1.0, 4.0 / 3.0)


def kl_estimate(logratios: Tensor) -> Tensor:
    """``z0 = max(0, mean_j logratios_j)``, detached: a scalar ``[]`` from ``[N]`` log-ratios
    ``log pi(y_j|c_j) - log pi_ref(y_j|c_j)``.

    TRL's estimate (``kl = (KL_logps - ref_KL_logps).mean().detach().clamp(min=0)``); TRL gives it
    mismatched (prompt, completion) pairs, :class:`KTOLoss` the batch's own pairs.
    """
    return logratios.mean().detach().clamp(min=0)


def kto_losses(
    chosen_logratios: Tensor,
    rejected_logratios: Tensor,
    kl: Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    loss_type: str = "kto",
) -> tuple[Tensor, Tensor]:
    """The weighted per-example losses of TRL 1.16's ``KTOTrainer._compute_loss``.

    ``chosen_logratios`` ``[B_d]`` and ``rejected_logratios`` ``[B_u]`` are
    ``log pi(y|x) - log pi_ref(y|x)`` of the desirable and undesirable examples, ``kl`` the scalar
    ``z0``. ``kto``: ``w_d (1 - sigma(beta (r - z0)))`` and ``w_u (1 - sigma(beta (z0 - r)))``;
    ``apo_zero_unpaired`` (APO-zero unpaired, arXiv 2408.06266 Eq. 7): ``w_d (1 - sigma(beta r))``
    and ``w_u sigma(beta r)`` (no ``z0``). Returns ``([B_d], [B_u])``; TRL's loss is the mean of
    their concatenation.
    """
    if loss_type == "kto":
        chosen = 1 - torch.sigmoid(beta * (chosen_logratios - kl))
        rejected = 1 - torch.sigmoid(beta * (kl - rejected_logratios))
    elif loss_type == "apo_zero_unpaired":
        chosen = 1 - torch.sigmoid(beta * chosen_logratios)
        rejected = torch.sigmoid(beta * rejected_logratios)
    else:
        raise ValueError(f"kto: loss_type must be one of {', '.join(KTO_LOSS_TYPES)}, got {loss_type!r}")
    return desirable_weight * chosen, undesirable_weight * rejected


def kto_weight_advice(
    num_desirable: int, num_undesirable: int, desirable_weight: float, undesirable_weight: float
) -> str | None:
    """The paper's Eq. 8 advice on the weights, or ``None`` when they follow it.

    Ethayarajh et al. recommend ``w_d n_D / (w_u n_U)`` in ``[1, 4/3]`` (``n_D``, ``n_U``: the
    desirable and undesirable examples of the training set). Returns a one-line message naming the
    ratio and a ``desirable_weight`` range that would meet it (TRL's ``KTOTrainer`` warns the same
    way); a set with no example of one kind gets its own message (the ratio is undefined).
    """
    if num_desirable == 0 or num_undesirable == 0:
        missing = "desirable" if num_desirable == 0 else "undesirable"
        return (
            f"kto: the training set has no {missing} example ({num_desirable} desirable, "
            f"{num_undesirable} undesirable): the weights' balance (Eq. 8) does not apply"
        )
    ratio = desirable_weight * num_desirable / (undesirable_weight * num_undesirable)
    low, high = WEIGHT_RATIO_RANGE
    if low <= ratio <= high + 1e-9:
        return None
    base = undesirable_weight * num_undesirable / num_desirable
    return (
        f"kto: desirable_weight * n_desirable / (undesirable_weight * n_undesirable) = {ratio:.3g} "
        f"({num_desirable} desirable, {num_undesirable} undesirable examples) is outside the paper's "
        f"[1, 4/3] (arXiv 2402.01306 Eq. 8): e.g. desirable_weight in [{base * low:.3g}, {base * high:.3g}]"
    )


def _check_weight(what: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"kto: {what} must be a finite number > 0, got {value!r}")


@LOSSES.register("kto")
class KTOLoss(PreferenceLoss, UnpairedLoss):
    """KTO (Ethayarajh et al. 2024, arXiv 2402.01306, the KTO loss: Eq. 7 in the numbering TRL 1.16's
    ``kto_trainer.py`` cites; TRL ``KTOTrainer``, ``loss_type="kto"`` or ``"apo_zero_unpaired"``).

    Paper: ``L_KTO = E[lambda_y - v(x, y)]`` with ``r = log pi(y|x)/pi_ref(y|x)``,
    ``v = lambda_D sigma(beta (r - z0))`` for desirable ``y`` and ``lambda_U sigma(beta (z0 - r))``
    for undesirable ``y``, ``z0 = KL(pi(y'|x) || pi_ref(y'|x))``. On a batch of ``B`` pairs,
    ``y_w`` desirable and ``y_l`` undesirable (``lambda_D = desirable_weight``,
    ``lambda_U = undesirable_weight``)::

        L = (1 / 2B) * sum_b [ w_d (1 - sigma(beta (lr_w - z0))) + w_u (1 - sigma(beta (z0 - lr_l))) ]

    i.e. the mean over the ``2B`` examples, as TRL averages its unpaired batch (``losses.nanmean()``;
    here ``mean``, so a NaN is not hidden). ``loss_type="apo_zero_unpaired"`` drops ``z0``:
    ``w_d (1 - sigma(beta lr_w))`` and ``w_u sigma(beta lr_l)``. The paper's Eq. 8 advice on the
    weights, ``lambda_D n_D / (lambda_U n_U)`` in ``[1, 4/3]``, is ``w_d / w_u`` in ``[1, 4/3]`` on
    paired data (``n_D = n_U``).

    **The KL estimate** ``z0`` (detached, clamped at 0, one scalar per batch, as in TRL):
    ``z0 = max(0, (1 / 2B) * sum_b [lr_w(b) + lr_l(b)])``, the batch mean of the log-ratios of the
    batch's own ``2B`` completions, each under *its own* prompt. TRL scores the same ``2B``
    completions under *mismatched* prompts (it rotates completions by one within each batch,
    ``(x_i, y_{i-1})``, and runs policy and reference on those extra sequences); aries_lit's views
    have no mismatched (prompt, completion) view, so the matched pairs stand in. On the same
    inputs this is TRL's computation with ``KL_logps`` / ``ref_KL_logps`` set to the batch's
    matched log-probs (``tests/test_losses_trl.py`` checks it). With several processes, TRL averages
    the per-process estimates; here each process uses its own batch's.

    Shapes: views ``direct/chosen``, ``direct/rejected`` of policy and reference, each ``[B]``;
    loss ``[]``; metrics ``rewards/{chosen,rejected,margin,accuracy}`` (rewards ``beta * lr``, as
    TRL's ``rewards/chosen``/``rewards/rejected``), ``logps/direct/{chosen,rejected}``, each
    ``[B]``, and the scalar ``kto/kl`` (``z0``; TRL's ``kl``, 0 for ``apo_zero_unpaired``).

    **Unpaired** (:meth:`unpaired`, what :class:`aries_lit.modules.UnpairedPolicyModule` calls; also
    ``__call__`` on :class:`~aries_lit.losses.base.UnpairedLogProbs`): ``N`` completions ``y_i``,
    each desirable (``label_i``) or undesirable, ``lr_i = log pi(y_i|x_i) - log pi_ref(y_i|x_i)``::

        L = (1 / N) * [ sum_{i desirable} w_d (1 - sigma(beta (lr_i - z0)))
                      + sum_{i undesirable} w_u (1 - sigma(beta (z0 - lr_i))) ]
        z0 = max(0, (1 / N) * sum_i lr_i)

    the mean over the batch's examples of TRL's per-example losses, with ``z0`` again the batch
    mean of its own log-ratios (matched, as above). A batch may hold any mix, including no
    desirable or no undesirable example (that side's sum is empty, as in TRL). Here Eq. 8's
    ``n_D`` and ``n_U`` are the training set's counts (:func:`kto_weight_advice`). Metrics:
    ``rewards/chosen`` ``[N_d]`` and ``rewards/rejected`` ``[N_u]`` (``beta * lr`` of the
    desirable and the undesirable examples present, TRL's names), ``logps/chosen``,
    ``logps/rejected`` (likewise), ``kto/desirable`` ``[N]`` (1 for a desirable example: its mean
    is the desirable share) and the scalar ``kto/kl``.
    """

    def __init__(
        self,
        beta: float = 0.1,
        desirable_weight: float = 1.0,
        undesirable_weight: float = 1.0,
        loss_type: str = "kto",
    ) -> None:
        check_beta("kto", beta)
        _check_weight("desirable_weight", desirable_weight)
        _check_weight("undesirable_weight", undesirable_weight)
        if loss_type not in KTO_LOSS_TYPES:
            raise ValueError(f"kto: loss_type must be one of {', '.join(KTO_LOSS_TYPES)}, got {loss_type!r}")
        self.beta = beta
        self.desirable_weight = desirable_weight
        self.undesirable_weight = undesirable_weight
        self.loss_type = loss_type

    def _kl(self, logratios: Tensor) -> Tensor:
        if self.loss_type == "kto":
            return kl_estimate(logratios)
        return torch.zeros((), dtype=logratios.dtype, device=logratios.device)

    def __call__(self, logps: ViewLogProbs | UnpairedLogProbs) -> LossOutput:  # type: ignore[override]
        if isinstance(logps, UnpairedLogProbs):
            return self.unpaired(logps)
        check_inputs(logps, self.views, True, "kto")
        lr_w = logps.log_ratio(DIRECT_CHOSEN)
        lr_l = logps.log_ratio(DIRECT_REJECTED)
        kl = self._kl(torch.cat((lr_w, lr_l)))
        chosen, rejected = kto_losses(
            lr_w, lr_l, kl, self.beta, self.desirable_weight, self.undesirable_weight, self.loss_type
        )
        metrics = {
            **direct_reward_metrics(self.beta * lr_w, self.beta * lr_l),
            **_logps_metrics(logps),
            **detach_metrics({"kto/kl": kl}),
        }
        return LossOutput(torch.cat((chosen, rejected)).mean(), metrics)

    def unpaired(self, logps: UnpairedLogProbs) -> LossOutput:
        """The loss of ``N`` labelled completions (the class docstring's *Unpaired* equation)."""
        labels = logps.labels
        if logps.reference is None:
            raise KeyError("kto needs reference log-probs of the unpaired completions; got none")
        shapes = {tuple(t.shape) for t in (logps.policy, logps.reference, labels)}
        if len(shapes) != 1 or len(logps.policy.shape) != 1 or labels.dtype != torch.bool:
            raise ValueError(
                "kto: unpaired policy / reference log-probs and labels must be [N] tensors of one size, "
                f"labels bool; got {tuple(logps.policy.shape)}, {tuple(logps.reference.shape)}, "
                f"{tuple(labels.shape)} {labels.dtype}"
            )
        lr = logps.log_ratio()
        kl = self._kl(lr)
        lr_d, lr_u = lr[labels], lr[~labels]
        chosen, rejected = kto_losses(
            lr_d, lr_u, kl, self.beta, self.desirable_weight, self.undesirable_weight, self.loss_type
        )
        metrics = detach_metrics(
            {
                "rewards/chosen": self.beta * lr_d,
                "rewards/rejected": self.beta * lr_u,
                "logps/chosen": logps.policy[labels],
                "logps/rejected": logps.policy[~labels],
                "kto/desirable": labels.to(torch.float32),
                "kto/kl": kl,
            }
        )
        return LossOutput(torch.cat((chosen, rejected)).mean(), metrics)
