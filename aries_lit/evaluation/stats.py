"""Means and confidence intervals of per-record scores, reduced across ranks with torchmetrics.

:func:`summarize` accumulates ``sum``, ``sum of squares`` and ``count`` in
``torchmetrics.aggregation.SumMetric`` states, so when ``torch.distributed`` is initialized
and each rank holds a shard of the records, the result is the statistic of *all* records
(torchmetrics all-reduces the states in ``compute()``; every rank must call it in the same
order). A rank with no records contributes zeros.

Intervals: Wilson score (binary values, e.g. accuracy; well behaved near 0 and 1 and for small
``n``) or normal (``mean +- z * se`` with ``se = std / sqrt(n)``, sample std with ``n - 1``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

__all__ = [
    "accuracy",
    "normal_interval",
    "summarize",
    "wilson_interval",
    "z_value",
]


def z_value(confidence: float = 0.95) -> float:
    """The two-sided standard-normal quantile: 1.96 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ``successes / n`` (``(nan, nan)`` if n = 0)."""
    if n <= 0:
        return math.nan, math.nan
    z = z_value(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(max(p * (1.0 - p) / n + z * z / (4.0 * n * n), 0.0)) / denom
    return max(0.0, min(center - half, p)), min(1.0, max(center + half, p))  # rounding: keep p inside


def normal_interval(mean: float, se: float, confidence: float = 0.95) -> tuple[float, float]:
    """``mean -+ z * se``."""
    z = z_value(confidence)
    return mean - z * se, mean + z * se


def _reduced_sums(values: Sequence[float], sync: bool) -> tuple[float, float, float]:
    """``(sum, sum of squares, count)`` of the values on every rank (this rank's alone if not ``sync``)."""
    import torch
    from torchmetrics.aggregation import SumMetric

    x = torch.as_tensor([float(v) for v in values], dtype=torch.float64)
    metrics = [SumMetric(sync_on_compute=sync).set_dtype(torch.float64) for _ in range(3)]
    if x.numel():
        metrics[0].update(x)
        metrics[1].update(x * x)
        metrics[2].update(torch.ones_like(x))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*was called before the ``update``.*")
        total, squares, count = (float(m.compute()) for m in metrics)
    return total, squares, count


def summarize(
    values: Sequence[float | bool],
    ci: str = "normal",
    confidence: float = 0.95,
    sync_dist: bool = True,
) -> dict[str, Any]:
    """Mean of ``values`` with its standard error and a ``confidence`` interval.

    Args:
        values: one number per record (booleans count as 0/1).
        ci: ``"wilson"`` (values must be 0/1) or ``"normal"``.
        confidence: interval coverage.
        sync_dist: reduce over all ranks when ``torch.distributed`` is initialized.

    Returns ``{"mean", "se", "ci_low", "ci_high", "n", "ci", "confidence"}`` (``nan`` for no
    records); ``se`` is ``std / sqrt(n)`` (sample std).
    """
    if ci not in ("wilson", "normal"):
        raise ValueError(f"unknown interval '{ci}': use wilson or normal")
    if ci == "wilson" and any(float(v) not in (0.0, 1.0) for v in values):
        raise ValueError("a Wilson interval needs 0/1 values; use ci='normal'")
    total, squares, count = _reduced_sums(values, sync_dist)
    n = int(round(count))
    out: dict[str, Any] = {"mean": math.nan, "se": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if n > 0:
        mean = total / n
        var = max(squares - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
        se = math.sqrt(var / n)
        low, high = (
            wilson_interval(total, n, confidence) if ci == "wilson" else normal_interval(mean, se, confidence)
        )
        out.update(mean=mean, se=se, ci_low=low, ci_high=high)
    out.update(n=n, ci=ci, confidence=confidence)
    return out


def accuracy(correct: Sequence[bool], confidence: float = 0.95, sync_dist: bool = True) -> dict[str, Any]:
    """:func:`summarize` of 0/1 correctness with a Wilson interval."""
    return summarize([bool(c) for c in correct], ci="wilson", confidence=confidence, sync_dist=sync_dist)
