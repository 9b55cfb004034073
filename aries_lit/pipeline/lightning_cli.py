"""LightningCLI for ``fit`` and ``validate``: :class:`AriesCLI` (a resumable checkpoint callback, the
HF export, the CSV log, a lock on the run's root), run from a command line (:func:`lightning_main`)
or, for a stage of ``iterate``/``study``, from its fit config as a mapping in this process
(:func:`fit_in_process`); and :func:`resolve_class_paths`, which turns short registry names into
the dotted class paths LightningCLI needs."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LIGHTNING_COMMANDS = ("fit", "validate")


def _lightning_cli_class():
    import lightning as L
    from lightning.pytorch.cli import LightningCLI

    from aries_lit.core.checkpoints import AtomicModelCheckpoint, ExportHFModel, set_aside_torn_checkpoints
    from aries_lit.core.locks import FolderLock, is_primary_process

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
            parser.add_argument(
                "--auto_precision",
                type=bool,
                default=False,
                help="set trainer.precision to bf16-mixed where a measured probe finds bf16 autocast "
                "faster on this machine, else 32-true (aries_lit.modules.precision)",
            )

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
            if config.get("auto_precision"):
                from aries_lit.modules.precision import choose_precision

                set_to = config["trainer"].get("precision")
                if set_to not in (None, "32-true", "32", 32):
                    from aries_lit.core.errors import SettingsError

                    raise SettingsError(
                        f"auto_precision: true chooses trainer.precision, which is set to {set_to!r}: "
                        "set one of them"
                    )
                precision, why = choose_precision(str(config["trainer"].get("accelerator") or "auto"))
                config["trainer"]["precision"] = precision
                if is_primary_process():
                    note = f"[aries-lit] auto_precision: trainer.precision {precision}: {why}"
                    print(note, file=sys.stderr)
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
    if argv[0] == "fit" and not any(a == "--ckpt_path" or a.startswith("--ckpt_path=") for a in argv):
        argv = [*argv, "--ckpt_path", "last"]  # a rerun of the same command resumes
    _run(argv)


def _run(args: list[str] | dict[str, Any]) -> None:
    """AriesCLI on a command line or a parsed mapping; the ``fit`` root lock is released after."""
    AriesCLI, L = _lightning_cli_class()
    from aries_lit.modules import TrainingModule

    try:
        _run_lightning_cli(AriesCLI, L, TrainingModule, args, {"exit_on_error": False})
    finally:
        while _FIT_LOCKS:  # also when fit failed: a rerun in this process must not refuse itself
            _FIT_LOCKS.pop().release()


#: the ``fit`` root locks this process holds (:class:`aries_lit.core.locks.FolderLock`)
_FIT_LOCKS: list[Any] = []


def _run_lightning_cli(
    AriesCLI: Any, L: Any, TrainingModule: Any, argv: list[str] | dict[str, Any], quiet: dict
) -> None:
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


def fit_in_process(config: Mapping[str, Any], progress: bool = True) -> None:
    """``aries-lit fit`` on a fit config given as a mapping (a stage's, already resolved), in this
    process: the mapping goes to LightningCLI as it is (short class names resolved), never through
    a YAML file. Like the command, it resumes from ``last.ckpt`` unless ``ckpt_path`` is set."""
    fit = dict(resolve_class_paths(dict(config), where="fit config"))
    fit.setdefault("ckpt_path", "last")
    if not progress:
        fit["trainer"] = {**(fit.get("trainer") or {}), "enable_progress_bar": False}
    _run({"subcommand": "fit", "fit": fit})


def needs_own_process(config: Mapping[str, Any]) -> str | None:
    """Why a fit config must run in a process of its own, or ``None``: Lightning launches the other
    ranks of a multi-process strategy (``ddp``, more than one device or node) by re-running the
    command line, which inside ``iterate`` or ``study`` is not ``fit``'s."""
    trainer = config.get("trainer") or {}
    strategy = trainer.get("strategy")
    name = strategy.get("class_path", "") if isinstance(strategy, Mapping) else str(strategy or "")
    devices = trainer.get("devices")
    if int(trainer.get("num_nodes") or 1) > 1:
        return "more than one node"
    if isinstance(devices, int) and devices > 1 or isinstance(devices, list) and len(devices) > 1:
        return f"{devices} devices"
    if isinstance(devices, str) and devices not in ("1", "auto"):
        return f"devices {devices}"
    if name and not any(single in name.lower() for single in ("auto", "single")):
        return f"strategy {name}"
    return None


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
    from aries_lit.core.registry import RegistryError
    from aries_lit.losses import LOSSES

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


__all__ = [
    "LIGHTNING_COMMANDS",
    "MOVED_CLASS_PATHS",
    "fit_in_process",
    "lightning_main",
    "needs_own_process",
    "resolve_class_paths",
]
