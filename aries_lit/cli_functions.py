"""The typed functions of :data:`aries_lit.commands.COMMANDS` as commands (:func:`run_function`):
their signature parsed by jsonargparse, and their part options (``--generator``, ``--selector``,
``--prompts``, ``--tasks``) listed in ``--help`` and checked against their registries before any
work (:func:`check_spec_option`)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any


def run_function(
    function: Callable[..., Any], args: list[str], prog: str, config_files: list[str] | None = None
) -> Any:
    """Parse ``args`` against ``function``'s typed signature (``--config``, ``--print_config``,
    ``--help`` included) and call it. Unlike ``jsonargparse.CLI``, nothing in the config is
    instantiated by the parser: specs stay mappings for the registries to build, and a stage's
    fit config stays data until its own ``fit`` reads it."""
    import inspect

    from jsonargparse import ActionConfigFile, ArgumentParser

    description = (inspect.getdoc(function) or "").split("\nArgs:")[0].strip()
    parser = ArgumentParser(
        prog=prog, description=description, exit_on_error=False, formatter_class=_raw_epilog_formatter()
    )
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="a YAML file of these options")
    parser.add_function_arguments(function, as_positional=False)
    # the options as parsed (``evaluate(checkpoints, **options)`` has those of evaluate_checkpoints)
    options = {action.dest for action in parser._actions}
    specs = {n: r for n, r in _spec_registries().items() if n in options} if SPEC_OPTIONS & options else {}
    parser.epilog = _spec_epilog(specs) or None
    kwargs = parser.parse_args(args).as_dict()
    kwargs.pop("config", None)
    if "report_command" in options and not kwargs.get("report_command") and config_files:
        # the command the study report prints to rerun it: this command with its config files
        kwargs["report_command"] = " ".join([prog, *(f"--config {shlex.quote(f)}" for f in config_files)])
    for name, registry in specs.items():  # an unknown name or option fails before any work
        check_spec_option(name, kwargs.get(name), registry)
    return function(**kwargs)


#: the part options whose specs are listed in ``--help`` and checked after parsing
SPEC_OPTIONS = {"prompts", "generator", "selector", "tasks"}

#: a spec's form, printed under the parts in ``--help``
_SPEC_FORM = (
    "A part is a name (`verifier`) or {class_path: NAME, init_args: {OPTION: VALUE, ...}};\n"
    "NAME is one above or a dotted class path. (The old {name: NAME, ...} form is refused.)"
)


def _spec_epilog(specs: dict[str, Any]) -> str:
    """The ``--help`` epilog: each part option's names with their options (``--generator`` also
    lists the backends of its ``backend`` option; ``--tasks`` the prompt sources)."""
    blocks = []
    for name, registry in specs.items():
        lines = [f"  {line}" for line in registry.describe()]
        if name == "tasks":
            from aries_lit.evaluation.tasks import TASK_KEYS

            lines.append(f"  (a task's own keys, beside class_path and init_args: {', '.join(TASK_KEYS)})")
        blocks.append(f"--{name}: {registry.item} names and their options:\n" + "\n".join(lines))
        if name == "generator":
            from aries_lit.generators.backends import BACKENDS

            blocks.append(
                "--generator's backend: backend names and their options:\n"
                + "\n".join(f"  {line}" for line in BACKENDS.describe())
            )
    return "\n".join([*blocks, _SPEC_FORM]) if blocks else ""


def _spec_registries() -> dict[str, Any]:
    """The registries of the commands' part options, by option name."""
    from aries_lit.generators import GENERATORS
    from aries_lit.prompts.sources import PROMPT_SOURCES
    from aries_lit.selectors import SELECTORS

    return {
        "prompts": PROMPT_SOURCES,
        "generator": GENERATORS,
        "selector": SELECTORS,
        "tasks": PROMPT_SOURCES,
    }


def check_spec_option(name: str, value: Any, registry: Any) -> None:
    """Check a part option's spec (``--generator``, ``--selector``, ``--prompts``, each of
    ``--tasks``) against its registry; a prompt file path and an empty value are left to the
    command. A generator mapping without ``class_path`` (``evaluate``'s settings of its default
    generator) is checked as ``sequential_refinement``'s."""
    if value is None or (isinstance(value, str) and name in ("prompts", "tasks") and value not in registry):
        return
    if name == "tasks":
        from aries_lit.evaluation.tasks import TASK_KEYS

        for i, task in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(task, Mapping):
                registry.check_spec({k: v for k, v in task.items() if k not in TASK_KEYS}, f"tasks[{i}]")
            elif isinstance(task, str) and task in registry:
                registry.check_spec(task, f"tasks[{i}]")
        return
    if name == "generator" and isinstance(value, Mapping) and not {"class_path", "name"} & set(value):
        value = {"class_path": "sequential_refinement", "init_args": dict(value)}
    registry.check_spec(value, name)
    if name == "generator" and isinstance(value, Mapping):
        from aries_lit.generators.backends import BACKENDS

        backend = registry.split_spec(value)[1].get("backend")
        if backend is not None:
            BACKENDS.check_spec(backend, "generator.backend")


def _raw_epilog_formatter() -> Any:
    """jsonargparse's help formatter, with the epilog printed as written (one part per line)."""
    from jsonargparse import DefaultHelpFormatter

    class Formatter(DefaultHelpFormatter):
        def add_text(self, text: str | None) -> None:
            if text and "names and their options" in text:
                self._add_item(lambda t: t + "\n", [text])
            else:
                super().add_text(text)

    return Formatter


__all__ = ["SPEC_OPTIONS", "check_spec_option", "run_function"]
