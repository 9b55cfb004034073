"""Micro benchmark: forward + backward time of the group losses (``grpo`` variants) on random
per-token log-probs of ``N`` completions, next to DPO on the summed log-probs of ``N / 2`` pairs (the
same ``N`` completions). Loss cost only; the model's forward over the ``N`` sequences dominates a
real step and is the same for both (one row per completion).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/group_loss_step_time.py --completions 64 --tokens 128
"""

from __future__ import annotations

import argparse
import time

import torch

from aries_lit.losses import DIRECT_CHOSEN, DIRECT_REJECTED, LOSSES, GroupLogProbs, ViewLogProbs


def pair_inputs(batch: int, seed: int = 0) -> ViewLogProbs:
    """Random summed log-probs of ``batch`` pairs (as benchmarks/loss_step_time.py)."""
    g = torch.Generator().manual_seed(seed)
    views = (DIRECT_CHOSEN, DIRECT_REJECTED)
    policy = {v: (-torch.rand(batch, generator=g) * 30).requires_grad_() for v in views}
    reference = {v: -torch.rand(batch, generator=g) * 30 for v in views}
    return ViewLogProbs(policy=policy, reference=reference)


def group_inputs(n: int, tokens: int, group: int = 4, seed: int = 0) -> GroupLogProbs:
    g = torch.Generator().manual_seed(seed)
    policy = (-torch.rand(n, tokens, generator=g) * 3).requires_grad_()
    lengths = torch.randint(1, tokens + 1, (n,), generator=g)
    mask = torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)
    ref = policy.detach() + torch.randn(n, tokens, generator=g) * 0.1
    rewards = torch.randint(0, 2, (n,), generator=g).float()
    return GroupLogProbs(policy, mask, rewards, torch.arange(n) // group, ref)


def step_time(spec: dict | str, logps: GroupLogProbs | ViewLogProbs, repeats: int) -> float:
    """Mean seconds of one forward + backward."""
    loss = LOSSES.build(spec)
    for _ in range(10):
        loss(logps).loss.backward()
    start = time.perf_counter()
    for _ in range(repeats):
        loss(logps).loss.backward()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    base = step_time("dpo", pair_inputs(args.completions // 2), args.repeats)
    logps = group_inputs(args.completions, args.tokens)
    print(f"| loss | us / step | x DPO |  ({args.completions} completions of {args.tokens} tokens)")
    print("| --- | --- | --- |")
    print(f"| `dpo` | {base * 1e6:.0f} | 1.00 |")
    for variant in ("grpo", "dr_grpo", "rloo"):
        for beta in (0.0, 0.04):
            spec = {"class_path": "grpo", "init_args": {"variant": variant, "beta": beta}}
            t = step_time(spec, logps, args.repeats)
            print(f"| `grpo` variant `{variant}`, beta {beta} | {t * 1e6:.0f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
