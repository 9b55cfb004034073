"""Configs as data: reading YAML with errors that name the file, and run-config overlays.

One spec dialect runs through every command: a pluggable part is ``{class_path: ..., init_args:
{...}}`` where ``class_path`` is a dotted import path or a short registry name (``aries``,
``dpo``, ``verifier``, ``sequential_refinement``, ``arithmetic``, ...).
:func:`aries_lit.cli_config.resolve_class_paths` turns the short names of a fit config into the dotted
paths LightningCLI needs; the registries' ``build`` accepts both forms directly.

A run config (``iterate``, ``study``) may be an *overlay*: ``base: other.yaml`` (relative to the
overlay) plus ``overrides`` that set dotted paths (``stages.*.fit.model.init_args.lr``).
Imports nothing heavy at module level (the CLI uses it before torch is loaded), and nothing from
aries_lit but its errors: a bottom-layer module, read by the pipeline and the CLI.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from aries_lit.core.errors import FileContentError


def load_yaml(path: str | Path) -> Any:
    """The content of a YAML file; a missing file or a syntax error is a one-line error that
    names the file, line and column."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"config file '{path}' does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise FileContentError(f"{path}: invalid YAML: {yaml_problem(err)}") from None


def yaml_problem(err: yaml.YAMLError) -> str:
    """``line L, column C: problem`` for a YAML syntax error (PyYAML's text spans 4-5 lines)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_dotted(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested mappings, creating missing levels."""
    node = config
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def apply_override(node: Any, keys: list[str], value: Any, where: str) -> int:
    """Set ``value`` at ``keys`` under ``node``; ``*`` matches every list item (or mapping value)
    that already holds the rest of the path's parent; a list item can also be named by its ``name``.
    Returns how many places were set; a missing key raises ``KeyError`` with its name."""
    key, rest = keys[0], keys[1:]
    if isinstance(node, list):
        if key == "*":
            items = node
        else:
            items = [x for x in node if isinstance(x, dict) and x.get("name") == key]
            if not items:
                raise ValueError(f"{where}: no list item named '{key}'")
        if not rest:
            raise ValueError(f"{where}: cannot replace a whole list item")
        hits = 0
        for item in items:
            try:
                hits += apply_override(item, rest, value, where)
            except KeyError:
                if key != "*":
                    raise
        return hits
    if not isinstance(node, dict):
        raise KeyError(key)
    if not rest:
        node[key] = copy.deepcopy(value)
        return 1
    if key not in node:
        raise KeyError(key)
    return apply_override(node[key], rest, value, where)


def stage_fit(stage: dict[str, Any]) -> dict[str, Any]:
    """A stage's fit config: its ``fit_config`` file (relative to the working directory), if any,
    with its ``fit`` mapping merged over it."""
    base: dict[str, Any] = {}
    if stage.get("fit_config"):
        file = Path(stage["fit_config"])
        if not file.exists():
            raise FileNotFoundError(
                f"stage '{stage.get('name')}': fit_config '{file}' does not exist "
                "(relative paths are from the working directory)"
            )
        base = load_yaml(file) or {}
    return merge(base, stage.get("fit") or {})


def inline_fit_configs(config: dict[str, Any]) -> dict[str, Any]:
    """Merge each stage's ``fit_config`` file under its ``fit`` (:func:`stage_fit`)."""
    for stage in config.get("stages") or []:
        if isinstance(stage, dict) and stage.get("fit_config"):
            stage["fit"] = stage_fit(stage)
            del stage["fit_config"]
    return config


def load_run_config(path: str | Path) -> dict[str, Any]:
    """A run config; an overlay names its ``base`` (relative to itself) and dotted ``overrides``.

    ``overrides`` maps paths such as ``stages.*.fit.model.init_args.loss.init_args.alpha`` or
    ``stages.iter1.collect.selector`` to values; ``*`` applies to every stage that has the
    path's parent, a stage name to that stage only. Stages' ``fit_config`` files are inlined.
    """
    path = Path(path).expanduser()
    config = load_yaml(path)
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise FileContentError(f"{path}: a run config is a mapping of keys, got {type(config).__name__}")
    if "base" not in config:
        return inline_fit_configs(config)
    base = load_run_config(path.parent / config.pop("base"))
    overrides = config.pop("overrides", {}) or {}
    return apply_overrides(merge(base, config), overrides, str(path))


def unshared(node: Any) -> Any:
    """A copy of nested mappings and lists in which no two places share an object (``copy.deepcopy``
    keeps the sharing that YAML anchors and aliases create)."""
    if isinstance(node, dict):
        return {k: unshared(v) for k, v in node.items()}
    if isinstance(node, list):
        return [unshared(v) for v in node]
    return node


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any], where: str) -> dict[str, Any]:
    """``config`` with each dotted path of ``overrides`` set (see :func:`load_run_config`); a path
    that is missing or matches nothing is an error naming ``where`` and the path."""
    if not isinstance(overrides, dict):
        raise ValueError(f"{where}: 'overrides' is a mapping of dotted paths to values")
    config = unshared(config)  # a YAML alias must not carry an override to the other places it is used
    for dotted, value in overrides.items():
        try:
            hits = apply_override(config, dotted.split("."), value, f"{where}: override '{dotted}'")
        except KeyError as err:
            missing = err.args[0]
            raise ValueError(f"{where}: override '{dotted}': the base config has no '{missing}'") from None
        if hits == 0:
            raise ValueError(f"{where}: override '{dotted}' matched nothing in the base config")
    return config


__all__ = [
    "apply_override",
    "apply_overrides",
    "inline_fit_configs",
    "load_run_config",
    "load_yaml",
    "merge",
    "set_dotted",
    "stage_fit",
    "unshared",
    "yaml_problem",
]
