"""Held-out pairwise accuracy of a reward model, split by whether the rejected answer states one.

The outcome reward model (configs/reward/outcome_arith) learns "right over wrong" from the
verifier's pairs; some rejected answers state no result at all, which is easy to tell apart. This
prints the accuracy on all held-out pairs and on the two kinds, scored exactly as the
``reward_model`` selector scores (same rendering, same last-token score)::

    python benchmarks/rm_heldout_breakdown.py \
        --model runs/reward/outcome_arith/model/hf_model \
        --pairs runs/reward/outcome_arith/validation/pairs.jsonl
"""

from __future__ import annotations

import argparse
import json

from aries_lit.answers.extraction import stated_answer
from aries_lit.evaluation.stats import wilson_interval
from aries_lit.selectors.reward_model import RewardModelSelector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a one-label sequence-classification folder")
    parser.add_argument("--pairs", required=True, help="a TRL-format pairs.jsonl")
    args = parser.parse_args()
    selector = RewardModelSelector(model=args.model, batch_size=16)
    selector.load()
    with open(args.pairs) as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    texts = [selector.render(p["prompt"], p["chosen"]) for p in pairs]
    texts += [selector.render(p["prompt"], p["rejected"]) for p in pairs]
    scores = selector.score_texts(texts)
    n = len(pairs)
    wins = [scores[i] > scores[n + i] for i in range(n)]
    stated = [stated_answer(p["rejected"]) is not None for p in pairs]
    for label, mask in (
        ("all pairs", [True] * n),
        ("rejected states an answer", stated),
        ("rejected states none", [not s for s in stated]),
    ):
        sub = [w for w, m in zip(wins, mask) if m]
        low, high = wilson_interval(sum(sub), len(sub)) if sub else (float("nan"), float("nan"))
        share = 100 * sum(sub) / len(sub) if sub else float("nan")
        print(f"{label}: {sum(sub)}/{len(sub)} = {share:.1f}% [95% {100 * low:.1f}, {100 * high:.1f}]")


if __name__ == "__main__":
    main()
