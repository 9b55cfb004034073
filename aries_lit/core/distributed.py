"""``torch.distributed`` for the commands that are not Lightning's (``generate``, ``evaluate``).

Training gets its process group from Lightning's strategy. ``aries-lit generate`` and
``aries-lit evaluate`` launched by ``torchrun`` (or ``srun`` with torchrun's variables set) get
theirs from :func:`process_group_from_env`: every rank works on a shard of the prompts and the
results are merged (see :func:`aries_lit.pipeline.collect.generate`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

#: How long a rank waits at a barrier for the slowest shard (generation shards can differ a lot).
DEFAULT_TIMEOUT = timedelta(hours=12)


def rank_world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialized default process group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier(doing: str = "waiting for the other ranks") -> None:
    """Wait for every rank (a no-op without a process group). A rank that died meanwhile (gloo:
    "Connection reset by peer", NCCL: a failed collective) is a :class:`PeerLostError` naming
    ``doing``, not a backend traceback."""
    import torch.distributed as dist

    from aries_lit.core.errors import PeerLostError

    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except RuntimeError as err:  # DistBackendError and gloo's plain RuntimeError
            cause = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise PeerLostError(
                f"rank {dist.get_rank()} of {dist.get_world_size()}: another rank was lost while "
                f"{doing} ({cause[:160]}); its finished work is kept: rerun the same command on "
                "every node to resume"
            ) from err


@contextmanager
def process_group_from_env(timeout: timedelta = DEFAULT_TIMEOUT) -> Iterator[tuple[int, int]]:
    """Initialize the default process group from torchrun's environment for the block.

    Does nothing (yields ``(0, 1)``) unless ``WORLD_SIZE`` > 1 is set, and leaves an already
    initialized group alone. The backend is ``nccl`` with CUDA (each rank on its
    ``LOCAL_RANK`` GPU), else ``gloo``. The group is destroyed on exit: gloo on CPU can abort
    the process at interpreter exit without that.
    """
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available() or dist.is_initialized():
        yield rank_world()
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    try:
        yield rank_world()
    finally:
        dist.destroy_process_group()


def backend_for_rank(spec: Any, world: int) -> Any:
    """A ``transformers`` backend spec placed on this rank's local GPU (unchanged on CPU, for a
    single process, for other backends and where a ``device`` is already given)."""
    if world <= 1 or not isinstance(spec, (str, Mapping)):
        return spec
    import torch

    if not torch.cuda.is_available():
        return spec
    flat = {"class_path": spec} if isinstance(spec, str) else {**spec, **(spec.get("init_args") or {})}
    flat.pop("init_args", None)
    if flat.get("class_path") not in ("transformers", "hf") or flat.get("device"):
        return spec
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return {**flat, "device": f"cuda:{local % torch.cuda.device_count()}"}
