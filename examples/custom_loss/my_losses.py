"""A user-defined loss, in the user's own module: no edit of aries_lit needed.

Train it with ``PYTHONPATH=examples/custom_loss aries-lit fit --config examples/custom_loss/config.yaml``
(``class_path: my_losses.MarginDPOLoss``); with ``ARIES_LIT_PLUGINS=my_losses`` as well, a config
may name it ``class_path: margin_dpo``.
"""

from __future__ import annotations

import torch.nn.functional as F

from aries_lit.losses import LOSSES, DPOLoss, LossOutput, ViewLogProbs
from aries_lit.losses.base import DIRECT_CHOSEN, DIRECT_REJECTED, direct_reward_metrics


@LOSSES.register("margin_dpo")
class MarginDPOLoss(DPOLoss):
    """DPO with a target margin: ``-log sigma(beta * h - margin)`` (Eq. 3 of ARIES shifted by ``margin``)."""

    def __init__(self, beta: float = 0.1, margin: float = 0.5) -> None:
        super().__init__(beta=beta)
        self.margin = margin

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        chosen = self.beta * logps.log_ratio(DIRECT_CHOSEN)
        rejected = self.beta * logps.log_ratio(DIRECT_REJECTED)
        loss = -F.logsigmoid(chosen - rejected - self.margin).mean()
        return LossOutput(loss, direct_reward_metrics(chosen, rejected))
