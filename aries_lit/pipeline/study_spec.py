"""A study's spec, parsed once before any work: :class:`ArmSpec` (a name, an ``aries-lit iterate``
run config with its ``overrides`` and ``until``, and seeds) and :class:`StudySpec` (the base
model, the arms, the evaluation, the template, the run and results folders, the comparison).

Every arm config is loaded and its stages parsed here, so a bad arm fails at once in one line
naming the arm, its config file and the field; the study's and each arm's refinement template
is filled into the arms' stages and the evaluation here too, so the stages an arm runs are its
spec's (:mod:`aries_lit.pipeline.specs`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aries_lit.core.configs import apply_overrides, load_run_config
from aries_lit.core.errors import SettingsError
from aries_lit.pipeline.run_template import apply_run_template
from aries_lit.pipeline.specs import FieldAccess, StageSpec, check_evaluation, parse_stages

#: the reserved name of the base model's results (stage 0 of every arm)
BASE = "base"
ARM_FIELDS = ("name", "config", "seeds", "until", "overrides")
#: the keys an arm's run config may hold (its ``run_dir``, ``base_model`` and ``evaluation`` are
#: the study's)
ARM_CONFIG_FIELDS = ("stages", "run_dir", "base_model", "evaluation", "template")
#: evaluation options the study sets itself
STUDY_SET_OPTIONS = ("checkpoints", "names", "out_dir")
#: the keys of a study config that make its spec (the others are options of the run)
STUDY_FIELDS = ("base_model", "arms", "evaluation", "template", "run_dir", "results_dir", "compare")


@dataclass(frozen=True)
class ArmSpec(FieldAccess):
    """One arm: its stages (the config's, ``overrides`` applied, up to ``until``, the template
    filled in), run once per seed. ``template`` is the arm config's own (``None``: the study's)."""

    name: str
    config: str
    seeds: tuple[int, ...]
    stages: tuple[StageSpec, ...]
    until: str | None = None
    template: str | None = None

    @classmethod
    def from_config(cls, value: Any, where: str) -> ArmSpec:
        """An arm mapping ``{name, config, seeds?, until?, overrides?}``; ``where`` is ``arms[i]``."""
        if not isinstance(value, Mapping):
            raise SettingsError(f"{where}: an arm is a mapping with 'name', 'config' and 'seeds'")
        unknown = set(value) - set(ARM_FIELDS)
        if unknown:
            raise SettingsError(f"{where}: unknown field(s) {sorted(unknown)}")
        for key in ("name", "config"):
            if not isinstance(value.get(key), str) or not value[key]:
                raise SettingsError(f"{where}: field '{key}' is missing")
        name, file = value["name"], value["config"]
        seeds = value.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise SettingsError(f"{where} ('{name}'): field 'seeds' must be a non-empty list of integers")
        config = load_run_config(file)
        extra = set(config) - set(ARM_CONFIG_FIELDS)
        if extra:
            raise SettingsError(f"{where} ('{name}'): {file}: unknown field(s) {sorted(extra)}")
        if not config.get("stages"):
            raise SettingsError(f"{where} ('{name}'): {file}: no stages")
        if value.get("overrides"):
            config = apply_overrides(config, value["overrides"], f"{where} ('{name}')")
        try:
            stages = parse_stages(config["stages"])
        except ValueError as err:
            raise SettingsError(f"{where} ('{name}'): {file}: {err}") from None
        until = value.get("until")
        stages = _until(stages, until, f"{where} ('{name}')")
        return cls(name, file, tuple(seeds), stages, until, config.get("template"))


def _until(stages: tuple[StageSpec, ...], until: str | None, where: str) -> tuple[StageSpec, ...]:
    """The stages up to and including the one named ``until`` (all of them when ``None``)."""
    if until is None:
        return stages
    names = [s.name for s in stages]
    if until not in names:
        raise SettingsError(f"{where}: field 'until': unknown stage '{until}'; stages are {', '.join(names)}")
    return stages[: names.index(until) + 1]


def parse_arms(arms: Any) -> tuple[ArmSpec, ...]:
    """A study's ``arms``, each parsed (:meth:`ArmSpec.from_config`), names distinct and not ``base``."""
    if not isinstance(arms, list):
        raise SettingsError(f"arms: a list of arms, got {type(arms).__name__}")
    parsed: list[ArmSpec] = []
    for i, value in enumerate(arms):
        arm = ArmSpec.from_config(value, f"arms[{i}]")
        if arm.name in {a.name for a in parsed} or arm.name == BASE:
            raise SettingsError(f"arms[{i}]: arm name '{arm.name}' is used twice or reserved")
        parsed.append(arm)
    return tuple(parsed)


@dataclass(frozen=True)
class StudySpec:
    """A study: arms x seeds of the loop from one base model, evaluated alike (the evaluation with
    the study's template filled in); ``compare`` is the report's comparison."""

    base_model: str
    arms: tuple[ArmSpec, ...]
    evaluation: Mapping[str, Any]
    template: str | None = None
    run_dir: str = "runs/study"
    results_dir: str = "docs/study/results"
    compare: Mapping[str, Any] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StudySpec:
        """From the keys of a study config (:data:`STUDY_FIELDS`)."""
        if not isinstance(config.get("base_model"), str) or not config["base_model"]:
            raise SettingsError("field 'base_model' is missing")
        arms = parse_arms(config.get("arms"))
        evaluation = check_evaluation(config.get("evaluation"))
        for key in STUDY_SET_OPTIONS:
            if key in evaluation:
                raise SettingsError(f"evaluation: '{key}' is set by the study; remove it")
        template = config.get("template")
        filled = []
        for arm in arms:  # the arm config's own template, else the study's
            own = arm.template if arm.template is not None else template
            stages, _ = apply_run_template(own, arm.stages, evaluation, where=f"arm '{arm.name}'")
            filled.append(replace(arm, stages=tuple(stages)))
        if template is not None:
            _, evaluation = apply_run_template(template, [], evaluation, where="study")
        folders = {k: str(config[k]) for k in ("run_dir", "results_dir") if config.get(k) is not None}
        compare = config.get("compare")
        return cls(
            config["base_model"], tuple(filled), evaluation or {}, template, **folders, compare=compare
        )

    @classmethod
    def from_file(cls, path: str | Path, **changes: Any) -> StudySpec:
        """From a study config file (its run options aside), with ``changes`` to its keys; an error
        names the file."""
        config = {k: v for k, v in load_run_config(path).items() if k in STUDY_FIELDS}
        try:
            return cls.from_config({**config, **changes})
        except SettingsError as err:
            raise SettingsError(f"{path}: {err}") from None

    def arm(self, name: str) -> ArmSpec:
        """The arm named ``name``."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise SettingsError(f"unknown arm '{name}'; arms are {', '.join(a.name for a in self.arms)}")


__all__ = ["BASE", "ArmSpec", "StudySpec", "parse_arms"]
