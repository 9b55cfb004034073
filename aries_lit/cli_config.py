"""How every ``aries-lit`` command reads its ``--config`` files (:func:`prepare_config_args`): a
missing file or bad YAML is one line naming the file, run-config overlays and stages'
``fit_config`` files are resolved, and short registry names in ``class_path`` become the dotted
paths LightningCLI needs (:func:`resolve_class_paths`)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any


def _config_positions(args: list[str]) -> list[tuple[int, str]]:
    """``(index, path)`` of each ``--config``/``-c`` file on a command line: ``index`` is where the
    path sits in ``args`` (the ``--config=PATH`` argument itself, or the one after the flag)."""
    found = []
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            found.append((i + 1, args[i + 1]))
        elif arg.startswith("--config="):
            found.append((i, arg.split("=", 1)[1]))
    return found


def _config_files(args: list[str]) -> list[str]:
    """The ``--config``/``-c`` files on a command line."""
    return [path for _, path in _config_positions(args)]


def prepare_config_args(args: list[str], class_paths: bool = True) -> list[str]:
    """Read every ``--config`` file the one way all commands share and hand the parser its content:
    a missing file or bad YAML is one line naming the file; a run-config overlay (``base`` +
    ``overrides``) and stages' ``fit_config`` files are resolved; with ``class_paths``, short
    registry names in ``class_path`` become the dotted paths LightningCLI needs (the registries
    of the other commands take both forms) (:mod:`aries_lit.configs`, :func:`resolve_class_paths`)."""
    import yaml

    from aries_lit.configs import load_run_config

    out = list(args)
    for index, path in _config_positions(args):
        config = load_run_config(path)
        if class_paths:
            config = resolve_class_paths(config, where=path)
        text = yaml.safe_dump(config, sort_keys=False)
        out[index] = f"--config={text}" if args[index].startswith("--config=") else text
    return out


#: fit-config keys whose ``class_path`` names a loss
_LOSS_KEYS = {"loss", "preference", "refine"}


def _registries() -> list[Any]:
    from aries_lit.generators import GENERATORS
    from aries_lit.generators.backends.base import BACKENDS
    from aries_lit.losses import LOSSES
    from aries_lit.prompts.sources import PROMPT_SOURCES
    from aries_lit.selectors import SELECTORS

    return [LOSSES, GENERATORS, BACKENDS, SELECTORS, PROMPT_SOURCES]


#: old dotted class paths still accepted (with a one-line note) -> where the class lives now
MOVED_CLASS_PATHS = {
    "aries_lit.data.CollectingDataModule": "aries_lit.pipeline.collecting.CollectingDataModule",
    "aries_lit.data.collecting.CollectingDataModule": "aries_lit.pipeline.collecting.CollectingDataModule",
}


def resolve_class_paths(config: Any, where: str = "config") -> Any:
    """A copy of ``config`` with every short registry name in a ``class_path`` replaced by the
    class's dotted path (``class_path: aries`` -> ``aries_lit.losses.composite.ARIESLoss``).

    Under ``loss``/``preference``/``refine`` the name must be a loss; an unknown short name there
    raises ``ValueError`` naming ``where``, the key and the known names. Elsewhere a name that no
    registry knows is left for the parser (which also accepts class names).
    """
    from aries_lit.losses import LOSSES
    from aries_lit.registry import RegistryError

    registries = _registries()

    def walk(node: Any, keys: list[str]) -> Any:
        if isinstance(node, Mapping):
            out = {k: walk(v, [*keys, str(k)]) for k, v in node.items()}
            target = out.get("class_path")
            if isinstance(target, str) and target in MOVED_CLASS_PATHS:
                new = MOVED_CLASS_PATHS[target]
                print(f"[aries-lit] note: {where}: '{target}' has moved; write '{new}'", file=sys.stderr)
                out["class_path"] = target = new
            if isinstance(target, str) and "." not in target and ":" not in target:
                key = ".".join(keys) or "(top level)"
                if keys and keys[-1] in _LOSS_KEYS:
                    try:
                        cls = LOSSES.get(target)
                    except RegistryError as err:
                        raise ValueError(f"{where}: {key}.class_path: {err}") from None
                else:
                    cls = next((r.get(target) for r in registries if target in r), None)
                if cls is not None:
                    out["class_path"] = f"{cls.__module__}.{cls.__qualname__}"
            return out
        if isinstance(node, list):
            return [walk(v, [*keys, str(i)]) for i, v in enumerate(node)]
        return node

    return walk(config, [])


__all__ = ["MOVED_CLASS_PATHS", "prepare_config_args", "resolve_class_paths"]
