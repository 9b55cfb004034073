"""Precomputed (cached) reference log-probs give the same loss as on-the-fly ones."""

from __future__ import annotations

import lightning as L
import torch

from aries_lit.data import PreferenceDataModule
from aries_lit.data.collator import reference_from_batch
from aries_lit.losses import ViewLogProbs
from aries_lit.modules import PreferenceModule

HH = "aries_lit:hh_rlhf/harmless_base_test.jsonl.gz"


def _setup(tiny_model_dir, tmp_path, loss="aries"):
    module = PreferenceModule(str(tiny_model_dir), loss=loss, precompute_reference=True)
    module.configure_model()
    dm = PreferenceDataModule(
        HH, format="hh", limit=8, batch_size=4, max_length=384, max_context_length=256, shuffle=False
    )
    trainer = L.Trainer(
        accelerator="cpu",
        default_root_dir=str(tmp_path),
        logger=False,
        enable_progress_bar=False,
        max_steps=1,
    )
    dm.trainer = trainer
    trainer.strategy.connect(module)
    dm.configure(module.tokenizer, module.views)
    dm.setup("fit")
    return module, dm, trainer


def test_cached_reference_gives_the_same_loss_as_on_the_fly(tiny_model_dir, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    module, dm, trainer = _setup(tiny_model_dir, tmp_path)
    monkeypatch.setattr(type(trainer), "is_global_zero", property(lambda self: True))
    dm.attach_reference(module)
    assert all(f"ref.{v}" in dm.train_data.column_names for v in module.views)
    batch = next(iter(dm.train_dataloader()))
    cached = reference_from_batch(batch)
    assert cached is not None
    fresh = module.reference_logps(batch)
    for view in module.views:
        torch.testing.assert_close(cached[view], fresh[view], atol=1e-4, rtol=1e-5)
    policy, counts = module.view_logps(module.policy, batch)
    loss_cached = module.loss(ViewLogProbs(policy, cached, counts)).loss
    loss_fresh = module.loss(ViewLogProbs(policy, fresh, counts)).loss
    torch.testing.assert_close(loss_cached, loss_fresh, atol=1e-5, rtol=1e-5)
    # the cache is reused (keyed by data fingerprint and reference weights), not recomputed
    cache = list((tmp_path / "reference_cache").iterdir())
    assert len(cache) == 1
    _, dm2, _ = _setup(tiny_model_dir, tmp_path)  # a rerun rebuilds the same data from scratch
    dm2.attach_reference(module)
    assert dm2.train_data["ref.direct/chosen"] == dm.train_data["ref.direct/chosen"]
    assert len(list((tmp_path / "reference_cache").iterdir())) == 1


def test_cache_key_changes_with_the_reference_weights(tiny_model_dir, tmp_path, monkeypatch):
    from aries_lit.data.reference_cache import model_hash

    torch.set_num_threads(1)
    module, dm, trainer = _setup(tiny_model_dir, tmp_path, loss="dpo")
    ref = module.reference_model()
    before = model_hash(ref)
    with torch.no_grad():
        next(ref.parameters()).add_(1e-3)
    assert model_hash(ref) != before
