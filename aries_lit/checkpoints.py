"""Checkpoints: Lightning's (resume a killed run) plus the policy in Hugging Face format."""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from aries_lit.provenance import write_provenance


def hf_model_complete(path: str | Path) -> bool:
    """Whether ``path`` holds a finished HF export (written last, atomically)."""
    return (Path(path) / "config.json").exists() and any(Path(path).glob("*.safetensors"))


class ExportHFModel(Callback):
    """At the end of ``fit``, save the trained model (the policy, or the reward model as a sequence
    classifier) and tokenizer with ``save_pretrained`` (safetensors), and the model's provenance
    (``aries_lit_provenance.json``: its starting model, data, and the reward models that selected
    that data; see :mod:`aries_lit.provenance`).

    ``dirpath`` defaults to ``<trainer.default_root_dir>/hf_model``. The folder is written
    under a temporary name and renamed, so a complete folder means a finished export. Under
    DeepSpeed ZeRO-3 the sharded parameters are gathered (on every rank) before rank 0 saves.
    """

    def __init__(self, dirpath: str | None = None, enabled: bool = True) -> None:
        self.dirpath = dirpath
        self.enabled = enabled

    def target(self, trainer: L.Trainer) -> Path:
        return Path(self.dirpath or Path(trainer.default_root_dir) / "hf_model")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or not hasattr(pl_module, "save_hf"):
            return
        trainer.strategy.barrier()
        with gathered_parameters(trainer, pl_module):
            if trainer.is_global_zero:
                out = self.target(trainer)
                tmp = out.with_name(out.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                pl_module.save_hf(str(tmp))
                write_provenance(tmp, pl_module, getattr(trainer, "datamodule", None))
                shutil.rmtree(out, ignore_errors=True)
                tmp.rename(out)
                rank_zero_info(f"[aries-lit] Hugging Face model saved to {out}")
        trainer.strategy.barrier()


def gathered_parameters(trainer: L.Trainer, module: L.LightningModule) -> Any:
    """A context in which ZeRO-3-sharded parameters are whole (a no-op for other strategies)."""
    if not getattr(trainer.strategy, "zero_stage_3", False):
        return nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)
