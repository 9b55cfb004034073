"""Group policy-gradient training (GRPO / Dr. GRPO / RLOO) on the loop's own scored collections."""

from __future__ import annotations

from typing import Any

import torch

from aries_lit.losses import GroupLogProbs, GroupLoss, Loss
from aries_lit.modules.logprobs import token_logprobs
from aries_lit.modules.policy import PolicyModule


class GroupPolicyModule(PolicyModule):
    """Policy + (when the loss needs one) frozen reference, trained with a group loss (``grpo``).

    Reads batches of :class:`aries_lit.data.groups.GroupDataModule` (one row per completion, rewards,
    group index), computes per-token log-probs of every completion under the policy and, for
    ``beta > 0`` or ``old_logps: reference``, under the reference (on the fly: ``precompute_reference``
    caches summed log-probs only, so it is refused), and calls the loss with
    :class:`~aries_lit.losses.GroupLogProbs`. Everything else (optimizer, schedule, LoRA, export) is
    :class:`PolicyModule`'s.
    """

    default_loss = "grpo"
    accepts_group_loss = True

    def _check_loss(self, loss: Loss) -> None:
        if not isinstance(loss, GroupLoss):
            raise ValueError(
                f"GroupPolicyModule trains a group loss (grpo); {type(loss).__name__} is a pair loss: "
                "use model.class_path aries_lit.modules.PreferenceModule"
            )

    def on_fit_start(self) -> None:
        if self.hparams.precompute_reference:
            raise ValueError(
                "GroupPolicyModule: precompute_reference caches summed log-probs, and the group loss needs "
                "per-token ones: set precompute_reference: false (the reference then runs on the fly)"
            )

    @torch.no_grad()
    def reference_token_logps(self, batch: dict[str, Any]) -> torch.Tensor:
        """``[N, T-1]`` per-token reference log-probs (adapters disabled for LoRA)."""
        args = (
            batch["input_ids"],
            batch["attention_mask"],
            batch["loss_mask"],
            self.hparams.logits_chunk_size,
        )
        if self.uses_lora and not self.hparams.reference:
            with self.policy.disable_adapter():
                was_training = self.policy.training
                self.policy.eval()
                logps, _ = token_logprobs(self.policy, *args)
                self.policy.train(was_training)
            return logps
        logps, _ = token_logprobs(self.reference_model(), *args)
        return logps

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        policy, mask = token_logprobs(
            self.policy,
            batch["input_ids"],
            batch["attention_mask"],
            batch["loss_mask"],
            self.hparams.logits_chunk_size,
        )
        reference = self.reference_token_logps(batch) if self.loss.requires_reference() else None
        logps = GroupLogProbs(policy, mask, batch["rewards"], batch["group_index"], reference)
        out = self.loss(logps)
        self.log_loss_output(out, stage, batch["batch_size"])
        self.log(
            f"{stage}/tokens",
            mask.sum().float(),
            on_step=True,
            on_epoch=False,
            reduce_fx="sum",
            batch_size=batch["batch_size"],
        )
        return out.loss
