"""Refinement losses of ARIES (arXiv 2502.05605): refine-MSE (Eq. 9) and BT_refine (Appendix C).

Both read the four refinement views, each ``[B]`` for policy and reference:

========================  ===================  ==================
view                      context              response
========================  ===================  ==================
``refine_l/chosen``       ``chat(z(x, y_l))``  ``y_w``
``refine_l/rejected``     ``chat(z(x, y_l))``  ``y_l``
``refine_w/chosen``       ``chat(z(x, y_w))``  ``y_w``
``refine_w/rejected``     ``chat(z(x, y_w))``  ``y_l``
========================  ===================  ==================

The refinement margin (Eq. 7) of a previous answer ``y1`` and a new answer ``y2``, both scored
in the context built from ``y1``, is
``v(x, y1, y2) = b_r * [lr(y2 | x, y1, z) - lr(y1 | x, y1, z)]`` with ``lr`` the summed
policy/reference log-ratio. Hence

* ``v(x, y_l, y_w) = b_r * (lr(refine_l/chosen) - lr(refine_l/rejected))`` (metric ``refine/v_l_to_w``),
* ``v(x, y_w, y_l) = b_r * (lr(refine_w/rejected) - lr(refine_w/chosen))`` (metric ``refine/v_w_to_l``).

``refine/accuracy`` is 1 for a pair where the policy (relative to the reference) both improves
``y_l`` to ``y_w`` (``v_l_to_w > 0``) and does not degrade ``y_w`` to ``y_l`` (``v_w_to_l < 0``), else 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aries_lit.losses.base import (
    LOSSES,
    REFINE_L_CHOSEN,
    REFINE_L_REJECTED,
    REFINE_W_CHOSEN,
    REFINE_W_REJECTED,
    LossOutput,
    RefineLoss,
    ViewLogProbs,
    check_beta,
    detach_metrics,
)
from aries_lit.losses.preference import check_inputs

__all__ = ["BTRefineLoss", "RefineMSELoss", "refinement_margins"]

#: how a refine loss's ``beta`` is named in its error messages
BETA_R = "beta (the paper's b_r)"


def refinement_margins(logps: ViewLogProbs, beta: float) -> tuple[Tensor, Tensor]:
    """``(v(x, y_l, y_w), v(x, y_w, y_l))`` of Eq. 7, each ``[B]``."""
    v_l_to_w = beta * (logps.log_ratio(REFINE_L_CHOSEN) - logps.log_ratio(REFINE_L_REJECTED))
    v_w_to_l = beta * (logps.log_ratio(REFINE_W_REJECTED) - logps.log_ratio(REFINE_W_CHOSEN))
    return v_l_to_w, v_w_to_l


def _refine_metrics(v_l_to_w: Tensor, v_w_to_l: Tensor) -> dict[str, Tensor]:
    return detach_metrics(
        {
            "refine/v_l_to_w": v_l_to_w,
            "refine/v_w_to_l": v_w_to_l,
            "refine/accuracy": ((v_l_to_w > 0) & (v_w_to_l < 0)).to(torch.float32),
        }
    )


@LOSSES.register("refine_mse")
class RefineMSELoss(RefineLoss):
    """Refine-MSE (ARIES arXiv 2502.05605 Eq. 9).

    ``L = E[(1/2 - v(x, y_l, y_w))^2] + E[(1/2 + v(x, y_w, y_l))^2]`` with ``v`` the refinement
    margin of Eq. 7 (module docstring) and ``beta = b_r`` (paper: 0.05 with rule selection, 0.01
    with reward-model selection). Refining ``y_l`` into ``y_w`` should be worth ``+1/2``; refining
    ``y_w`` into ``y_l`` should be worth ``-1/2``. Each expectation is the batch mean.

    Shapes: views ``refine_l/{chosen,rejected}``, ``refine_w/{chosen,rejected}`` of policy and
    reference, each ``[B]``; loss ``[]``; metrics ``refine/v_l_to_w``, ``refine/v_w_to_l``,
    ``refine/accuracy``, each ``[B]``.
    """

    def __init__(self, beta: float = 0.05) -> None:
        check_beta("refine_mse", beta, BETA_R)
        self.beta = beta

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, True, "refine_mse")
        v_l_to_w, v_w_to_l = refinement_margins(logps, self.beta)
        loss = ((0.5 - v_l_to_w) ** 2).mean() + ((0.5 + v_w_to_l) ** 2).mean()
        return LossOutput(loss, _refine_metrics(v_l_to_w, v_w_to_l))


@LOSSES.register("bt_refine")
class BTRefineLoss(RefineLoss):
    """BT_refine (ARIES arXiv 2502.05605 Appendix C): a Bradley-Terry preference for ``y_w`` over
    ``y_l`` in both refinement contexts.

    ``L = -E[log sigma(b_r * (lr(refine_l/chosen) - lr(refine_l/rejected)))]
          -E[log sigma(b_r * (lr(refine_w/chosen) - lr(refine_w/rejected)))]``
    ``= -E[log sigma(v(x, y_l, y_w))] - E[log sigma(-v(x, y_w, y_l))]``,
    with ``lr`` the summed policy/reference log-ratio of a view.

    This implements the paper's *definition* of the refinement preference,
    ``p_BT_refine(y2 > y1 | x, z) = sigma(r(y2|x,y1,z) - r(y1|x,y1,z)) * sigma(r(y2|x,y2,z) - r(y1|x,y2,z))``,
    whose negative log-likelihood is the loss above; it agrees with the second term of Eq. 9
    (refining ``y_w`` into ``y_l`` is penalised). The *printed final formula* in Appendix C flips
    the sign of its second term (it would prefer ``y_l`` after ``y_w``); we do not follow that.

    Shapes: views ``refine_l/{chosen,rejected}``, ``refine_w/{chosen,rejected}`` of policy and
    reference, each ``[B]``; loss ``[]``; metrics ``refine/v_l_to_w``, ``refine/v_w_to_l``,
    ``refine/accuracy``, each ``[B]``.
    """

    def __init__(self, beta: float = 0.05) -> None:
        check_beta("bt_refine", beta, BETA_R)
        self.beta = beta

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        check_inputs(logps, self.views, True, "bt_refine")
        v_l_to_w, v_w_to_l = refinement_margins(logps, self.beta)
        loss = -F.logsigmoid(v_l_to_w).mean() - F.logsigmoid(-v_w_to_l).mean()
        return LossOutput(loss, _refine_metrics(v_l_to_w, v_w_to_l))
