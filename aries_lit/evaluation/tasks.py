"""What an evaluation runs: tasks (prompt sources plus settings), checkpoint names and each task's
generator config.

A task is a prompt source of the ``prompt_sources`` registry plus the evaluation keys of
:data:`TASK_KEYS`; its kind (a class of :data:`aries_lit.evaluation.kinds.TASK_KINDS`:
``verifiable``, ``ifeval``, ``pairwise``, ``open``, ...) is inferred from its prompt records unless
set (see :mod:`aries_lit.evaluation.kinds`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aries_lit.core.part_spec import refuse_name_form
from aries_lit.core.registry import split_spec
from aries_lit.evaluation.kinds import TaskKind, infer_kind, kind_of

__all__ = ["DEFAULT_TASKS", "TASK_KEYS", "Task", "checkpoint_names", "generator_spec", "parse_tasks"]

DEFAULT_TASKS: list[dict[str, Any]] = [{"class_path": "gsm8k", "init_args": {"limit": 200}}]
#: Task keys that configure the evaluation; every other key goes to the prompt source.
TASK_KEYS = ("label", "kind", "temperature", "max_new_tokens", "generator", "reward_model", "model_name")


def _safe(name: str) -> str:
    """A folder-safe version of a name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "x"


# --- tasks --------------------------------------------------------------------------------


@dataclass
class Task:
    """One evaluation task: a prompt-source spec plus evaluation settings."""

    label: str
    source: str | dict[str, Any]
    kind: str | None = None
    temperature: float | None = None
    max_new_tokens: int | None = None
    generator: dict[str, Any] = field(default_factory=dict)
    reward_model: bool | None = None
    #: the model name in a suite's answer files (``arena_hard``, ``mt_bench``; default: the checkpoint's)
    model_name: str | None = None
    prompts: list[dict[str, Any]] = field(default_factory=list)

    def infer_kind(self) -> str:
        """The name of the task's kind (:func:`aries_lit.evaluation.kinds.infer_kind`)."""
        return infer_kind(self).name


def _default_label(spec: str | Mapping[str, Any]) -> str:
    if isinstance(spec, str):
        return Path(spec).stem if os.path.sep in spec or "." in spec else spec
    target, options = split_spec(spec)
    if target == "file" and options.get("path"):
        return Path(str(options["path"])).stem.split(".")[0]
    if target is None:
        raise ValueError(f"task {dict(spec)} needs 'class_path' (a prompt source)")
    return str(target).rsplit(".", 1)[-1]


def parse_tasks(tasks: Sequence[str | Mapping[str, Any]] | None) -> list[Task]:
    """Tasks from names or dicts: a prompt-source spec (``{"class_path": "gsm8k", "init_args":
    {"limit": 200}}``) plus the evaluation keys of :data:`TASK_KEYS` beside ``class_path``
    (``label``, ...). The old ``name:`` form (``{"name": "gsm8k", "limit": 200}``) is refused in
    one line that says how to write it."""
    parsed = []
    for i, spec in enumerate(DEFAULT_TASKS if tasks is None else tasks):
        if isinstance(spec, str):
            parsed.append(Task(label=_safe(_default_label(spec)), source=spec))
            continue
        if not isinstance(spec, Mapping):
            raise TypeError(f"a task is a name or a dict, got {spec!r}")
        refuse_name_form(spec, f"tasks[{i}]")
        source = {k: v for k, v in spec.items() if k not in TASK_KEYS}
        generator = spec.get("generator") or {}
        if not isinstance(generator, Mapping):
            raise TypeError(f"task {dict(spec)}: 'generator' must be a dict of generator settings")
        parsed.append(
            Task(
                label=_safe(str(spec.get("label") or _default_label(source))),
                source=source,
                kind=spec.get("kind"),
                temperature=spec.get("temperature"),
                max_new_tokens=spec.get("max_new_tokens"),
                generator=dict(generator),
                reward_model=spec.get("reward_model"),
                model_name=_safe(str(spec["model_name"])) if spec.get("model_name") else None,
            )
        )
    labels = [t.label for t in parsed]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(
            f"tasks share the label(s) {', '.join(duplicates)}; give each a distinct 'label' "
            "(it names the output folder)"
        )
    if not parsed:
        raise ValueError("no tasks to evaluate")
    return parsed


# --- checkpoints --------------------------------------------------------------------------


def checkpoint_names(checkpoints: Sequence[str], names: Sequence[str] | None = None) -> list[str]:
    """Folder names for checkpoints: ``names`` if given, else the shortest unique path suffix.

    ``runs/aries/02-iter1/model`` and ``runs/aries/03-iter2/model`` become ``02-iter1-model`` and
    ``03-iter2-model``; a hub name ``org/model`` becomes ``model``.
    """
    if names is not None:
        if len(names) != len(checkpoints):
            raise ValueError(f"{len(names)} names for {len(checkpoints)} checkpoints")
        safe = [_safe(n) for n in names]
        if len(set(safe)) != len(safe):
            raise ValueError(f"checkpoint names are not unique: {list(names)}")
        return safe
    parts = [
        [p for p in Path(str(c).rstrip("/")).expanduser().parts if p not in ("/", "")] for c in checkpoints
    ]
    longest = max((len(p) for p in parts), default=1)
    for k in range(1, longest + 1):
        candidates = [_safe("-".join(p[-k:])) for p in parts]
        if len(set(candidates)) == len(candidates):
            return candidates
    return [f"{i}-{_safe('-'.join(p[-1:]))}" for i, p in enumerate(parts)]


def model_path(checkpoint: str) -> str:
    """A checkpoint's local folder when it exists, else the name as given (a hub name)."""
    path = Path(checkpoint).expanduser()
    return str(path) if path.exists() else checkpoint


def check_checkpoint(checkpoint: str) -> None:
    """Fail before any generation on a local path that is not an HF model folder."""
    path = Path(checkpoint).expanduser()
    if (checkpoint.startswith((".", "/", "~")) or path.exists()) and not (path / "config.json").exists():
        raise FileNotFoundError(
            f"checkpoint '{checkpoint}' is not a Hugging Face model folder (no config.json); pass HF folders "
            "written by save_pretrained (e.g. a stage's exported hf/ folder) or hub names"
        )


# --- generator config ---------------------------------------------------------------------


def _flatten(spec: Mapping[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    init_args = spec.pop("init_args", None) or {}
    return {**spec, **init_args}


def generator_spec(
    base: str | Mapping[str, Any] | None,
    task: Task,
    kind: str | TaskKind,
    num_candidates: int,
    max_new_tokens: int,
) -> dict[str, Any]:
    """The generator config of a task: defaults (``kind``'s temperature) < ``base`` (the
    evaluation's) < the task's settings.

    The result is a flat record ``{"name": generator, option: value, ...}`` (written to the
    report's config); build it with :func:`aries_lit.core.registry.class_path_form`."""
    if base is None:
        spec: dict[str, Any] = {"name": "sequential_refinement"}
    elif isinstance(base, str):
        spec = {"name": base}
    else:
        refuse_name_form(base, "generator")
        spec = _flatten(base)
        if "class_path" in spec:
            spec["name"] = spec.pop("class_path")
        if "name" not in spec:
            spec["name"] = "sequential_refinement"
    spec.update(_flatten(task.generator))
    if "class_path" in spec:
        spec["name"] = spec.pop("class_path")
    if task.temperature is not None:
        spec["temperature"] = task.temperature
    if task.max_new_tokens is not None:
        spec["max_new_tokens"] = task.max_new_tokens
    spec.setdefault("temperature", kind_of(kind).temperature)
    spec.setdefault("max_new_tokens", max_new_tokens)
    if spec.get("num_candidates", num_candidates) != num_candidates:
        raise ValueError(
            f"generator num_candidates={spec['num_candidates']} contradicts num_refinements="
            f"{num_candidates - 1} (candidates = refinements + 1); set num_refinements instead"
        )
    spec["num_candidates"] = num_candidates
    return spec
