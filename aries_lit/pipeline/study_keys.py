"""The hashes that name a study's stages, shared candidate folders and evaluations
(:func:`stage_key`, :func:`collect_key`, :func:`eval_key`), and the seed put into a stage before it
is hashed (:func:`seeded_stage`). Arms that share settings share keys, so shared stages run once
and finished evaluations are reused.

Each key hashes the resolved settings (:mod:`aries_lit.pipeline.resolved`): every option of every
part, defaults included, so a changed default makes a new key rather than reusing a stage or an
evaluation run under the old one, and two ways of writing the same part (``selector: verifier``,
``{class_path: verifier}``) are one key. Result files recorded under the keys of before (the parts
as written) are moved to these by ``scripts/migrate_study_keys.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from aries_lit.pipeline.resolved import jsonable, resolved_fit, resolved_options, resolved_part
from aries_lit.pipeline.specs import DEFAULT_SELECTOR, CollectSpec, StageSpec

#: ``evaluate_checkpoints`` arguments that say where and how to run, not what is measured
_RUN_ONLY = ("checkpoints", "names", "out_dir", "progress", "print_table")


def _digest(obj: Any) -> str:
    """A short, stable hash of JSON-able settings (stage folders, shared candidate folders)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


def seeded_stage(stage: StageSpec, seed: int) -> StageSpec:
    """The stage with ``seed`` as its training and collection seed (:meth:`StageSpec.seeded`)."""
    return stage.seeded(seed)


def resolved_collect(collect: CollectSpec) -> dict[str, Any]:
    """A stage's collection with its prompts, generator and selector resolved (the ``rule``
    selector when the config names none)."""
    from aries_lit.generators import GENERATORS
    from aries_lit.prompts.base import PROMPT_SOURCES
    from aries_lit.selectors import SELECTORS

    return {
        "prompts": resolved_part(collect.prompts, PROMPT_SOURCES),
        "generator": resolved_part(collect.generator, GENERATORS),
        "selector": resolved_part(collect.selector or DEFAULT_SELECTOR, SELECTORS),
        "model": collect.model,
    }


def resolved_stage(stage: StageSpec) -> dict[str, Any]:
    """What a stage's key hashes: its resolved collection and fit config (its name left out)."""
    settings: dict[str, Any] = {"fit": resolved_fit(stage.fit)}
    if stage.collect is not None:
        settings["collect"] = resolved_collect(stage.collect)
    return settings


def stage_key(stage: StageSpec, input_key: str) -> str:
    """A short hash of a stage's resolved settings (:func:`resolved_stage`) and of the key of what
    it starts from (``base:<model>`` or the stage before). ``tests/test_study.py`` checks the keys
    of ``configs/study/cpu.yaml`` against its committed result files."""
    return _digest({"input": input_key, "stage": resolved_stage(stage)})


def collect_key(collect: CollectSpec) -> str:
    """The hash naming a ``collect`` run's shared candidates folder (:func:`resolved_collect`)."""
    return _digest(resolved_collect(collect))


def _resolved_task(task: Any) -> Any:
    """An evaluation task: its prompt source resolved, the task's own keys as written."""
    from aries_lit.evaluation.tasks import TASK_KEYS
    from aries_lit.prompts.base import PROMPT_SOURCES

    if isinstance(task, str):
        return {"prompts": resolved_part(task, PROMPT_SOURCES)}
    if not isinstance(task, Mapping):
        return jsonable(task)
    own = {k: jsonable(v) for k, v in task.items() if k in TASK_KEYS}
    source = {k: v for k, v in task.items() if k not in TASK_KEYS}
    return {**own, "prompts": resolved_part(source, PROMPT_SOURCES)}


def resolved_evaluation(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """A study's ``evaluation`` options over ``evaluate_checkpoints``'s defaults, each task's
    prompt source and the generator resolved (where and how it runs left out)."""
    from aries_lit.evaluation.evaluate import evaluate_checkpoints

    options = resolved_options(evaluate_checkpoints, evaluation)
    for key in _RUN_ONLY:
        options.pop(key, None)
    if isinstance(evaluation.get("tasks"), list):
        options["tasks"] = [_resolved_task(t) for t in evaluation["tasks"]]
    return options


def eval_key(base_model: str, evaluation: dict[str, Any]) -> str:
    """The hash of what an evaluation depends on besides the model: the study's base model (its
    name as configured) and its resolved ``evaluation`` options (:func:`resolved_evaluation`).
    Result files record it (``eval_key``), so a finished evaluation is reused only under the same
    settings."""
    return _digest({"base_model": base_model, "evaluation": resolved_evaluation(evaluation)})


__all__ = [
    "collect_key",
    "eval_key",
    "resolved_collect",
    "resolved_evaluation",
    "resolved_stage",
    "seeded_stage",
    "stage_key",
]
