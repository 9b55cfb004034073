"""The training optimizer: fused AdamW by default (same update as the plain one), plain on request."""

from __future__ import annotations

import torch

from aries_lit.modules import PolicyModule


def _stepped(model_dir, fused: bool | None) -> tuple[torch.optim.Optimizer, list[torch.Tensor]]:
    module = PolicyModule(model=str(model_dir), loss="dpo", lr=1e-3, fused_adamw=fused)
    module.configure_model()
    params = list(module.policy.parameters())
    optimizer = module._adamw([{"params": params, "weight_decay": 0.01}])
    for _ in range(3):
        for i, p in enumerate(params):
            p.grad = torch.sin(p.detach() * (i + 1))  # deterministic, different per tensor
        optimizer.step()
    return optimizer, [p.detach().clone() for p in params]


def test_fused_adamw_by_default_gives_the_plain_update(tiny_model_dir):
    fused, after_fused = _stepped(tiny_model_dir, None)
    plain, after_plain = _stepped(tiny_model_dir, False)
    assert fused.defaults["fused"] is True and not plain.defaults["fused"]
    start = PolicyModule(model=str(tiny_model_dir), loss="dpo")
    start.configure_model()
    moved = [not torch.equal(a, b) for a, b in zip(after_fused, start.policy.parameters())]
    assert all(moved)
    for a, b in zip(after_fused, after_plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
