"""Group policy-gradient training (GRPO / Dr. GRPO / RLOO) on the loop's own scored collections,
alone or as the preference term of ARIES (Eq. 10) with a refinement term on each group's best and
worst answers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from aries_lit.losses import ARIESLoss, GroupLogProbs, GroupLoss, Loss, ViewLogProbs, reads_groups
from aries_lit.modules.logprobs import token_logprobs
from aries_lit.modules.policy import PolicyModule, counts_total


class GroupPolicyModule(PolicyModule):
    """Policy + (when the loss needs one) frozen reference, trained with a group loss (``grpo``) or
    with ARIES + GRPO (:class:`~aries_lit.losses.ARIESLoss` / ``BTARIESLoss`` whose preference is a
    group loss).

    Reads batches of :class:`aries_lit.data.groups.GroupDataModule` (one row per completion, rewards,
    group index), computes per-token log-probs of every completion under the policy and, for
    ``beta > 0`` or ``old_logps: reference``, under the reference (on the fly: ``precompute_reference``
    caches summed log-probs only, so it is refused), and calls the loss with
    :class:`~aries_lit.losses.GroupLogProbs`. For ARIES + GRPO it also computes the summed log-probs
    of the batch's ``pair_views`` (the refinement views of each group's ``(y_w, y_l)``) with
    :meth:`PolicyModule.view_logps`, and the reference's with :meth:`PolicyModule.reference_logps`
    when the refine loss needs them, and passes them as ``GroupLogProbs.views``; ``alpha = 1`` skips
    the group rows' forward, ``alpha = 0`` the views'. Everything else (optimizer, schedule, LoRA,
    export) is :class:`PolicyModule`'s.
    """

    default_loss = "grpo"
    accepts_group_loss = True

    def _check_loss(self, loss: Loss) -> None:
        if isinstance(loss, ARIESLoss) and not loss.group_preference:
            raise ValueError(
                f"GroupPolicyModule: the preference of {type(loss).__name__}, "
                f"{type(loss.preference).__name__}, is a pair loss: use model.class_path "
                "aries_lit.modules.PreferenceModule"
            )
        if not reads_groups(loss):
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

    def loss_parts(self) -> tuple[GroupLoss | None, Loss | None]:
        """The group term and the refinement term a step computes (None: not computed)."""
        if isinstance(self.loss, ARIESLoss):
            parts = {key: part for key, _, part in self.loss.parts()}
            return parts.get("pref"), parts.get("refine")  # type: ignore[return-value]
        return self.loss, None  # type: ignore[return-value]

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

    def group_logps(self, batch: dict[str, Any], reference: bool) -> GroupLogProbs:
        """Per-token log-probs of the batch's completions (and the reference's when ``reference``)."""
        policy, mask = token_logprobs(
            self.policy,
            batch["input_ids"],
            batch["attention_mask"],
            batch["loss_mask"],
            self.hparams.logits_chunk_size,
        )
        ref = self.reference_token_logps(batch) if reference else None
        return GroupLogProbs(policy, mask, batch["rewards"], batch["group_index"], ref)

    def pair_view_logps(self, batch: dict[str, Any], reference: bool) -> ViewLogProbs:
        """``[B]`` summed log-probs of the refinement views of each group's ``(y_w, y_l)``."""
        pairs = batch.get("pair_views")
        if pairs is None:
            raise ValueError(
                f"GroupPolicyModule: {type(self.loss).__name__}'s refine term needs the refinement views of "
                "each group's chosen/rejected: use data.class_path aries_lit.data.GroupDataModule"
            )
        policy, counts = self.view_logps(self.policy, pairs)
        ref = self.reference_logps(pairs) if reference else None
        return ViewLogProbs(policy=policy, reference=ref, num_tokens=counts)

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        batch = self.on_device(batch)
        group_loss, refine = self.loss_parts()
        group = views = None
        tokens = torch.zeros((), device=self.device)
        if group_loss is not None:
            group = self.group_logps(batch, group_loss.requires_reference())
            tokens = tokens + group.mask.sum().float()
        if refine is not None:
            views = self.pair_view_logps(batch, refine.requires_reference())
            tokens = tokens + counts_total(views.num_tokens)
        if group is None:
            out = self.loss(views)  # ARIES alpha = 1: the refine term alone
        else:
            out = self.loss(group if views is None else replace(group, views=views))
        self.log_step(out, stage, batch["batch_size"], tokens)
        return out.loss
