"""How every ``aries-lit`` command reads its ``--config`` files (:func:`prepare_config_args`): a
missing file or bad YAML is one line naming the file, run-config overlays and stages'
``fit_config`` files are resolved, and short registry names in ``class_path`` become the dotted
paths LightningCLI needs (:func:`resolve_class_paths`)."""

from __future__ import annotations

from aries_lit.pipeline.lightning_cli import MOVED_CLASS_PATHS, resolve_class_paths


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
    of the other commands take both forms) (:mod:`aries_lit.core.configs`, :func:`resolve_class_paths`)."""
    import yaml

    from aries_lit.core.configs import load_run_config

    out = list(args)
    for index, path in _config_positions(args):
        config = load_run_config(path)
        if class_paths:
            config = resolve_class_paths(config, where=path)
        text = yaml.safe_dump(config, sort_keys=False)
        out[index] = f"--config={text}" if args[index].startswith("--config=") else text
    return out


__all__ = ["MOVED_CLASS_PATHS", "prepare_config_args", "resolve_class_paths"]
