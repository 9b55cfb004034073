"""One stage of the ARIES loop, run in its folder: the one stage runner of ``iterate`` and ``study``.

A stage collects (optional: generate with a model, select pairs) and then fits. Its folder holds
its resolved ``fit_config.yaml`` (a record of what ran), candidates, pairs, Lightning checkpoints
(deleted once the stage is done unless kept), the final HF model, ``timings.json``,
``curves.png`` and a manifest whose lifecycle (``running`` -> ``done``, attempts, start and end
times) :func:`run_stage_once` owns, under the folder's lock. A stage killed at any point resumes
from its own resume point when run again (generation from its candidates file, training from
Lightning's ``last.ckpt``); a finished one is skipped.

Training runs in this process (:func:`aries_lit.pipeline.lightning_cli.fit_in_process`) unless
it needs processes of its own (a multi-process strategy, which Lightning launches by re-running
the command line) or the run asks for one (``fit_process: own``).
"""

from __future__ import annotations

import copy
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from aries_lit.core.checkpoints import hf_model_complete
from aries_lit.core.configs import set_dotted
from aries_lit.core.errors import SettingsError, StageError
from aries_lit.core.io import write_json_atomic
from aries_lit.core.locks import folder_lock
from aries_lit.pipeline.curves import plot_training_curves
from aries_lit.pipeline.lightning_cli import fit_in_process, needs_own_process
from aries_lit.pipeline.specs import DEFAULT_SELECTOR, StageSpec

MANIFEST = "manifest.json"
#: per stage: seconds of this run's last attempt at collection and at training
TIMINGS = "timings.json"
#: the stage's training curves (loss parts, accuracies, margins by step)
CURVES = "curves.png"
#: where a stage's fit runs: ``auto`` (this process unless it needs its own), ``own`` (always a
#: subprocess ``aries-lit fit``, which returns all its memory to the system when it ends)
FIT_PROCESSES = ("auto", "own")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def read_stage_manifest(stage_dir: Path) -> dict[str, Any]:
    path = stage_dir / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def write_stage_manifest(stage_dir: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(stage_dir / MANIFEST, manifest, indent=2)


def finished_model(stage_dir: Path) -> str | None:
    """The model folder of a finished stage (manifest ``done`` and a complete HF model), else ``None``."""
    return _done_model(read_stage_manifest(stage_dir))


def _done_model(manifest: dict[str, Any]) -> str | None:
    if manifest.get("status") == "done" and hf_model_complete(manifest.get("model", "")):
        return manifest["model"]
    return None


def check_fit_process(fit_process: str) -> str:
    if fit_process not in FIT_PROCESSES:
        raise SettingsError(f"fit_process: must be one of {', '.join(FIT_PROCESSES)}, got {fit_process!r}")
    return fit_process


def _stage_fit_config(stage: StageSpec, stage_dir: Path, model: str, pairs: Path | None) -> dict[str, Any]:
    """The stage's fit config as it runs: its model, pairs and output folders set (a copy)."""
    config = copy.deepcopy(dict(stage.fit))
    set_dotted(config, "model.init_args.model", model)
    if pairs is not None:
        set_dotted(config, "data.init_args.train", str(pairs))
    set_dotted(config, "trainer.default_root_dir", str(stage_dir / "train"))
    set_dotted(config, "export.dirpath", str(stage_dir / "model"))
    return config


def _collect(
    stage: StageSpec, stage_dir: Path, model: str, progress: bool, candidates_dir: Path | None
) -> Path:
    """Generate with the stage's collection model and select its pairs; returns the pairs file."""
    from aries_lit.generators import GENERATORS
    from aries_lit.pipeline.collect import collect_candidates, select_pairs
    from aries_lit.prompts.sources import load_prompts
    from aries_lit.selectors import SELECTORS

    collect = stage.collect
    if collect is None:
        raise ValueError(f"stage '{stage.name}' collects nothing")
    collect_model = str(Path(collect.model).expanduser()) if collect.model else model
    print(f"[aries-lit]   collecting with {collect_model}", flush=True)
    generator = GENERATORS.build(collect.generator)
    out = str(candidates_dir or stage_dir / "candidates")
    candidates = collect_candidates(generator, load_prompts(collect.prompts), collect_model, out, progress)
    selector = collect.selector or DEFAULT_SELECTOR
    if selector.class_path == "llm_judge" and not selector.init_args.get("model"):
        selector = selector.with_options(model=collect_model)  # Self-Rewarding: the current policy judges
    sel = SELECTORS.build(selector)
    pairs = Path(select_pairs(sel, candidates, load_prompts(collect.prompts), str(stage_dir / "pairs.jsonl")))
    if not pairs.read_text().strip():
        raise StageError(
            f"stage '{stage.name}': selection gave no pairs (see {stage_dir}/selection_stats.json)"
        )
    return pairs


def _return_free_heap() -> None:
    """Give the heap that a finished fit freed back to the system (glibc's ``malloc_trim``): without
    it the process keeps its training peak resident while the next stage's vLLM engine starts beside
    it (the instruction-following demo's tree peaked at 16.3 GiB that way). A no-op elsewhere."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _fit(config: dict[str, Any], config_path: Path, name: str, progress: bool, fit_process: str) -> None:
    """Train the stage: in this process, or in an ``aries-lit fit`` subprocess when it must."""
    reason = needs_own_process(config) or ("fit_process: own" if fit_process == "own" else None)
    if reason is None:
        print(f"[aries-lit]   training in this process (config: {config_path})", flush=True)
        try:
            fit_in_process(config, progress=progress)
        finally:
            gc.collect()  # the trainer, model and optimizer of this stage go before the next one
            _return_free_heap()
        return
    print(f"[aries-lit]   training in its own process ({reason}; config: {config_path})", flush=True)
    cmd = [sys.executable, "-m", "aries_lit.cli", "fit", "--config", str(config_path)]
    if not progress:
        cmd += ["--trainer.enable_progress_bar", "false"]
    result = subprocess.run(cmd, env=dict(os.environ))
    if result.returncode != 0:
        raise StageError(f"stage '{name}': training failed (exit {result.returncode}); rerun to resume")


def run_stage(
    stage: StageSpec,
    stage_dir: Path,
    model: str,
    progress: bool = True,
    candidates_dir: Path | None = None,
    fit_process: str = "auto",
) -> str:
    """Run one stage (collect if configured, then fit) and return its HF model folder.

    ``collect.model`` (optional) generates with another model than the stage's input model
    (e.g. fixed offline data made by the base model); ``candidates_dir`` (default
    ``<stage_dir>/candidates``) lets runs share one generation folder.
    """
    stage_dir.mkdir(parents=True, exist_ok=True)
    pairs = None
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if stage.collect is not None:
        pairs = _collect(stage, stage_dir, model, progress, candidates_dir)
        timings["collect_seconds"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    config = _stage_fit_config(stage, stage_dir, model, pairs)
    config_path = stage_dir / "fit_config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))  # the record of what ran
    _fit(config, config_path, stage.name, progress, check_fit_process(fit_process))
    out = stage_dir / "model"
    if not hf_model_complete(out):
        raise StageError(f"stage '{stage.name}': training finished but {out} holds no HF model")
    timings["fit_seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(stage_dir / TIMINGS, timings, indent=2)
    _plot_curves(stage_dir, stage.name)
    return str(out)


def run_stage_once(
    stage: StageSpec,
    stage_dir: Path,
    model: str,
    *,
    key: str | None = None,
    progress: bool = True,
    candidates_dir: Path | None = None,
    keep_checkpoints: bool = False,
    fit_process: str = "auto",
) -> str:
    """Run a stage in ``stage_dir`` unless it is done; returns its model folder.

    Under the folder's lock (a second run of the same stage is refused): the manifest is marked
    ``running`` with its attempt count (and ``key``, the stage's settings hash in a study), the
    stage runs (:func:`run_stage`), the manifest is marked ``done`` with its model and times, and
    the Lightning checkpoints, which only serve to resume its fit, are deleted unless kept."""
    manifest = read_stage_manifest(stage_dir)
    done = _done_model(manifest)
    if done is not None:
        return done
    stage_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(stage_dir, "stage"):
        attempts = manifest.get("attempts", 0) + 1
        started = manifest.get("started_at", _now())
        base = {"name": stage.name, **({"key": key} if key else {}), "input_model": model}
        write_stage_manifest(
            stage_dir, {**base, "status": "running", "attempts": attempts, "started_at": started}
        )
        if key:
            write_json_atomic(stage_dir / "stage.json", stage.to_config(), indent=2, default=str)
        t0 = time.perf_counter()
        out = run_stage(stage, stage_dir, model, progress, candidates_dir, fit_process)
        write_stage_manifest(
            stage_dir,
            {
                **base,
                "status": "done",
                "model": out,
                "attempts": attempts,
                "started_at": started,
                "finished_at": _now(),
                "seconds_last_attempt": round(time.perf_counter() - t0, 1),
            },
        )
        if not keep_checkpoints:
            drop_resume_checkpoints(stage_dir)
    return out


def resume_checkpoint_dir(stage_dir: Path) -> Path:
    """Where a stage's fit writes its Lightning checkpoints: ``checkpoint.dirpath`` of its
    ``fit_config.yaml`` when the stage sets one, else ``<stage_dir>/train/checkpoints`` (the
    ``aries-lit fit`` default under the stage's ``trainer.default_root_dir``)."""
    config_path = stage_dir / "fit_config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.exists() else None
    dirpath = ((config or {}).get("checkpoint") or {}).get("dirpath")
    return Path(dirpath).expanduser() if dirpath else stage_dir / "train" / "checkpoints"


def drop_resume_checkpoints(stage_dir: Path) -> int:
    """Delete a finished stage's Lightning checkpoints (weights and optimizer state, ~12x the
    model in fp32 with Adam; 1.6 GB for a 135M model): they only serve to resume its fit. Its
    Hugging Face model folder, which later stages read, is kept. Returns the bytes freed."""
    freed = 0
    for ckpt in resume_checkpoint_dir(stage_dir).glob("*.ckpt"):
        freed += ckpt.stat().st_size
        ckpt.unlink()
    return freed


def _plot_curves(stage_dir: Path, name: str) -> None:
    """``<stage>/curves.png`` from the stage's CSV training log; a plot never fails a stage."""
    try:
        path = plot_training_curves(stage_dir / "train", stage_dir / CURVES, title=f"stage '{name}'")
    except Exception as err:  # noqa: BLE001 - a broken plot must not cost a finished stage
        print(f"[aries-lit]   no training curves ({type(err).__name__}: {err})", flush=True)
        return
    if path is not None:
        print(f"[aries-lit]   training curves: {path}", flush=True)


__all__ = [
    "CURVES",
    "FIT_PROCESSES",
    "MANIFEST",
    "TIMINGS",
    "drop_resume_checkpoints",
    "finished_model",
    "read_stage_manifest",
    "resume_checkpoint_dir",
    "run_stage",
    "run_stage_once",
    "write_stage_manifest",
]
