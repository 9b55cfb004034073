"""Reward-model training: ``r(x, y)`` from preference pairs (Bradley-Terry), exported as an
``AutoModelForSequenceClassification`` folder that the ``reward_model`` selector and ``evaluate``'s
judge load as they are."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from aries_lit.core.chat import assistant_turn_end
from aries_lit.data.collator import split_views
from aries_lit.losses import DIRECT_CHOSEN, DIRECT_REJECTED, LOSSES, PairRewards, RewardLoss
from aries_lit.models import load_reward_model_for_training, load_tokenizer
from aries_lit.modules.base import TrainingModule, check_schedule


class RewardModule(TrainingModule):
    """Trains a reward model on TRL-format preference pairs with a reward loss (``bradley_terry``).

    ``model`` (a causal-LM or a one-label sequence-classification folder, or a hub name) is loaded
    as ``AutoModelForSequenceClassification(num_labels=1)`` with ``pad_token_id`` set; a causal LM
    gets a new, randomly initialised score head. The reward of a pair's ``(x, y)`` is the score
    head on the decoder's hidden state at the last non-pad token of ``chat(x) + y + <the chat
    template's closing text>``, i.e. of the rendered conversation: the same sequence and token that
    :class:`~aries_lit.selectors.reward_model.RewardModelSelector` (and ``evaluate``'s judge)
    scores, so the trained and the served rewards agree. The pairs' views come from the same
    collator as every other loss (``direct/chosen``, ``direct/rejected``; with shared contexts the
    prompt runs once for both answers).

    Metrics (torchmetrics, synced across processes), under ``train/`` and ``val/``: ``loss``,
    ``rewards/accuracy`` (``r_w > r_l``), ``rewards/margin`` (``r_w - r_l``), ``rewards/chosen``,
    ``rewards/rejected``, ``loss/bradley_terry`` (and ``loss/center`` with reward centring).

    Args:
        model: the starting model, a hub name or an HF-format folder.
        loss: a reward loss object, registry name or class path (``bradley_terry``, with
            ``center_rewards_coefficient`` and ``use_margin``).
        dtype: weight dtype (keep ``float32`` master weights and use ``trainer.precision:
            bf16-mixed`` for bf16 compute).
        lr, weight_decay, adam_betas, schedule, warmup_ratio, fused_adamw: AdamW and its schedule,
            as for :class:`~aries_lit.modules.PolicyModule`.
        gradient_checkpointing: trade compute for activation memory.
    """

    default_loss = "bradley_terry"

    def __init__(
        self,
        model: str,
        loss: RewardLoss | str | None = None,
        dtype: str = "float32",
        lr: float = 1e-5,
        weight_decay: float = 0.0,
        adam_betas: tuple[float, float] = (0.9, 0.999),
        schedule: str = "cosine",
        warmup_ratio: float = 0.03,
        gradient_checkpointing: bool = False,
        fused_adamw: bool | None = None,
    ) -> None:
        super().__init__()
        check_schedule(schedule, warmup_ratio)
        self.loss = LOSSES.build(loss if loss is not None else self.default_loss)
        if not isinstance(self.loss, RewardLoss):
            raise ValueError(
                f"RewardModule takes a reward loss (bradley_terry), not {type(self.loss).__name__}; "
                "policies train with aries_lit.modules.PreferenceModule or SFTModule"
            )
        self.save_hyperparameters(ignore=["loss"])
        self.hparams["loss"] = repr(self.loss)
        self.model_name = model
        self.tokenizer = load_tokenizer(model)
        #: what closes each response in the views: the chat template's text after an answer
        self.response_end = assistant_turn_end(self.tokenizer)
        self.reward_model: Any = None

    def configure_model(self) -> None:
        if self.reward_model is not None:
            return
        hp = self.hparams
        model, new = load_reward_model_for_training(
            self.model_name, self.tokenizer.pad_token_id, dtype=hp.dtype
        )
        if new:
            rank_zero_info(
                f"[aries-lit] reward model from {self.model_name}: new {', '.join(new)} (random init)"
            )
        if hp.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        if getattr(model, model.base_model_prefix, None) is None or not hasattr(model, "score"):
            raise ValueError(
                f"model '{self.model_name}' ({type(model).__name__}) has no decoder with a 'score' head; "
                "RewardModule trains decoder language models (Llama, Qwen, Mistral, SmolLM2, ...)"
            )
        self.reward_model = model.train()

    def trainable_model(self) -> Any:
        return self.reward_model

    def view_rewards(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Per-view ``[B]`` float32 rewards of a collated batch (either collator's layout)."""
        model = self.reward_model
        decoder = getattr(model, model.base_model_prefix)
        inputs = {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "use_cache": False,
        }
        if "position_ids" in batch:  # shared-context rows
            inputs["position_ids"] = batch["position_ids"]
        hidden = decoder(**inputs).last_hidden_state
        picked = hidden.reshape(-1, hidden.shape[-1])[batch["score_index"]]
        rewards = model.score(picked).squeeze(-1).float()
        return split_views(rewards, batch["views"], batch["batch_size"])

    def _step(self, batch: dict[str, Any], stage: str) -> Tensor:
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        rewards = self.view_rewards(batch)
        pair = PairRewards(rewards[DIRECT_CHOSEN], rewards[DIRECT_REJECTED], batch.get("margin"))
        out = self.loss(pair)
        self.log_loss_output(out, stage, batch["batch_size"])
        return out.loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")
