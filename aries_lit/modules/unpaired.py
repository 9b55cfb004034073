"""KTO on unpaired data: single completions labelled desirable or undesirable."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn

from aries_lit.data.unpaired import UNPAIRED_VIEW
from aries_lit.losses import Loss, UnpairedLogProbs, UnpairedLoss
from aries_lit.losses.kto import KTOLoss, kto_weight_advice
from aries_lit.modules.policy import PolicyModule, counts_total


class UnpairedPolicyModule(PolicyModule):
    """Policy + frozen reference trained with an unpaired loss (``kto``) on labelled completions.

    Reads batches of :class:`aries_lit.data.UnpairedDataModule` (one row per completion, ``labels``
    ``[N]``), computes the summed log-probs of every row under the policy and, when the loss needs
    it, under the reference (on the fly, or once before training with ``precompute_reference``,
    cached with the data as for pairs), and calls the loss's unpaired entry point
    (:meth:`~aries_lit.losses.UnpairedLoss.unpaired`) with :class:`~aries_lit.losses.UnpairedLogProbs`.
    For KTO it warns at the start of training when the weights miss the paper's Eq. 8 range for
    the training set's counts (:func:`~aries_lit.losses.kto.kto_weight_advice`). Everything else
    (optimizer, schedule, LoRA, export) is :class:`PolicyModule`'s.
    """

    default_loss = "kto"
    accepts_unpaired_loss = True

    def _check_loss(self, loss: Loss) -> None:
        if not isinstance(loss, UnpairedLoss):
            raise ValueError(
                f"UnpairedPolicyModule trains an unpaired loss (kto); {type(loss).__name__} is not one: "
                "use model.class_path aries_lit.modules.PreferenceModule with pair data"
            )

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        stats = getattr(dm, "stats", {})
        if isinstance(self.loss, KTOLoss) and "train/examples" in stats:
            advice = kto_weight_advice(
                stats.get("train/desirable", 0),
                stats.get("train/undesirable", 0),
                self.loss.desirable_weight,
                self.loss.undesirable_weight,
            )
            if advice:
                rank_zero_warn(advice)
        super().on_fit_start()

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        batch = self.on_device(batch)
        policy, counts = self.view_logps(self.policy, batch)
        reference = self.batch_reference(batch)
        logps = UnpairedLogProbs(
            policy=policy[UNPAIRED_VIEW],
            labels=batch["labels"],
            reference=None if reference is None else reference[UNPAIRED_VIEW],
            num_tokens=counts[UNPAIRED_VIEW],
        )
        out = self.loss.unpaired(logps)
        self.log_step(out, stage, batch["batch_size"], counts_total(counts))
        return out.loss
