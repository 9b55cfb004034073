"""One refinement template per run: declared once (``template:`` in an ``iterate`` or ``study``
config) and used by collection, the training views and evaluation.

The template reaches three kinds of part: a collection generator that refines with it
(``uses_template``: sequential refinement; parallel sampling does not), a training DataModule (its
``template`` option builds the refinement views) and the evaluation's refinement turns (its
generator and each task's generator overrides). :func:`apply_run_template` fills the run's
template into every such part that does not set one; a part that sets another is a deliberate
difference, kept and printed. Without a declared template, :func:`template_uses` lists what each
part would use and a run whose parts disagree gets a note naming them. Stages are the typed
:class:`~aries_lit.pipeline.specs.StageSpec` (a filled stage is a new spec); the evaluation is
the mapping of ``aries-lit evaluate``'s options."""

from __future__ import annotations

import copy
import importlib
import inspect
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aries_lit.core.registry import split_spec

if TYPE_CHECKING:  # the specs module imports this one
    from aries_lit.pipeline.specs import StageSpec

#: the template a part uses when it sets none (generators' and DataModules' default)
DEFAULT_TEMPLATE = "paper"


def _generator_takes_template(spec: Any) -> bool:
    from aries_lit.generators import GENERATORS

    target, _ = split_spec(spec) if spec is not None else ("sequential_refinement", {})
    try:
        cls = GENERATORS.get(target) if target else None
    except Exception:  # noqa: BLE001 - an unknown generator is reported where it is built
        return False
    return bool(cls is not None and getattr(cls, "uses_template", False) and _accepts(cls, "template"))


def _accepts(cls: type, option: str) -> bool:
    try:
        return option in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def _data_takes_template(data: Any) -> bool:
    if not isinstance(data, Mapping) or not isinstance(data.get("class_path"), str):
        return False
    module, _, name = data["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return False
    return _accepts(cls, "template")


def _spec_template(spec: Any) -> str | None:
    if spec is None or isinstance(spec, str):
        return None
    return split_spec(spec)[1].get("template")


def _with_template(spec: Any, template: str) -> dict[str, Any]:
    """``spec`` (a name or mapping) in the ``{class_path, init_args}`` form with ``template`` set."""
    target, options = split_spec(spec if spec is not None else "sequential_refinement")
    return {"class_path": target, "init_args": {**options, "template": template}}


def _stage_parts(stage: StageSpec) -> Iterator[tuple[str, str, str | None]]:
    """``(part, where, template or None when unset)`` of each part of a stage that takes the
    template: ``collect`` (a generator that refines) and ``data`` (the training views)."""
    collect = stage.collect
    if collect is not None and _generator_takes_template(collect.generator):
        yield "collect", f"stage '{stage.name}' collection", _spec_template(collect.generator)
    data = stage.fit.get("data")
    if _data_takes_template(data):
        yield "data", f"stage '{stage.name}' training views", (data.get("init_args") or {}).get("template")


def _with_stage_template(stage: StageSpec, part: str, template: str) -> StageSpec:
    """The stage with ``template`` set in its ``part`` (of :func:`_stage_parts`)."""
    if part == "collect" and stage.collect is not None:
        return stage.with_collect(generator=stage.collect.generator.with_options(template=template))
    return stage.with_data_options(template=template)


def _evaluation_parts(evaluation: Mapping[str, Any] | None) -> Iterator[tuple[str, str | None, bool]]:
    """``(where, template or None when unset, whether it can be set)`` of each part of the
    evaluation that takes the template (a task override always names its template)."""
    if evaluation is None:
        return
    generator = evaluation.get("generator")
    if generator is None or _generator_takes_template(generator):
        yield "evaluation", _spec_template(generator), True
    for i, task in enumerate(evaluation.get("tasks") or []):
        override = task.get("generator") if isinstance(task, Mapping) else None
        if isinstance(override, Mapping) and "class_path" not in override and "template" in override:
            yield f"evaluation task '{task.get('label') or f'tasks[{i}]'}'", override["template"], False


def template_uses(
    stages: Sequence[StageSpec], evaluation: Mapping[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    """``(where, template or None when unset)`` for every part of a run that takes the template."""
    uses = [(where, used) for stage in stages for _, where, used in _stage_parts(stage)]
    return uses + [(where, used) for where, used, _ in _evaluation_parts(evaluation or None)]


def _note_difference(where: str, part: str, used: str, template: str) -> None:
    print(
        f"[aries-lit] note: {where}: {part} uses the template '{used}', not the run's "
        f"'{template}' (set there explicitly)",
        file=sys.stderr,
    )


def apply_run_template(
    template: str | None,
    stages: Sequence[StageSpec],
    evaluation: Mapping[str, Any] | None = None,
    where: str = "run",
) -> tuple[list[StageSpec], dict[str, Any] | None]:
    """The stages (new specs) and evaluation (a copy) with the run's ``template`` in every part
    that takes one and sets none. Parts that set another template keep it: each is printed as a
    deliberate difference. With ``template`` ``None`` nothing is filled, and parts that
    disagree are printed as a note."""
    if template is None:
        uses = template_uses(stages, evaluation)
        seen = {t or DEFAULT_TEMPLATE for _, t in uses}
        if len(seen) > 1:
            listed = "; ".join(f"{w}: {t or DEFAULT_TEMPLATE + ' (default)'}" for w, t in uses)
            print(
                f"[aries-lit] note: {where}: the refinement template differs between parts ({listed}); "
                "declare it once with 'template:' (docs/training.md)",
                file=sys.stderr,
            )
        return list(stages), dict(evaluation) if evaluation is not None else None
    filled = []
    for stage in stages:
        for part, at, used in list(_stage_parts(stage)):
            if used is None:
                stage = _with_stage_template(stage, part, template)
            elif used != template:
                _note_difference(where, at, used, template)
        filled.append(stage)
    evaluation = copy.deepcopy(dict(evaluation)) if evaluation is not None else None
    for at, used, settable in list(_evaluation_parts(evaluation)):
        if used is None and settable and evaluation is not None:
            evaluation["generator"] = _with_template(evaluation.get("generator"), template)
        elif used is not None and used != template:
            _note_difference(where, at, used, template)
    return filled, evaluation


__all__ = ["DEFAULT_TEMPLATE", "apply_run_template", "template_uses"]
