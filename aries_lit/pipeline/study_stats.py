"""The study report's statistics over test items, seeds pooled per item (see
:mod:`aries_lit.pipeline.study_report` for how they are reported).

For one arm, stage and turn, each test item gets ``p_i`` = its correctness averaged over the
arm's seeds. The accuracy is ``mean(p_i)`` with a 95% Wilson interval over items; a paired
comparison of two arms uses ``d_i = p_i(a) - p_i(b)`` on the items both have: its mean, a 95%
normal interval and a two-sided sign-flip permutation p-value.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from aries_lit.evaluation.stats import normal_interval, wilson_interval
from aries_lit.pipeline.study_results import StageSeeds

__all__ = ["Accuracy", "Difference", "accuracy_summary", "paired_difference", "pooled_items"]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def _normal_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    n = len(values)
    mean = _mean(values)
    if n < 2:
        return mean, float("nan"), float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, *normal_interval(mean, math.sqrt(var / n), confidence)


@dataclass(frozen=True)
class Accuracy:
    """An accuracy over items pooled over seeds: ``mean`` with its 95% Wilson interval over ``n``
    items, and each seed's own accuracy (``seeds``)."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    seeds: list[float]


@dataclass(frozen=True)
class Difference:
    """A paired difference over ``n`` common items: ``mean(a_i - b_i)``, its 95% normal interval and
    a two-sided sign-flip permutation ``p_value``."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    p_value: float


def pooled_items(stage: StageSeeds, task: str, turn: int) -> dict[str, float]:
    """``{item id: correctness at turn averaged over the stage's seeds}`` on the items every seed has."""
    per_seed = [t.correct(turn) for t in stage.scored(task)]
    if not per_seed:
        return {}
    common = set(per_seed[0])
    for items in per_seed[1:]:
        common &= set(items)
    return {i: _mean([items[i] for items in per_seed]) for i in sorted(common)}


def accuracy_summary(stage: StageSeeds, task: str, turn: int) -> Accuracy:
    """Mean accuracy (items pooled over seeds), its 95% interval over items, per-seed values."""
    pooled = pooled_items(stage, task, turn)
    seeds = [_mean(list(t.correct(turn).values())) for t in stage.scored(task)]
    values = list(pooled.values())
    mean = _mean(values)
    low, high = wilson_interval(sum(values), len(values)) if values else (float("nan"), float("nan"))
    return Accuracy(mean, low, high, len(values), seeds)


def paired_difference(
    a: dict[str, float], b: dict[str, float], draws: int = 10_000, seed: int = 0
) -> Difference:
    """``mean(a_i - b_i)`` on common items, its 95% normal interval and a sign-flip p-value."""
    common = sorted(set(a) & set(b))
    diffs = [a[i] - b[i] for i in common]
    mean, low, high = _normal_ci(diffs)
    rng = random.Random(seed)
    observed = abs(sum(diffs))
    extreme = sum(
        1
        for _ in range(draws)
        if abs(sum(d if rng.random() < 0.5 else -d for d in diffs)) >= observed - 1e-12
    )
    return Difference(mean, low, high, len(common), (extreme + 1) / (draws + 1))
