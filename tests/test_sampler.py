"""The resumable sampler: a restored run skips only the batches it trained, in the epoch it trained them."""

from __future__ import annotations

from aries_lit.data.sampler import ResumableLoader, ResumableSampler


def _restored(state: dict) -> ResumableSampler:
    sampler = ResumableSampler(12, batch_size=3, seed=5, rank=0, world_size=1)
    loader = ResumableLoader(list(range(12)), batch_size=3, sampler=sampler)
    loader.load_state_dict(state)
    return sampler


def _epoch(epoch: int) -> list[int]:
    sampler = ResumableSampler(12, batch_size=3, seed=5, rank=0, world_size=1)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_a_mid_epoch_restore_skips_the_trained_batches_of_that_epoch_only():
    sampler = _restored({"epoch": 1, "seed": 5, "batches_done": 2})
    sampler.set_epoch(1)  # Lightning resumes the unfinished epoch
    assert list(sampler) == _epoch(1)[6:]
    sampler.set_epoch(2)
    assert list(sampler) == _epoch(2)


def test_a_restore_from_an_epochs_last_batch_starts_the_next_epoch_whole():
    sampler = _restored({"epoch": 1, "seed": 5, "batches_done": 4})  # all 4 batches of epoch 1
    sampler.set_epoch(2)  # Lightning moves on to the next epoch
    assert list(sampler) == _epoch(2)


def test_shards_of_two_ranks_cover_an_epoch_once():
    shards = [ResumableSampler(12, batch_size=3, seed=5, rank=r, world_size=2) for r in (0, 1)]
    seen = [i for s in shards for i in s]
    assert sorted(seen) == list(range(12))
