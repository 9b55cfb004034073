"""Micro benchmark: forward + backward time of the group losses (``grpo`` variants) on random
per-token log-probs of ``N`` completions, next to DPO on the summed log-probs of ``N / 2`` pairs (the
same ``N`` completions). Loss cost only; the model's forward over the ``N`` sequences dominates a
real step and is the same for both (one row per completion).

Also ARIES + GRPO (Eq. 10 with GRPO as ``L_pref``): ``aries`` / ``bt_aries`` with ``grpo`` in the
preference slot on the same groups plus the four refinement views of one pair per group (``N / G``
pairs), next to pairwise ARIES (DPO + refine-MSE) on the six views of ``N / 2`` pairs. The model side
of ARIES + GRPO runs the ``N`` group rows and the refinement views' rows (two shared-context rows
per group), which this does not time.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/group_loss_step_time.py --completions 64 --tokens 128
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loss_step_time import random_inputs, step_time  # noqa: E402 - the same harness and pair inputs

from aries_lit.losses import ALL_VIEWS, REFINE_L, REFINE_W, GroupLogProbs  # noqa: E402

#: the refine term's views (ARIES + GRPO reads these of one pair per group)
REFINE_VIEWS = tuple(v for v in ALL_VIEWS if v.startswith((f"{REFINE_L}/", f"{REFINE_W}/")))


def group_inputs(n: int, tokens: int, group: int = 4, seed: int = 0) -> GroupLogProbs:
    g = torch.Generator().manual_seed(seed)
    policy = (-torch.rand(n, tokens, generator=g) * 3).requires_grad_()
    lengths = torch.randint(1, tokens + 1, (n,), generator=g)
    mask = torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)
    ref = policy.detach() + torch.randn(n, tokens, generator=g) * 0.1
    rewards = torch.randint(0, 2, (n,), generator=g).float()
    return GroupLogProbs(policy, mask, rewards, torch.arange(n) // group, ref)


def aries_group_inputs(n: int, tokens: int, group: int = 4, seed: int = 0) -> GroupLogProbs:
    """:func:`group_inputs` with the refine views of one pair per group (``[n // group]`` each)."""
    logps = group_inputs(n, tokens, group, seed)
    return replace(logps, views=random_inputs(logps.num_groups, seed + 1, REFINE_VIEWS))


def aries_grpo_spec(composite: str, beta: float) -> dict[str, Any]:
    """``aries`` / ``bt_aries`` (alpha 0.8, their own refine loss) with ``grpo`` (``beta``) as preference."""
    grpo = {"class_path": "grpo", "init_args": {"beta": beta}}
    return {"class_path": composite, "init_args": {"preference": grpo, "alpha": 0.8}}


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
    pairs = random_inputs(args.completions // 2, views=ALL_VIEWS)
    t = step_time("aries", pairs, args.repeats, warmup=10)
    print(f"| `aries` (dpo + refine_mse), {args.completions // 2} pairs | {t * 1e6:.0f} | {t / base:.2f} |")
    with_views = aries_group_inputs(args.completions, args.tokens)
    for composite, beta in (("aries", 0.0), ("aries", 0.04), ("bt_aries", 0.04)):
        t = step_time(aries_grpo_spec(composite, beta), with_views, args.repeats, warmup=10)
        print(f"| `{composite}` (grpo beta {beta} + its refine) | {t * 1e6:.0f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
