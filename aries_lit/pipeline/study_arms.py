"""A study's arms checked before any work: each a name, a run config of ``aries-lit iterate``
(with its ``overrides`` and ``until``) and seeds; every arm config is loaded and its stages
checked, so a bad arm fails at once, naming the arm and the field."""

from __future__ import annotations

from typing import Any

from aries_lit.configs import apply_overrides, load_run_config
from aries_lit.pipeline.iterate import check_stages

#: the reserved name of the base model's results (stage 0 of every arm)
BASE = "base"


def _check_arms(arms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = set()
    out = []
    for i, arm in enumerate(arms):
        where = f"arms[{i}]"
        if not isinstance(arm, dict):
            raise ValueError(f"{where}: an arm is a mapping with 'name', 'config' and 'seeds'")
        unknown = set(arm) - {"name", "config", "seeds", "until", "overrides"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        for key in ("name", "config"):
            if not isinstance(arm.get(key), str) or not arm[key]:
                raise ValueError(f"{where}: field '{key}' is missing")
        if arm["name"] in seen or arm["name"] == BASE:
            raise ValueError(f"{where}: arm name '{arm['name']}' is used twice or reserved")
        seen.add(arm["name"])
        seeds = arm.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise ValueError(f"{where} ('{arm['name']}'): field 'seeds' must be a non-empty list of integers")
        config = load_run_config(arm["config"])
        extra = set(config) - {"stages", "run_dir", "base_model", "evaluation", "template"}
        if extra:
            raise ValueError(f"{where} ('{arm['name']}'): {arm['config']}: unknown field(s) {sorted(extra)}")
        if not config.get("stages"):
            raise ValueError(f"{where} ('{arm['name']}'): {arm['config']}: no stages")
        if arm.get("overrides"):
            config = apply_overrides(config, arm["overrides"], f"{where} ('{arm['name']}')")
        try:
            check_stages(config["stages"])
        except ValueError as err:
            raise ValueError(f"{where} ('{arm['name']}'): {arm['config']}: {err}") from None
        stages = _until(config["stages"], arm.get("until"), f"{where} ('{arm['name']}')")
        arm_out = {"name": arm["name"], "config": arm["config"], "seeds": seeds, "stages": stages}
        if config.get("template") is not None:
            arm_out["template"] = config["template"]
        out.append(arm_out)
    return out


def _until(stages: list[dict[str, Any]], until: str | None, where: str) -> list[dict[str, Any]]:
    """The stages up to and including the one named ``until`` (all of them when ``None``)."""
    if until is None:
        return stages
    names = [s["name"] for s in stages]
    if until not in names:
        raise ValueError(f"{where}: field 'until': unknown stage '{until}'; stages are {', '.join(names)}")
    return stages[: names.index(until) + 1]


__all__ = ["BASE"]
