"""How the study report writes numbers and tables (shared by its sections)."""

from __future__ import annotations

import math
from typing import Any


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal; ``n/a`` for a missing or NaN value."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def mean(values: list[Any]) -> float | None:
    """The mean of the numbers among ``values``; ``None`` when there are none."""
    numbers = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(numbers) / len(numbers) if numbers else None


__all__ = ["mean", "pct", "table"]
