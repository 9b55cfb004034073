"""The typed specs of a run, parsed once where it starts: :class:`CollectSpec`, :class:`StageSpec`
and :class:`IterateSpec` (a study's :class:`~aries_lit.pipeline.study_spec.ArmSpec` and
:class:`~aries_lit.pipeline.study_spec.StudySpec` build on them).

A run config (``aries-lit iterate``, a study arm) is read into these frozen dataclasses once, at
the top of :func:`aries_lit.pipeline.iterate.iterate` or of the study; a bad stage is one
:class:`~aries_lit.core.errors.SettingsError` naming the stage and the key (the CLI puts the config
file in front). Below that, code reads attributes (``stage.collect.generator.init_args["seed"]``)
and changes nothing in place: :meth:`StageSpec.seeded`, :meth:`StageSpec.with_base_model` and the
run template (:func:`aries_lit.pipeline.run_template.apply_run_template`) return new specs.

A stage's ``fit`` stays a mapping, the fit config LightningCLI parses (its ``fit_config`` file
merged under it at parse time); it is copied, never changed, by the methods here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aries_lit.core.configs import load_run_config, stage_fit, unshared
from aries_lit.core.errors import SettingsError
from aries_lit.core.part_spec import PartSpec, refuse_name_form
from aries_lit.pipeline.run_template import apply_run_template

#: the keys of a stage and of its ``collect``
STAGE_FIELDS = ("name", "fit", "fit_config", "collect")
COLLECT_FIELDS = ("prompts", "generator", "selector", "model")
#: what a stage collects with when its config names no generator or no selector
DEFAULT_GENERATOR = PartSpec("sequential_refinement", bare=True)
DEFAULT_SELECTOR = PartSpec("rule", bare=True)


class FieldAccess:
    """``spec["name"]`` reads the field ``name``, as the dict form of a stage or an arm was read."""

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in dataclasses.fields(self)}:  # type: ignore[arg-type]
            raise KeyError(key)
        return getattr(self, key)


def _part(value: Any, where: str, default: PartSpec | None) -> PartSpec | None:
    return default if value is None else PartSpec.from_config(value, where)


@dataclass(frozen=True)
class CollectSpec:
    """A stage's collection: prompts -> candidates (``generator``) -> pairs (``selector``).

    ``model`` generates instead of the stage's input model (``base``: the run's base model).
    ``selector`` is ``None`` when the config names none (the ``rule`` selector then selects; a
    study's stage key hashes the collection as written)."""

    prompts: PartSpec
    generator: PartSpec = DEFAULT_GENERATOR
    selector: PartSpec | None = None
    model: str | None = None

    @classmethod
    def from_config(cls, value: Any, where: str) -> CollectSpec:
        """A ``collect`` mapping; ``where`` names the stage (``stages[2] ('iter1')``)."""
        if not isinstance(value, Mapping):
            raise SettingsError(f"{where}: 'collect' is a mapping with 'prompts', 'generator' and 'selector'")
        if "prompts" not in value:
            raise SettingsError(f"{where}: field 'collect.prompts' is missing")
        unknown = set(value) - set(COLLECT_FIELDS)
        if unknown:
            raise SettingsError(f"{where}: unknown field(s) {sorted(unknown)} under 'collect'")
        model = value.get("model")
        if model is not None and not isinstance(model, str):
            raise SettingsError(f"{where}: field 'collect.model' is a model folder, hub name or 'base'")
        return cls(
            prompts=PartSpec.from_config(value["prompts"], f"{where}.collect.prompts"),
            generator=_part(value.get("generator"), f"{where}.collect.generator", DEFAULT_GENERATOR),
            selector=_part(value.get("selector"), f"{where}.collect.selector", None),
            model=model,
        )

    def to_config(self) -> dict[str, Any]:
        """The collection as a config writes it (``selector`` and ``model`` only when set)."""
        config: dict[str, Any] = {"prompts": self.prompts.config(), "generator": self.generator.config()}
        if self.selector is not None:
            config["selector"] = self.selector.config()
        if self.model is not None:
            config["model"] = self.model
        return config


@dataclass(frozen=True)
class StageSpec(FieldAccess):
    """One stage: its ``name``, its ``fit`` config (a mapping for LightningCLI) and, optionally,
    what it collects first."""

    name: str
    fit: Mapping[str, Any]
    collect: CollectSpec | None = None

    @classmethod
    def from_config(cls, value: Any, where: str) -> StageSpec:
        """A stage mapping ``{name, fit?, fit_config?, collect?}``; ``fit_config`` (a file, relative
        to the working directory) is merged under ``fit`` here, once."""
        if isinstance(value, StageSpec):
            return value
        if not isinstance(value, Mapping):
            raise SettingsError(
                f"{where}: a stage is a mapping with 'name' and 'fit' (got {type(value).__name__})"
            )
        name = value.get("name")
        if not name or not isinstance(name, str):
            raise SettingsError(f"{where}: field 'name' is missing")
        where = f"{where} ('{name}')"
        if "fit" not in value and "fit_config" not in value:
            raise SettingsError(f"{where}: needs 'fit' (a fit config mapping) and/or 'fit_config' (a file)")
        unknown = set(value) - set(STAGE_FIELDS)
        if unknown:
            raise SettingsError(f"{where}: unknown field(s) {sorted(unknown)}")
        if value.get("fit") is not None and not isinstance(value["fit"], Mapping):
            raise SettingsError(f"{where}: field 'fit' is a fit config mapping, got {value['fit']!r}")
        if value.get("fit_config") is not None and not isinstance(value["fit_config"], str):
            raise SettingsError(f"{where}: field 'fit_config' is a file path, got {value['fit_config']!r}")
        collect = value.get("collect")
        parsed = None if collect is None else CollectSpec.from_config(collect, where)
        return cls(name, unshared(stage_fit(dict(value))), parsed)

    def to_config(self) -> dict[str, Any]:
        """The stage as a run config writes it (its ``fit_config`` already merged into ``fit``)."""
        config: dict[str, Any] = {"name": self.name}
        if self.collect is not None:
            config["collect"] = self.collect.to_config()
        config["fit"] = unshared(self.fit)
        return config

    def with_collect(self, **changes: Any) -> StageSpec:
        """The stage with fields of its ``collect`` replaced."""
        if self.collect is None:
            raise ValueError(f"stage '{self.name}' collects nothing")
        return replace(self, collect=replace(self.collect, **changes))

    def with_data_options(self, **options: Any) -> StageSpec:
        """The stage with ``options`` set in its fit's ``data.init_args``."""
        fit = unshared(self.fit)
        data = fit.setdefault("data", {})
        data["init_args"] = {**(data.get("init_args") or {}), **options}
        return replace(self, fit=fit)

    def with_base_model(self, base_model: str) -> StageSpec:
        """The stage with ``collect.model: base`` replaced by the run's base model."""
        if self.collect is not None and self.collect.model == "base":
            return self.with_collect(model=base_model)
        return self

    def seeded(self, seed: int) -> StageSpec:
        """The stage with ``seed`` as its training seed (``fit.seed_everything``: initialisation;
        ``data.init_args.seed``: the data module's shuffling order) and its collection seed (the
        generator's ``seed``: sampling)."""
        fit = unshared(self.fit)
        fit["seed_everything"] = seed
        data = fit.get("data")
        if isinstance(data, dict):
            data.setdefault("init_args", {})["seed"] = seed
        stage = replace(self, fit=fit)
        if self.collect is not None:
            stage = stage.with_collect(generator=self.collect.generator.with_options(seed=seed))
        return stage


def parse_stages(stages: Any) -> tuple[StageSpec, ...]:
    """A run config's ``stages``, each parsed (:meth:`StageSpec.from_config`), names distinct."""
    if not isinstance(stages, Sequence) or isinstance(stages, str):
        raise SettingsError(f"stages: a list of stages, got {type(stages).__name__}")
    parsed: list[StageSpec] = []
    for i, value in enumerate(stages):
        stage = StageSpec.from_config(value, f"stages[{i}]")
        if stage.name in {s.name for s in parsed}:
            raise SettingsError(f"stages[{i}]: stage name '{stage.name}' is used twice")
        parsed.append(stage)
    return tuple(parsed)


def check_evaluation(evaluation: Any, where: str = "evaluation") -> dict[str, Any]:
    """A run's ``evaluation`` options (those of ``aries-lit evaluate``) as a new mapping; its part
    specs (each task, the generator and its backend) are refused here, before any work, when
    they use the old ``name:`` form."""
    if evaluation is None:
        return {}
    if not isinstance(evaluation, Mapping):
        raise SettingsError(f"{where}: the options of aries-lit evaluate, a mapping")
    tasks = evaluation.get("tasks")
    for i, task in enumerate(tasks if isinstance(tasks, list) else []):
        refuse_name_form(task, f"{where}.tasks[{i}]")
    refuse_name_form(evaluation.get("generator"), f"{where}.generator")
    return unshared(dict(evaluation))


@dataclass(frozen=True)
class IterateSpec:
    """An ``aries-lit iterate`` run: the base model, its stages (the run's template filled in) and
    the evaluation of every stage's model at the end (``None``: none)."""

    run_dir: str
    base_model: str
    stages: tuple[StageSpec, ...]
    evaluation: Mapping[str, Any] | None = None
    template: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "iterate") -> IterateSpec:
        """From the keys of a run config; ``where`` names the run in the template's notes."""
        for key in ("run_dir", "base_model"):
            if not isinstance(config.get(key), str) or not config[key]:
                raise SettingsError(f"field '{key}' is missing")
        stages = parse_stages(config.get("stages"))
        evaluation = config.get("evaluation")
        evaluation = check_evaluation(evaluation) if evaluation is not None else None
        template = config.get("template")
        filled, evaluation = apply_run_template(template, stages, evaluation, where=where)
        return cls(str(config["run_dir"]), str(config["base_model"]), tuple(filled), evaluation, template)

    @classmethod
    def from_file(cls, path: str | Path, **changes: Any) -> IterateSpec:
        """From a run config file (overlays resolved), with ``changes`` to its keys (``run_dir``);
        an error names the file."""
        config = {**load_run_config(path), **changes}
        try:
            return cls.from_config(config)
        except SettingsError as err:
            raise SettingsError(f"{path}: {err}") from None


__all__ = [
    "DEFAULT_GENERATOR",
    "DEFAULT_SELECTOR",
    "CollectSpec",
    "FieldAccess",
    "IterateSpec",
    "PartSpec",
    "StageSpec",
    "check_evaluation",
    "parse_stages",
]
