"""The base of every module ``aries-lit fit`` trains: the paper's AdamW and schedule, loss metrics
through torchmetrics, and the Hugging Face export."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torchmetrics import MeanMetric

from aries_lit.losses import LossOutput

SCHEDULES = ("cosine", "linear", "constant")


def _lr_lambda(schedule: str, warmup: int, total: int):
    def fn(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn


def check_schedule(schedule: str, warmup_ratio: float) -> None:
    """Refuse an unknown schedule or a warm-up ratio outside ``[0, 1)``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be cosine, linear or constant, not '{schedule}'")
    if not 0 <= warmup_ratio < 1:
        raise ValueError(f"warmup_ratio must be in [0, 1), not {warmup_ratio}")


class TrainingModule(L.LightningModule):
    """What the policy modules (SFT, preference) and the reward module share; the base class that
    ``aries-lit fit`` accepts as ``model.class_path``.

    A subclass sets ``model_name``, ``tokenizer`` and ``loss`` in ``__init__`` (and saves its
    arguments as hyperparameters, among them ``lr``, ``weight_decay``, ``adam_betas``,
    ``schedule``, ``warmup_ratio`` and ``fused_adamw``), builds its network in
    ``configure_model`` and returns it from :meth:`trainable_model`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.metrics = torch.nn.ModuleDict()

    # ----------------------------------------------------------------- what subclasses provide
    def trainable_model(self) -> Any:
        """The network whose parameters are trained and exported."""
        raise NotImplementedError

    @property
    def views(self) -> tuple[str, ...]:
        """The views the collator builds for this module's loss."""
        return self.loss.required_views()

    @property
    def uses_lora(self) -> bool:
        return bool(self.hparams.get("lora"))

    # ----------------------------------------------------------------- metrics
    def log_loss_output(self, out: LossOutput, stage: str, batch_size: int) -> None:
        """Log ``stage/loss`` and every metric of ``out`` as a running mean (synced across processes)."""
        self.log(f"{stage}/loss", out.loss.detach(), prog_bar=True, batch_size=batch_size, sync_dist=True)
        for name, values in out.metrics.items():
            key = f"{stage}/{name}"
            slot = key.replace("/", "__")
            if slot not in self.metrics:
                self.metrics[slot] = MeanMetric(dist_sync_on_step=True).to(self.device)
            metric = self.metrics[slot]
            metric(values.reshape(-1).to(self.device))
            self.log(
                key,
                metric,
                on_step=stage == "train",
                on_epoch=True,
                batch_size=batch_size,
                prog_bar=name == "rewards/accuracy",
                metric_attribute=f"metrics.{slot}",
            )

    # ----------------------------------------------------------------- optimizer
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        params = [p for p in self.trainable_model().parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [
            {"params": decay, "weight_decay": hp.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        optimizer = self._adamw(groups)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(math.ceil(hp.warmup_ratio * total))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(hp.schedule, warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _adamw(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        hp = self.hparams
        betas = tuple(hp.adam_betas)
        from lightning.pytorch.strategies import DeepSpeedStrategy

        strategy = self._trainer.strategy if self._trainer is not None else None
        ds_config = strategy.config if isinstance(strategy, DeepSpeedStrategy) else None
        if ds_config is not None and (ds_config.get("zero_optimization") or {}).get("offload_optimizer"):
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            return DeepSpeedCPUAdam(groups, lr=hp.lr, betas=betas, adamw_mode=True)
        fused = hp.get("fused_adamw")
        if fused is None:
            fused = ds_config is None
        return torch.optim.AdamW(groups, lr=hp.lr, betas=betas, fused=bool(fused))

    # ----------------------------------------------------------------- export
    def save_hf(self, path: str) -> None:
        """Write the trained model (LoRA merged) and tokenizer in Hugging Face format (safetensors)."""
        model = self.trainable_model()
        if self.uses_lora:
            import copy

            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
