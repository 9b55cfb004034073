"""An evaluation's checked inputs (:class:`EvaluationPlan`), settled before any generation.

:func:`make_plan` checks the checkpoints and reward models, loads every task's prompts, infers
its kind and builds its generator config, so a bad input fails before a model is loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aries_lit.evaluation.kinds import TaskKind, kind_for
from aries_lit.evaluation.score_cache import check_scorers
from aries_lit.evaluation.suites import suite_of
from aries_lit.evaluation.tasks import (
    Task,
    check_checkpoint,
    checkpoint_names,
    generator_spec,
    model_path,
    parse_tasks,
)

log = logging.getLogger(__name__)

__all__ = ["EvaluationPlan", "make_plan"]


@dataclass
class EvaluationPlan:
    """An evaluation's checked inputs: checkpoints by name, tasks with their prompts, kinds and
    generator configs, this rank's shard of each task, and the reward models."""

    out: Path
    rank: int
    world: int
    checkpoints: dict[str, str]
    tasks: list[Task]
    kinds: dict[str, TaskKind]
    generators: dict[str, dict[str, Any]]
    num_refinements: int
    reward_model: str | Mapping[str, Any] | None
    judge: str | Mapping[str, Any] | None
    scorers: dict[str, str]
    selected_by: dict[str, list[str]]
    warnings: list[str]

    @property
    def num_turns(self) -> int:
        return self.num_refinements + 1

    def shard(self, task: Task) -> list[dict[str, Any]]:
        """This rank's prompts of a task."""
        return task.prompts[self.rank :: self.world]

    def wants_rm(self, task: Task) -> bool:
        """Whether the reward model scores a task's turns: as its kind says
        (:attr:`~aries_lit.evaluation.kinds.TaskKind.reward_model`) unless the task sets it."""
        default = self.kinds[task.label].reward_model
        return (
            self.reward_model is not None
            and default is not None
            and (task.reward_model if task.reward_model is not None else default)
        )

    def judged(self, task: Task) -> bool:
        """Whether the judge compares a task's turns with the reference answers (its kind's
        :attr:`~aries_lit.evaluation.kinds.TaskKind.judged`)."""
        return self.judge is not None and self.kinds[task.label].judged

    def config(self) -> dict[str, Any]:
        """The plan's part of the report's ``config``."""
        return {
            "checkpoints": dict(self.checkpoints),
            "tasks": [
                {
                    "label": t.label,
                    "source": t.source,
                    "kind": self.kinds[t.label].name,
                    "suite": suite_of(t.source),
                    "num_prompts": len(t.prompts),
                }
                for t in self.tasks
            ],
            "num_refinements": self.num_refinements,
            "generators": self.generators,
            "reward_model": self.reward_model,
            "judge": self.judge,
            "reward_model_path": self.scorers.get("reward_model"),
            "judge_path": self.scorers.get("judge"),
            "data_selected_by": self.selected_by,
            "warnings": self.warnings,
        }


def make_plan(
    checkpoints: list[str],
    names: Sequence[str] | None,
    tasks: Sequence[str | Mapping[str, Any]] | None,
    out: Path,
    num_refinements: int,
    generator: str | Mapping[str, Any] | None,
    reward_model: str | Mapping[str, Any] | None,
    judge: str | Mapping[str, Any] | None,
    max_new_tokens: int,
) -> EvaluationPlan:
    """Check the checkpoints and reward models, load every task's prompts and settle its kind and
    generator config: everything that can fail does so before any generation."""
    from aries_lit.core.distributed import rank_world
    from aries_lit.prompts.sources import load_prompts

    rank, world = rank_world()
    for ckpt in checkpoints:
        check_checkpoint(ckpt)
    ckpt_names = checkpoint_names(checkpoints, names)
    parsed = parse_tasks(tasks)
    scorers = check_scorers(reward_model, judge)  # a folder that is no reward model fails before generating
    selected_by = {name: _data_selected_by(ckpt) for name, ckpt in zip(ckpt_names, checkpoints)}
    kinds: dict[str, TaskKind] = {}
    for task in parsed:
        task.prompts = load_prompts(task.source)
        if not task.prompts:
            raise ValueError(f"task '{task.label}' has no prompts")
        kinds[task.label] = kind_for(task)
    num_turns = num_refinements + 1
    generators = {
        t.label: generator_spec(generator, t, kinds[t.label], num_turns, max_new_tokens) for t in parsed
    }
    judging = any(kind.judged for kind in kinds.values())
    return EvaluationPlan(
        out=out,
        rank=rank,
        world=world,
        checkpoints=dict(zip(ckpt_names, checkpoints)),
        tasks=parsed,
        kinds=kinds,
        generators=generators,
        num_refinements=num_refinements,
        reward_model=reward_model,
        judge=judge,
        scorers=scorers,
        selected_by=selected_by,
        warnings=_judge_warnings(scorers.get("judge") if judging else None, selected_by),
    )


def _data_selected_by(checkpoint: str) -> list[str]:
    """Reward models that selected a checkpoint's training data, as its export recorded them."""
    from aries_lit.core.provenance import read_provenance

    return list(read_provenance(model_path(checkpoint)).get("data_selected_by", []))


def _judge_warnings(judge_path: str | None, selected_by: Mapping[str, list[str]]) -> list[str]:
    """A logged warning (and report line) per checkpoint whose training data the judge selected."""
    warnings = []
    for name, models in selected_by.items():
        if judge_path is not None and judge_path in models:
            warnings.append(
                f"the judge {judge_path} also selected the training data of checkpoint '{name}' "
                "(reward-model selection): its win rates favour that checkpoint; judge with another model"
            )
            log.warning("evaluate: %s", warnings[-1])
    return warnings
