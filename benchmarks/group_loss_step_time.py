"""Micro benchmark: forward + backward time of the group losses (``grpo`` variants) on random
per-token log-probs of ``N`` completions, next to DPO on the summed log-probs of ``N / 2`` pairs (the
same ``N`` completions). Loss cost only; the model's forward over the ``N`` sequences dominates a
real step and is the same for both (one row per completion).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/group_loss_step_time.py --completions 64 --tokens 128
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loss_step_time import random_inputs, step_time  # noqa: E402 - the same harness and pair inputs

from aries_lit.losses import GroupLogProbs  # noqa: E402


def group_inputs(n: int, tokens: int, group: int = 4, seed: int = 0) -> GroupLogProbs:
    g = torch.Generator().manual_seed(seed)
    policy = (-torch.rand(n, tokens, generator=g) * 3).requires_grad_()
    lengths = torch.randint(1, tokens + 1, (n,), generator=g)
    mask = torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)
    ref = policy.detach() + torch.randn(n, tokens, generator=g) * 0.1
    rewards = torch.randint(0, 2, (n,), generator=g).float()
    return GroupLogProbs(policy, mask, rewards, torch.arange(n) // group, ref)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    base = step_time("dpo", random_inputs(args.completions // 2), args.repeats, warmup=10)
    logps = group_inputs(args.completions, args.tokens)
    print(f"| loss | us / step | x DPO |  ({args.completions} completions of {args.tokens} tokens)")
    print("| --- | --- | --- |")
    print(f"| `dpo` | {base * 1e6:.0f} | 1.00 |")
    for variant in ("grpo", "dr_grpo", "rloo"):
        for beta in (0.0, 0.04):
            spec = {"class_path": "grpo", "init_args": {"variant": variant, "beta": beta}}
            t = step_time(spec, logps, args.repeats, warmup=10)
            print(f"| `grpo` variant `{variant}`, beta {beta} | {t * 1e6:.0f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
