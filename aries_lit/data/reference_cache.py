"""Reference log-probs computed once before training and kept with the data (Arrow).

ARIES changes the reference every round, so the cache key holds both the data's
fingerprint and a hash of the reference model's weights (as TRL keys its precompute).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, load_from_disk
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader


def model_hash(model: torch.nn.Module) -> str:
    """A fingerprint of a model's weights (shapes, sums and a sample of values of every tensor)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1).float()
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(flat[:: max(1, flat.numel() // 4096)].cpu().numpy().tobytes())
        h.update(str(flat.double().sum().item()).encode())
    return h.hexdigest()[:16]


def content_fingerprint(dataset: Dataset) -> str:
    """A hash of the dataset's content (its Arrow buffers), stable across processes and reruns."""
    h = hashlib.sha256()
    table = dataset.with_format(None).data.table
    for name in sorted(table.column_names):
        if name.startswith("ref."):
            continue
        h.update(name.encode())
        for chunk in table.column(name).chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    h.update(memoryview(buf))
    return h.hexdigest()


def cache_key(dataset: Dataset, views: tuple[str, ...], reference_hash: str) -> str:
    h = hashlib.sha256(f"{content_fingerprint(dataset)}|{','.join(views)}|{reference_hash}".encode())
    return h.hexdigest()[:20]


def attach_reference_logps(
    dataset: Dataset,
    views: tuple[str, ...],
    compute: Callable[[dict[str, Any]], dict[str, torch.Tensor]],
    collate: Callable[[list[dict[str, Any]]], dict[str, Any]],
    batch_size: int,
    cache_dir: str | Path,
    reference_hash: str,
    is_writer: bool = True,
    barrier: Callable[[], None] = lambda: None,
) -> Dataset:
    """``dataset`` with ``ref.<view>`` columns, loaded from ``cache_dir`` or computed (by the writer rank)."""
    path = Path(cache_dir) / cache_key(dataset, views, reference_hash)
    if not (path / "dataset_info.json").exists() and is_writer:
        columns: dict[str, list[float]] = {f"ref.{v}": [] for v in views}
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
        with torch.no_grad():
            for batch in loader:
                for view, values in compute(batch).items():
                    columns[f"ref.{view}"].extend(values.float().cpu().tolist())
        out = dataset
        for name, values in columns.items():
            if name in out.column_names:
                out = out.remove_columns(name)
            out = out.add_column(name, values)
        tmp = path.with_name(path.name + ".tmp")
        out.save_to_disk(str(tmp))
        tmp.rename(path)
    barrier()
    return load_from_disk(str(path))


def attach_module_reference(datamodule: Any, module: Any, views: tuple[str, ...]) -> None:
    """Give ``datamodule``'s ``train_data`` and ``val_data`` ``ref.<view>`` columns computed by
    ``module.reference_logps`` (a :class:`~aries_lit.modules.PolicyModule`), cached under its
    ``reference_cache_dir`` (default: the trainer's root folder) and keyed by the data and the
    reference's weights (the policy's, adapters off, for LoRA without a separate reference)."""
    lora_reference = module.uses_lora and not module.hparams.reference
    ref_hash = model_hash(module.policy if lora_reference else module.reference_model())
    trainer = datamodule.trainer
    hp = datamodule.hparams
    cache_dir = hp.reference_cache_dir or str(Path(trainer.default_root_dir) / "reference_cache")
    for name in ("train_data", "val_data"):
        data = getattr(datamodule, name)
        if data is None:
            continue
        data = attach_reference_logps(
            data,
            views,
            module.reference_logps,
            datamodule.collator(),
            hp.val_batch_size or hp.batch_size,
            cache_dir,
            ref_hash,
            is_writer=trainer.is_global_zero,
            barrier=trainer.strategy.barrier,
        )
        setattr(datamodule, name, data)
    rank_zero_info(f"[aries-lit] reference log-probs cached in {cache_dir}")
