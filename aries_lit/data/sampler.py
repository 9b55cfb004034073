"""A shuffling, rank-aware sampler and a DataLoader that resume mid-epoch.

Lightning restores the loop's progress from a checkpoint but a plain DataLoader restarts
its epoch from the first batch, so a killed run would see some batches twice and others
never. :class:`ResumableLoader` is a Lightning ``_Stateful`` loader: on restore it tells
its sampler to skip the batches the checkpointed run already trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler


class ResumableSampler(Sampler[int]):
    """Seeded per-epoch permutation, sharded across ranks, able to skip its first batches."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if rank is None or world_size is None:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
            else:
                rank, world_size = 0, 1
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.skip_batches = 0
        #: the epoch whose first ``skip_batches`` batches a restored run already trained
        self.skip_epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        per_rank = self.size // self.world_size  # equal shards: every rank steps the same number of times
        return order[self.rank * per_rank : (self.rank + 1) * per_rank] if self.world_size > 1 else order

    def __iter__(self) -> Iterator[int]:
        indices = self._indices()
        # only in the epoch the checkpoint was taken in: a checkpoint from an epoch's last batch
        # resumes in the next epoch (Lightning moves on), which must start from its first batch
        skipping = self.skip_epoch is None or self.skip_epoch == self.epoch
        skip = self.skip_batches * self.batch_size if skipping else 0
        self.skip_batches, self.skip_epoch = 0, None
        return iter(indices[skip:])

    def __len__(self) -> int:
        return self.size // self.world_size if self.world_size > 1 else self.size


class ResumableLoader(DataLoader):
    """A DataLoader whose state (batches already trained in this epoch) is saved in Lightning checkpoints."""

    def __init__(self, *args: Any, progress: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._progress = progress

    def state_dict(self) -> dict[str, Any]:
        sampler = self.sampler
        done = self._progress() if self._progress else 0  # read at save time: batches trained this epoch
        return {
            "epoch": getattr(sampler, "epoch", 0),
            "seed": getattr(sampler, "seed", 0),
            "batches_done": done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if isinstance(self.sampler, ResumableSampler):
            self.sampler.epoch = state.get("epoch", self.sampler.epoch)
            self.sampler.skip_batches = int(state.get("batches_done", 0))
            self.sampler.skip_epoch = self.sampler.epoch


class ResumableLoaders:
    """The loaders of a DataModule with ``train_data``, ``val_data`` (or ``None``), a ``collator()``
    and ``batch_size``, ``val_batch_size``, ``shuffle``, ``seed``, ``num_workers`` hyper-parameters:
    a :class:`ResumableLoader` for training (a resumed fit skips the batches it already trained) and
    a plain ordered loader for validation."""

    train_data: Any
    val_data: Any
    hparams: Any
    trainer: Any

    def collator(self) -> Callable[[list[Any]], Any]:
        raise NotImplementedError

    def _progress(self) -> int:
        return int(self.trainer.fit_loop.epoch_loop.batch_progress.current.processed) if self.trainer else 0

    def train_dataloader(self) -> ResumableLoader:
        hp = self.hparams
        sampler = ResumableSampler(len(self.train_data), hp.batch_size, shuffle=hp.shuffle, seed=hp.seed)
        return ResumableLoader(
            self.train_data,
            batch_size=hp.batch_size,
            sampler=sampler,
            drop_last=False,
            collate_fn=self.collator(),
            num_workers=hp.num_workers,
            progress=self._progress,
        )

    def val_dataloader(self) -> Any:
        if self.val_data is None:
            return []
        return DataLoader(
            self.val_data,
            batch_size=self.hparams.val_batch_size or self.hparams.batch_size,
            shuffle=False,
            collate_fn=self.collator(),
            num_workers=self.hparams.num_workers,
        )
