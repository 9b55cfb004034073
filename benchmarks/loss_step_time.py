"""Micro benchmark: forward + backward time of each registered preference loss on random ``[B]``
log-probs, relative to DPO. The losses are a few elementwise ops, so this measures overhead, not
model cost (a model's forward dominates any real step).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/loss_step_time.py --batch 64 --repeats 2000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from aries_lit.losses import DIRECT_CHOSEN, DIRECT_REJECTED, LOSSES, PreferenceLoss, ViewLogProbs


def random_inputs(
    batch: int, seed: int = 0, views: tuple[str, ...] = (DIRECT_CHOSEN, DIRECT_REJECTED)
) -> ViewLogProbs:
    """Random summed log-probs (policy requires grad) and lengths of ``views`` (the direct ones)."""
    g = torch.Generator().manual_seed(seed)
    policy = {v: (-torch.rand(batch, generator=g) * 30).requires_grad_() for v in views}
    reference = {v: -torch.rand(batch, generator=g) * 30 for v in views}
    lengths = {v: torch.randint(1, 64, (batch,), generator=g) for v in views}
    return ViewLogProbs(policy=policy, reference=reference, num_tokens=lengths)


def step_time(name: str | dict[str, Any], logps: Any, repeats: int, warmup: int = 20) -> float:
    """Mean seconds of one forward + backward of loss ``name`` (a registered name or a spec)."""
    loss = LOSSES.build(name)
    for _ in range(warmup):
        loss(logps).loss.backward()
    start = time.perf_counter()
    for _ in range(repeats):
        loss(logps).loss.backward()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    logps = random_inputs(args.batch)
    names = [n for n in sorted(LOSSES.names()) if isinstance(LOSSES.build(n), PreferenceLoss)]
    base = step_time("dpo", logps, args.repeats)
    print(f"| loss | us / step | x DPO |  (batch {args.batch}, {args.repeats} repeats)")
    print("| --- | --- | --- |")
    for name in names:
        t = base if name == "dpo" else step_time(name, logps, args.repeats)
        print(f"| `{name}` | {t * 1e6:.0f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
