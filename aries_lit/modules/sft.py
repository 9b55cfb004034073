"""ARIES-SFT (Eq. 4) or plain SFT (Eq. 2): a policy trained on chosen responses, no reference."""

from __future__ import annotations

from typing import Any

from aries_lit.losses import Loss, SFTLoss
from aries_lit.modules.policy import PolicyModule


class SFTModule(PolicyModule):
    """Supervised fine-tuning with an SFT loss (``aries_sft`` by default; ``sft`` for Eq. 2).

    Defaults follow the paper's SFT stage (Appendix B): AdamW, lr 5e-6, cosine, 3% warm-up.
    """

    default_loss = "aries_sft"

    def __init__(self, model: str, loss: Loss | str | None = None, lr: float = 5e-6, **kwargs: Any) -> None:
        super().__init__(model=model, loss=loss, lr=lr, **kwargs)

    def _check_loss(self, loss: Loss) -> None:
        if not isinstance(loss, SFTLoss):
            raise ValueError(f"SFTModule takes an SFT loss (sft, aries_sft), not {type(loss).__name__}")
