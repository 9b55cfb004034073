"""The base of every evaluation task kind (:class:`TaskKind`), what its steps get
(:class:`TaskRun`, :class:`Generation`) and the registry of kinds (:data:`TASK_KINDS`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from aries_lit.core.registry import Registry
from aries_lit.evaluation.turns import base_record, base_turn, length_metrics

if TYPE_CHECKING:
    from aries_lit.evaluation.tasks import Task

__all__ = ["TASK_KINDS", "Generation", "TaskKind", "TaskRun"]

Records = list[dict[str, Any]]


@dataclass
class TaskRun:
    """One (checkpoint, task) of an evaluation, as its kind reads and scores it."""

    label: str = ""
    num_turns: int = 1
    #: the task's flat generator config (``{"name": ..., "temperature": ..., ...}``)
    generator: Mapping[str, Any] = field(default_factory=dict)
    #: ``<out_dir>/<checkpoint>/<label>``: where the task's files go (a rank generates in a shard below)
    out: Path = Path(".")
    rank: int = 0
    checker: str = "builtin"
    confidence: float = 0.95
    ci: str = "wilson"


@dataclass
class Generation:
    """What a kind's :meth:`~TaskKind.generate` gets: the task's built generator, its flat config
    (less ``backend``), the checkpoint's shared backend, this rank's prompts, the model and the
    (resumable) output folder."""

    generator: Any
    spec: Mapping[str, Any]
    backend: Any
    prompts: list[dict[str, Any]]
    model: str
    out: Path
    progress: bool = True


class TaskKind:
    """A kind of evaluation task; the base is the generic task: Direct and N refinements, records
    of the turns' texts and lengths, and the reward model's scores when one is configured."""

    #: the kind's default generation temperature (a task's or the generator's setting wins)
    temperature: ClassVar[float] = 0.9
    #: the prompt-record field every record needs (checked when a task names the kind)
    requires: ClassVar[str | None] = None
    #: when a task does not name its kind, kinds are tried in this order (``None``: never inferred;
    #: set on the class itself: a subclass does not inherit it)
    infer_order: ClassVar[int | None] = None
    #: whether the reward model scores the turns: ``True`` unless the task says ``reward_model:
    #: false``, ``False`` only with ``reward_model: true``, ``None`` never
    reward_model: ClassVar[bool | None] = True
    #: whether the judge compares every turn with the record's ``reference_output``
    judged: ClassVar[bool] = False
    #: whether the task has refinement turns (its report shows Direct/SR and the curves)
    refines: ClassVar[bool] = True
    #: the prompt-source suite (:data:`aries_lit.evaluation.suites.SUITES`) whose tasks are of this kind
    #: (set on the class itself: a subclass does not inherit it)
    suite: ClassVar[str | None] = None

    @property
    def name(self) -> str:
        """The name the kind registered under (its dotted class path if it did not)."""
        cls = type(self)
        return cls.__dict__.get("registry_name") or f"{cls.__module__}.{cls.__qualname__}"

    # --- prompts ---------------------------------------------------------------------------

    def accepts(self, prompts: Sequence[Mapping[str, Any]]) -> bool:
        """Whether a task with these prompt records is of this kind when it names none."""
        return (
            bool(prompts)
            and self.requires is not None
            and all(p.get(self.requires) is not None for p in prompts)
        )

    def check(self, task: Task) -> None:
        """Refuse a task that names this kind but whose records lack what it needs."""
        if self.requires is None:
            return
        for number, p in enumerate(task.prompts):
            if p.get(self.requires) is None:
                raise ValueError(
                    f"task '{task.label}' (kind {self.name}): prompt record {number} (id '{p.get('id')}') "
                    f"has no '{self.requires}' field"
                )

    # --- generation and records ------------------------------------------------------------

    def generate(self, generation: Generation) -> None:
        """Generate (or resume) the turns of this rank's prompts: the generator's ``run``."""
        generation.generator.run(
            generation.prompts, generation.model, generation.out, progress=generation.progress
        )

    def read_records(self, gen_dir: Path, prompts: list[dict[str, Any]], run: TaskRun) -> Records:
        """This rank's records, read from the generations in ``gen_dir``."""
        from aries_lit.generators import load_groups

        groups = load_groups(gen_dir, prompts, run.num_turns)
        if len(groups) != len(prompts):
            raise RuntimeError(
                f"{gen_dir}: {len(prompts) - len(groups)} prompts lack "
                f"some of their {run.num_turns} candidates after generation"
            )
        return self.records(groups, run)

    def records(self, groups: list[dict[str, Any]], run: TaskRun) -> Records:
        """One record per group: :func:`~aries_lit.evaluation.turns.base_record` plus
        :meth:`record_fields`, one turn per candidate plus :meth:`turn_fields`."""
        records = []
        for group in groups:
            record = {**base_record(group), **self.record_fields(group)}
            record["turns"] = [
                {**turn, **self.turn_fields(turn["text"], record, run)}
                for turn in (base_turn(cand) for cand in group["candidates"])
            ]
            records.append(record)
        return records

    def record_fields(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """What a record keeps of its prompt besides ``id`` and ``prompt``."""
        return {}

    def turn_fields(self, text: str, record: Mapping[str, Any], run: TaskRun) -> dict[str, Any]:
        """What a kind adds to each turn (a grade, ...)."""
        return {}

    # --- scoring -----------------------------------------------------------------------------

    def metrics(self, records: Records, all_records: Records, run: TaskRun) -> dict[str, Any]:
        """The task's metrics from this rank's ``records`` (statistics reduced over ranks: every rank
        calls this in the same order) or from ``all_records`` (every rank's). The reward model's and
        the judge's metrics are added after, when they apply."""
        return length_metrics(records, self.name, run.num_turns, run.confidence)

    # --- report ------------------------------------------------------------------------------

    def what(self, task: Mapping[str, Any], config: Mapping[str, Any]) -> str:
        """What the report's numbers of a task mean (``task``: its entry in the report's config)."""
        return "mean reward-model score ±1 standard error" if config.get("reward_model") else "answer length"

    def notes(self, tasks: list[Mapping[str, Any]], config: Mapping[str, Any]) -> list[str]:
        """Markdown lines after the tasks' list, once for all tasks of this kind."""
        return []

    def section(
        self, checkpoint: str, label: str, metrics: Mapping[str, Any], config: Mapping[str, Any]
    ) -> list[str]:
        """A checkpoint's own Markdown section on a task, before the refinement curves."""
        return []

    def columns(self, metrics: Mapping[str, Any], label: str) -> list[tuple[str, str]] | None:
        """``(header, cell)`` pairs of the summary table (``None``: the columns of its metrics)."""
        return None

    def write_outputs(self, task_dir: Path, checkpoint: str, records: Records) -> dict[str, dict[str, str]]:
        """Extra files of a checkpoint's task, by kind of file (e.g. ``alpaca_eval``)."""
        return {}


TASK_KINDS: Registry[TaskKind] = Registry("task_kinds", TaskKind)
