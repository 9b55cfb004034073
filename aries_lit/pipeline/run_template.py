"""One refinement template per run: declared once (``template:`` in an ``iterate`` or ``study``
config) and used by collection, the training views and evaluation.

The template reaches three kinds of part: a collection generator that refines with it
(``uses_template``: sequential refinement; parallel sampling does not), a training DataModule (its
``template`` option builds the refinement views) and the evaluation's refinement turns (its
generator and each task's generator overrides). :func:`apply_run_template` fills the run's
template into every such part that does not set one; a part that sets another is a deliberate
difference, kept and printed. Without a declared template, :func:`template_uses` lists what each
part would use and a run whose parts disagree gets a note naming them."""

from __future__ import annotations

import copy
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aries_lit.configs import stage_fit
from aries_lit.registry import split_spec

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


def _parts(
    stages: list[dict[str, Any]], evaluation: Mapping[str, Any] | None
) -> Iterator[tuple[str, str | None, Callable[[str], None] | None]]:
    """``(where, template or None when unset, set it)`` for every part of a run that takes the
    template (``set`` is ``None`` for a task override, which always names its template)."""
    for stage in stages:
        name = stage.get("name")
        collect = stage.get("collect")
        if isinstance(collect, dict) and _generator_takes_template(collect.get("generator")):

            def set_generator(t: str, collect: dict[str, Any] = collect) -> None:
                collect["generator"] = _with_template(collect.get("generator"), t)

            yield f"stage '{name}' collection", _spec_template(collect.get("generator")), set_generator
        if stage.get("fit") is not None or stage.get("fit_config"):
            data = stage_fit(stage).get("data")
            if _data_takes_template(data):

                def set_data(t: str, stage: dict[str, Any] = stage) -> None:
                    fit_data = stage.setdefault("fit", {}).setdefault("data", {})
                    fit_data.setdefault("init_args", {})["template"] = t

                used = (data.get("init_args") or {}).get("template")
                yield f"stage '{name}' training views", used, set_data
    if evaluation is None:
        return
    generator = evaluation.get("generator")
    if generator is None or _generator_takes_template(generator):

        def set_evaluation(t: str) -> None:
            evaluation["generator"] = _with_template(evaluation.get("generator"), t)  # type: ignore[index]

        yield "evaluation", _spec_template(generator), set_evaluation
    for i, task in enumerate(evaluation.get("tasks") or []):
        override = task.get("generator") if isinstance(task, Mapping) else None
        if isinstance(override, Mapping) and "class_path" not in override and "template" in override:
            yield f"evaluation task '{task.get('label') or f'tasks[{i}]'}'", override["template"], None


def template_uses(
    stages: list[dict[str, Any]], evaluation: Mapping[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    """``(where, template or None when unset)`` for every part of a run that takes the template."""
    return [(where, used) for where, used, _ in _parts(stages, evaluation or None)]


def apply_run_template(
    template: str | None,
    stages: list[dict[str, Any]],
    evaluation: dict[str, Any] | None = None,
    where: str = "run",
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The stages and evaluation with the run's ``template`` in every part that takes one and sets
    none (copies; the inputs are unchanged). Parts that set another template keep it: each is
    printed as a deliberate difference. With ``template`` ``None`` nothing is filled, and parts
    that disagree are printed as a note."""
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
        return stages, evaluation
    stages = copy.deepcopy(stages)
    evaluation = copy.deepcopy(evaluation) if evaluation is not None else None
    for part, used, set_template in list(_parts(stages, evaluation)):
        if used is None and set_template is not None:
            set_template(template)
        elif used is not None and used != template:
            print(
                f"[aries-lit] note: {where}: {part} uses the template '{used}', not the run's "
                f"'{template}' (set there explicitly)",
                file=sys.stderr,
            )
    return stages, evaluation


__all__ = ["DEFAULT_TEMPLATE", "apply_run_template", "template_uses"]
