"""The study's result files (``<results_dir>/<arm>/seed<k>/<NN>-<stage>.json``) as a typed model.

:func:`read_result` checks one file and returns its record (the study reuses a recorded
evaluation from it); :func:`load_results` parses every file once into :class:`StudyResults`:
:class:`StageResult` per file (with a :class:`TaskResult` per evaluated task), grouped into
:class:`StageSeeds`, one arm's stage over its seeds, which the report's statistics and
comparisons read. Nothing below this module sees a raw record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aries_lit.core.errors import FileContentError

#: where the study writes its result files under ``results_dir``: ``<arm>/seed<k>/<NN>-<stage>.json``
RESULT_FILES = "*/seed*/*.json"

#: the fields every result file has
REQUIRED_FIELDS = ("arm", "seed", "index", "stage", "key", "tasks")

#: the open sections a stage records beside its evaluations
SECTIONS = ("selection", "training", "generation", "data", "timings")


@dataclass(frozen=True)
class TaskResult:
    """One task's evaluation of one stage and seed.

    ``items`` maps a test item's id to its correctness at each turn (``"0111"``: wrong directly,
    right after the first refinement); ``None`` where the task was not scored item by item.
    ``ifeval`` holds IFEval's figures (``inst_strict``, ``prompt_loose``, ... per turn;
    ``by_type``), ``length`` the mean answer length per turn, where the evaluation recorded them.
    """

    items: Mapping[str, str] | None = None
    ifeval: Mapping[str, Any] | None = None
    length: list[float | None] | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TaskResult:
        return cls(items=record.get("items"), ifeval=record.get("ifeval"), length=record.get("length"))

    @property
    def scored(self) -> bool:
        """Whether the items were recorded (the task counts for accuracy)."""
        return self.items is not None

    @property
    def num_turns(self) -> int:
        """Turns recorded per item (Direct and every refinement); 0 without items."""
        return len(next(iter(self.items.values()))) if self.items else 0

    def correct(self, turn: int) -> dict[str, float]:
        """``{item id: 1.0 or 0.0}`` at ``turn`` (0 = Direct)."""
        return {i: float(v[turn] == "1") for i, v in (self.items or {}).items()}


@dataclass(frozen=True)
class StageResult:
    """One result file: an arm's stage for one seed, its evaluations and what the stage recorded
    (selection counts and audit, training drift, generation counts, data statistics, timings; open
    sections, as each stage writes them)."""

    arm: str
    seed: int
    index: int
    stage: str
    key: str
    tasks: Mapping[str, TaskResult]
    selection: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    generation: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StageResult:
        """A record as :func:`read_result` returns it (the required fields present)."""
        tasks = {name: TaskResult.from_record(t) for name, t in record["tasks"].items()}
        sections = {k: record.get(k) or {} for k in SECTIONS}
        return cls(record["arm"], int(record["seed"]), int(record["index"]), record["stage"], record["key"],
                   tasks, **sections)  # fmt: skip

    @property
    def label(self) -> str:
        """``NN-stage``, as the file is named."""
        return f"{self.index:02d}-{self.stage}"


@dataclass(frozen=True)
class StageSeeds:
    """One arm's stage over the seeds that ran it (in file order)."""

    arm: str
    index: int
    stage: str
    results: tuple[StageResult, ...]

    @property
    def label(self) -> str:
        return f"{self.index:02d}-{self.stage}"

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.results]

    def has(self, task: str) -> bool:
        """Whether the stage's result files name ``task`` (scored or not)."""
        return task in self.results[0].tasks

    def scored(self, task: str) -> list[TaskResult]:
        """``task``'s results of the seeds that scored it item by item."""
        return [t for r in self.results if (t := r.tasks.get(task)) is not None and t.scored]

    def num_turns(self, task: str) -> int:
        t = self.results[0].tasks.get(task)
        return t.num_turns if t is not None else 0

    def last_turn(self, task: str) -> int:
        """The SR turn (the last one recorded)."""
        return self.num_turns(task) - 1

    def only_seeds(self, seeds: Iterable[int]) -> StageSeeds:
        keep = set(seeds)
        return StageSeeds(self.arm, self.index, self.stage, tuple(r for r in self.results if r.seed in keep))


@dataclass(frozen=True)
class StudyResults:
    """Every result file of a study, grouped: ``arms[arm][index]`` is that stage over its seeds."""

    results: tuple[StageResult, ...]
    arms: Mapping[str, Mapping[int, StageSeeds]]

    @classmethod
    def of(cls, records: Iterable[StageResult | Mapping[str, Any]]) -> StudyResults:
        """Group result records (or already parsed results) by arm and stage, in the given order."""
        results = tuple(r if isinstance(r, StageResult) else StageResult.from_record(r) for r in records)
        grouped: dict[str, dict[int, list[StageResult]]] = {}
        for r in results:
            grouped.setdefault(r.arm, {}).setdefault(r.index, []).append(r)
        arms = {
            arm: {i: StageSeeds(arm, i, rs[0].stage, tuple(rs)) for i, rs in stages.items()}
            for arm, stages in grouped.items()
        }
        return cls(results, arms)

    @property
    def scored_tasks(self) -> list[str]:
        """The tasks some stage scored item by item, sorted."""
        return sorted({name for r in self.results for name, t in r.tasks.items() if t.scored})

    def final(self, arm: str, task: str) -> StageSeeds | None:
        """The arm's last stage scored on ``task`` (stages may go unevaluated)."""
        scored = [i for i, s in self.arms[arm].items() if (t := s.results[0].tasks.get(task)) and t.scored]
        return self.arms[arm][max(scored)] if scored else None

    def finals(self, task: str) -> dict[str, StageSeeds]:
        """``{arm: its final stage on task}`` for the arms that have one, in arm order."""
        return {arm: f for arm in self.arms if (f := self.final(arm, task)) is not None}


def read_result(path: Path) -> dict[str, Any]:
    """One result file, checked for the fields every result has (errors name the file and field)."""
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise FileContentError(f"{path}: not valid JSON ({err})") from None
    for key in REQUIRED_FIELDS:
        if key not in record:
            raise FileContentError(f"{path}: field '{key}' is missing")
    return record


def load_results(results_dir: str | Path) -> StudyResults:
    """Every result file under ``results_dir``, parsed, sorted by arm, seed and stage index."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results folder (run the study first)")
    records = [read_result(path) for path in sorted(root.glob(RESULT_FILES))]
    if not records:
        raise FileNotFoundError(f"{root}: no result files (<arm>/seed<k>/<NN>-<stage>.json)")
    records.sort(key=lambda r: (r["arm"], r["seed"], r["index"]))
    return StudyResults.of(records)


__all__ = [
    "RESULT_FILES",
    "StageResult",
    "StageSeeds",
    "StudyResults",
    "TaskResult",
    "load_results",
    "read_result",
]
