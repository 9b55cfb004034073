"""The LightningModule shared by SFT and preference training: a policy, a loss object,
an optional frozen reference, the paper's optimizer and schedule, and metrics."""

from __future__ import annotations

from typing import Any

import torch

from aries_lit.core.view_names import DIRECT_CHOSEN, DIRECT_REJECTED
from aries_lit.data.collator import reference_from_batch, split_views
from aries_lit.losses import LOSSES, ARIESLoss, Loss, RewardLoss, UnpairedLoss, ViewLogProbs, reads_groups
from aries_lit.models import load_causal_lm, load_tokenizer
from aries_lit.modules.base import TrainingModule, check_schedule
from aries_lit.modules.logprobs import packed_logprobs, sequence_logprobs


def log_ratio_metrics(
    policy: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``logratio/direct/{chosen,rejected}``: ``log pi(y|x) - log pi_ref(y|x)`` of the direct views,
    each ``[B]`` (detached): how far training has moved the policy from its reference on the
    answers it trains on (its mean is a sequence-level estimate of the drift; DPO's implicit reward
    is ``beta`` times it)."""
    return {
        f"logratio/{v}": (policy[v] - reference[v]).detach()
        for v in (DIRECT_CHOSEN, DIRECT_REJECTED)
        if v in policy and v in reference
    }


class PolicyModule(TrainingModule):
    """Trains ``model`` (hub name or HF folder) with a loss object.

    Args:
        model: the policy to train, a hub name or an HF-format folder.
        loss: a loss object, a registry name (``"dpo"``, ``"aries"``, ...) or a dotted class path.
        reference: the frozen reference ``pi_ref``; ``None`` = the policy's starting weights.
        precompute_reference: compute reference log-probs once before training, cache them with
            the data (Arrow) and drop the reference model; otherwise run it on the fly.
        dtype: weight dtype of the policy (keep ``float32`` master weights and use
            ``trainer.precision: bf16-mixed`` for bf16 compute).
        lr, weight_decay, adam_betas: AdamW settings; ``schedule`` (cosine, linear,
            constant) with ``warmup_ratio`` of the total steps as linear warm-up.
        gradient_checkpointing: trade compute for activation memory.
        lora: ``peft.LoraConfig`` keyword arguments to train LoRA adapters only (the
            reference is then the base model with adapters disabled: no second copy).
        logits_chunk_size: response tokens per LM-head chunk.
        fused_adamw: ``torch.optim.AdamW(fused=True)`` (one kernel for the whole update: 0.07 s
            instead of 0.32 s per SmolLM2 step on 2 CPU cores); ``None`` = fused except under
            DeepSpeed. With DeepSpeed optimizer offload the optimizer is DeepSpeed's CPU Adam
            (AdamW mode), which ZeRO-Offload requires.
    """

    default_loss = "aries"
    #: whether this module trains group losses (:class:`aries_lit.modules.GroupPolicyModule`)
    accepts_group_loss = False
    #: whether this module trains unpaired-only losses (:class:`aries_lit.modules.UnpairedPolicyModule`);
    #: a loss that reads pairs too (``kto``) trains here either way
    accepts_unpaired_loss = False

    def __init__(
        self,
        model: str,
        loss: Loss | str | None = None,
        reference: str | None = None,
        precompute_reference: bool = False,
        dtype: str = "float32",
        lr: float = 1e-6,
        weight_decay: float = 0.0,
        adam_betas: tuple[float, float] = (0.9, 0.999),
        schedule: str = "cosine",
        warmup_ratio: float = 0.03,
        gradient_checkpointing: bool = False,
        lora: dict[str, Any] | None = None,
        logits_chunk_size: int = 4096,
        fused_adamw: bool | None = None,
    ) -> None:
        super().__init__()
        check_schedule(schedule, warmup_ratio)
        self.loss: Loss = LOSSES.build(loss if loss is not None else self.default_loss)
        if isinstance(self.loss, RewardLoss):
            raise ValueError(
                f"{type(self.loss).__name__} trains a reward model: use model.class_path "
                "aries_lit.modules.RewardModule"
            )
        if reads_groups(self.loss) and not self.accepts_group_loss:
            raise ValueError(
                f"{_describe(self.loss)} trains on groups of scored completions: use model.class_path "
                "aries_lit.modules.GroupPolicyModule with data.class_path aries_lit.data.GroupDataModule"
            )
        if (
            isinstance(self.loss, UnpairedLoss)
            and not self.loss.required_views()
            and not self.accepts_unpaired_loss
        ):
            raise ValueError(
                f"{type(self.loss).__name__} trains on unpaired labelled completions only: use "
                "model.class_path aries_lit.modules.UnpairedPolicyModule with data.class_path "
                "aries_lit.data.UnpairedDataModule"
            )
        self._check_loss(self.loss)
        self.save_hyperparameters(ignore=["loss"])
        self.hparams["loss"] = repr(self.loss)
        self.model_name = model
        self.tokenizer = load_tokenizer(model)
        self.policy: Any = None
        self._reference: list[Any] = []  # kept out of state_dict: never checkpointed

    def _check_loss(self, loss: Loss) -> None:
        """Subclasses restrict which losses they accept."""

    # ----------------------------------------------------------------- model set-up
    def trainable_model(self) -> Any:
        return self.policy

    def configure_model(self) -> None:
        if self.policy is not None:
            return
        hp = self.hparams
        policy = load_causal_lm(self.model_name, dtype=hp.dtype)
        if hp.gradient_checkpointing:
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            policy.config.use_cache = False
        if hp.lora:
            from peft import LoraConfig, get_peft_model

            policy = get_peft_model(policy, LoraConfig(**hp.lora))
        self.policy = policy.train()

    def reference_model(self) -> Any:
        """The frozen reference, loaded on first use (not for LoRA: adapters off is the reference)."""
        if not self._reference:
            ref = load_causal_lm(self.hparams.reference or self.model_name, dtype=self.hparams.dtype)
            ref.requires_grad_(False).eval()
            self._reference.append(ref.to(self.device))
        return self._reference[0]

    def release_reference(self) -> None:
        self._reference.clear()

    # ----------------------------------------------------------------- log-probs
    def view_logps(
        self, model: Any, batch: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Per-view ``[B]`` summed log-probs and response token counts of ``batch``."""
        views, bs = batch["views"], batch["batch_size"]
        if "pred_index" in batch:  # shared-context rows
            sums, counts = packed_logprobs(
                model,
                batch["input_ids"],
                batch["attention_mask"],
                batch["position_ids"],
                batch["pred_index"],
                batch["target_ids"],
                batch["out_index"],
                len(views) * bs,
                self.hparams.logits_chunk_size,
            )
        else:
            sums, counts = sequence_logprobs(
                model,
                batch["input_ids"],
                batch["attention_mask"],
                batch["loss_mask"],
                self.hparams.logits_chunk_size,
            )
        return split_views(sums, views, bs), split_views(counts, views, bs)

    @torch.no_grad()
    def reference_logps(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Reference log-probs of every view of ``batch`` (adapters disabled for LoRA)."""
        if self.uses_lora and not self.hparams.reference:
            with self.policy.disable_adapter():
                was_training = self.policy.training
                self.policy.eval()
                logps, _ = self.view_logps(self.policy, batch)
                self.policy.train(was_training)
            return logps
        logps, _ = self.view_logps(self.reference_model(), batch)
        return logps

    # ----------------------------------------------------------------- training
    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if self.loss.requires_reference() and self.hparams.precompute_reference and dm is not None:
            dm.attach_reference(self)
            self.release_reference()

    def on_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch`` with its tensors (and those of nested dicts, such as ``pair_views``) on this device."""
        return {
            k: v.to(self.device) if torch.is_tensor(v) else self.on_device(v) if isinstance(v, dict) else v
            for k, v in batch.items()
        }

    def batch_reference(self, batch: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        """Per-view reference log-probs when the loss needs them: the cached ones the batch carries
        (``precompute_reference``), else computed now; ``None`` for a reference-free loss."""
        if not self.loss.requires_reference():
            return None
        reference = reference_from_batch(batch)
        return self.reference_logps(batch) if reference is None else reference

    def log_step(self, out: Any, stage: str, batch_size: int, tokens: torch.Tensor) -> None:
        """Log a step's loss output and the response tokens it trained on (summed per epoch)."""
        self.log_loss_output(out, stage, batch_size)
        self.log(
            f"{stage}/tokens",
            tokens,
            on_step=True,
            on_epoch=False,
            reduce_fx="sum",
            batch_size=batch_size,
        )

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        batch = self.on_device(batch)
        policy, counts = self.view_logps(self.policy, batch)
        reference = self.batch_reference(batch)
        out = self.loss(ViewLogProbs(policy=policy, reference=reference, num_tokens=counts))
        if reference is not None:
            out.metrics.update(log_ratio_metrics(policy, reference))
        self.log_step(out, stage, batch["batch_size"], counts_total(counts))
        return out.loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")


def _describe(loss: Loss) -> str:
    """``GRPOLoss``, or ``ARIESLoss with preference GRPOLoss`` for a composite."""
    if isinstance(loss, ARIESLoss):
        return f"{type(loss).__name__} with preference {type(loss.preference).__name__}"
    return type(loss).__name__


def counts_total(counts: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(c.sum() for c in counts.values()).float()
