"""Per-record results of an evaluation and their metrics, by task kind name.

Each kind (:mod:`aries_lit.evaluation.kinds`) builds its records and metrics; these functions
call the kind a name gives, for code that has a name rather than a kind. What every kind shares
(lengths, reward-model and win-rate curves, gathering over ranks) is in
:mod:`aries_lit.evaluation.turns`, re-exported here.
"""

from __future__ import annotations

from typing import Any

from aries_lit.evaluation.kinds import TaskKind, TaskRun, kind_of
from aries_lit.evaluation.turns import gather, reward_metrics, winrate_metrics

__all__ = ["build_records", "gather", "local_metrics", "reward_metrics", "winrate_metrics"]


def build_records(
    groups: list[dict[str, Any]], kind: str | TaskKind, checker: str = "builtin"
) -> list[dict[str, Any]]:
    """Records of a task's groups as ``kind`` builds them: id, prompt text, and per turn the text,
    its length and finish reason, plus the kind's fields (``verifiable``: the gold answer, each
    turn's extracted answer and its grade by ``checker``)."""
    return kind_of(kind).records(groups, TaskRun(checker=checker))


def local_metrics(
    records: list[dict[str, Any]], kind: str | TaskKind, num_turns: int, confidence: float, ci: str
) -> dict[str, Any]:
    """A kind's metrics of this rank's records (on one process: of all records)."""
    return kind_of(kind).metrics(records, records, TaskRun(num_turns=num_turns, confidence=confidence, ci=ci))
