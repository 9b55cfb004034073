"""Checkpoints: Lightning's (resume a killed run) plus the policy in Hugging Face format."""

from __future__ import annotations

import errno
import os
import shutil
import time
import zipfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from aries_lit.core.disk import require_free_space, training_bytes
from aries_lit.core.errors import DiskSpaceError
from aries_lit.core.provenance import write_provenance


def hf_model_complete(path: str | Path) -> bool:
    """Whether ``path`` holds a finished HF export (written last, atomically)."""
    return (Path(path) / "config.json").exists() and any(Path(path).glob("*.safetensors"))


class ExportHFModel(Callback):
    """At the end of ``fit``, save the trained model (the policy, or the reward model as a sequence
    classifier) and tokenizer with ``save_pretrained`` (safetensors), and the model's provenance
    (``aries_lit_provenance.json``: its starting model, data, and the reward models that selected
    that data; see :mod:`aries_lit.core.provenance`).

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


class AtomicModelCheckpoint(ModelCheckpoint):
    """Lightning's :class:`ModelCheckpoint` whose files are never torn: each checkpoint is written
    to ``<name>.part`` beside the target and moved into place once complete, so the previous one
    stays until the new one is whole (a kill or a full disk mid-write leaves ``last.ckpt`` as it
    was). Under DeepSpeed a checkpoint is a folder; it is swapped in the same way."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Check the free space once the model is built (``configure_model`` has run)."""
        super().on_fit_start(trainer, pl_module)
        if trainer.is_global_zero and self.dirpath:
            params = list(pl_module.parameters())
            total = sum(p.numel() for p in params)
            trainable = sum(p.numel() for p in params if p.requires_grad)
            size = max((p.element_size() for p in params), default=4)
            need = training_bytes(total, trainable, weight_bytes=size)
            require_free_space(self.dirpath, need, "training (checkpoint, optimizer state, export)")

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        part = filepath + PART_SUFFIX
        if trainer.is_global_zero:  # not on every rank: a late rank would delete rank 0's new file
            _remove(part)
        trainer.strategy.barrier()  # under DeepSpeed every rank then writes its shard into the part
        try:
            trainer.save_checkpoint(part, self.save_weights_only)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            _remove(part)  # the torn file goes; the previous checkpoint is untouched
            raise DiskSpaceError(
                err.errno,
                f"no space left on the device writing {filepath}; the previous checkpoint is kept: "
                "free some space and rerun the same command, it resumes",
            ) from err
        if trainer.is_global_zero:
            _fsync(part)
            _replace(part, filepath)
        trainer.strategy.barrier()
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


PART_SUFFIX = ".part"


def _remove(path: str | Path) -> None:
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _fsync(path: str | Path) -> None:
    path = Path(path)
    if path.is_file():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _replace(part: str, target: str) -> None:
    if Path(part).is_dir():  # a sharded (DeepSpeed) checkpoint: swap folders
        old = target + ".old"
        _remove(old)
        if Path(target).exists():
            os.replace(target, old)
        os.replace(part, target)
        _remove(old)
    else:
        os.replace(part, target)


def checkpoint_loads(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint that can be read: a complete zip archive (``torch.save``'s
    format, checked through its central directory without loading the tensors) or a DeepSpeed
    folder; a torn file (a kill or a full disk mid-write, before atomic saving) is not."""
    path = Path(path)
    if path.is_dir():
        return any(path.iterdir())
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def set_aside_torn_checkpoints(dirpath: str | Path) -> list[str]:
    """Before a resume: rename every checkpoint in ``dirpath`` that does not load to
    ``<name>.torn-<time>`` (never deleted) and drop leftover ``*.part`` files; returns one line
    for each file set aside. Lightning then resumes from the newest checkpoint that remains, or
    starts afresh."""
    folder = Path(dirpath)
    notes: list[str] = []
    if not folder.is_dir():
        return notes
    for part in folder.glob(f"*{PART_SUFFIX}"):
        _remove(part)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for ckpt in sorted(folder.glob("*.ckpt")):
        if checkpoint_loads(ckpt):
            continue
        aside = ckpt.with_name(f"{ckpt.name}.torn-{stamp}")
        os.replace(ckpt, aside)
        left = [p.name for p in folder.glob("*.ckpt")]
        then = f"resuming from {left[-1]}" if left else "starting afresh"
        notes.append(
            f"{ckpt} does not load (torn by a kill or a full disk); set aside as {aside.name}, {then}"
        )
    return notes
