"""``aries-lit iterate``: the ARIES workflow as a list of stages under one run directory.

base -> ARIES-SFT -> ARIES offline -> iteration 1 (collect with the previous model, select,
train) -> iteration 2 ... Each stage starts from the previous stage's HF-format model and
uses it as its reference. Per stage, ``<run_dir>/<NN>-<name>/`` holds its resolved fit
config, candidates, pairs, Lightning checkpoints (deleted once the stage is done unless
``keep_checkpoints``), the final HF model, a manifest and
``curves.png`` (the training curves, :mod:`aries_lit.pipeline.curves`).

Killed at any point and rerun with the same command, the run skips finished stages and
continues the unfinished one from its own resume point (generation from its candidates file,
training from Lightning's ``last.ckpt``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from aries_lit.checkpoints import hf_model_complete
from aries_lit.configs import set_dotted, stage_fit
from aries_lit.errors import StageError
from aries_lit.io import write_json_atomic
from aries_lit.locks import folder_lock
from aries_lit.pipeline.curves import plot_training_curves
from aries_lit.registry import note_name_form, split_spec

MANIFEST = "manifest.json"
#: per stage: seconds of this run's last attempt at collection and at training
TIMINGS = "timings.json"
#: the stage's training curves (loss parts, accuracies, margins by step)
CURVES = "curves.png"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def read_stage_manifest(stage_dir: Path) -> dict[str, Any]:
    path = stage_dir / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def write_stage_manifest(stage_dir: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(stage_dir / MANIFEST, manifest, indent=2)


def _fmt(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def check_stages(stages: list[dict[str, Any]]) -> None:
    names = set()
    for i, stage in enumerate(stages):
        where = f"stages[{i}]"
        if not isinstance(stage, dict):
            raise ValueError(
                f"{where}: a stage is a mapping with 'name' and 'fit' (got {type(stage).__name__})"
            )
        name = stage.get("name")
        if not name or not isinstance(name, str):
            raise ValueError(f"{where}: field 'name' is missing")
        if name in names:
            raise ValueError(f"{where}: stage name '{name}' is used twice")
        names.add(name)
        if "fit" not in stage and "fit_config" not in stage:
            raise ValueError(
                f"{where} ('{name}'): needs 'fit' (a fit config mapping) and/or 'fit_config' (a file)"
            )
        unknown = set(stage) - {"name", "fit", "fit_config", "collect"}
        if unknown:
            raise ValueError(f"{where} ('{name}'): unknown field(s) {sorted(unknown)}")
        collect = stage.get("collect")
        if collect is not None and "prompts" not in collect:
            raise ValueError(f"{where} ('{name}'): field 'collect.prompts' is missing")
        unknown = set(collect or {}) - {"prompts", "generator", "selector", "model"}
        if unknown:
            raise ValueError(f"{where} ('{name}'): unknown field(s) {sorted(unknown)} under 'collect'")
        parts = (("prompts", "prompt_source"), ("generator", "generator"), ("selector", "selector"))
        for part, item in parts:
            spec = (collect or {}).get(part)
            note_name_form(spec, f"{where} ('{name}').collect.{part}", item)
            if part == "generator" and isinstance(spec, dict):
                backend = split_spec(spec)[1].get("backend")
                note_name_form(backend, f"{where} ('{name}').collect.generator.backend", "backend")


def _stage_fit_config(
    stage: dict[str, Any], stage_dir: Path, model: str, pairs: Path | None
) -> dict[str, Any]:
    config = stage_fit(stage)
    set_dotted(config, "model.init_args.model", model)
    if pairs is not None:
        set_dotted(config, "data.init_args.train", str(pairs))
    set_dotted(config, "trainer.default_root_dir", str(stage_dir / "train"))
    set_dotted(config, "export.dirpath", str(stage_dir / "model"))
    return config


def with_base_model(stage: dict[str, Any], base_model: str) -> dict[str, Any]:
    """The stage with ``collect.model: base`` replaced by the run's base model."""
    collect = stage.get("collect")
    if isinstance(collect, dict) and collect.get("model") == "base":
        return {**stage, "collect": {**collect, "model": base_model}}
    return stage


def run_stage(
    stage: dict[str, Any],
    stage_dir: Path,
    model: str,
    progress: bool = True,
    candidates_dir: Path | None = None,
) -> str:
    """Run one stage (collect if configured, then fit) and return its HF model folder.

    ``collect.model`` (optional) generates with another model than the stage's input model
    (e.g. fixed offline data made by the base model); ``candidates_dir`` (default
    ``<stage_dir>/candidates``) lets runs share one generation folder.
    """
    from aries_lit.pipeline.collect import generate, select

    stage_dir.mkdir(parents=True, exist_ok=True)
    pairs = None
    collect = stage.get("collect")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if collect is not None:
        collect_model = str(Path(collect["model"]).expanduser()) if collect.get("model") else model
        print(f"[aries-lit]   collecting with {collect_model}", flush=True)
        candidates = generate(
            collect_model,
            collect["prompts"],
            collect.get("generator", "sequential_refinement"),
            str(candidates_dir or stage_dir / "candidates"),
            progress=progress,
        )
        selector = collect.get("selector", "rule")
        target, options = split_spec(selector)
        # Self-Rewarding: the current policy judges
        if isinstance(selector, dict) and target == "llm_judge" and not options.get("model"):
            selector = {"class_path": target, "init_args": {**options, "model": collect_model}}
        pairs = Path(select(candidates, collect["prompts"], selector, str(stage_dir / "pairs.jsonl")))
        if not pairs.read_text().strip():
            raise StageError(
                f"stage '{stage['name']}': selection gave no pairs (see {stage_dir}/selection_stats.json)"
            )
        timings["collect_seconds"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    config = _stage_fit_config(stage, stage_dir, model, pairs)
    config_path = stage_dir / "fit_config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"[aries-lit]   training ({config_path})", flush=True)
    cmd = [sys.executable, "-m", "aries_lit.cli", "fit", "--config", str(config_path)]
    if not progress:
        cmd += ["--trainer.enable_progress_bar", "false"]
    result = subprocess.run(cmd, env=dict(os.environ))
    if result.returncode != 0:
        raise StageError(
            f"stage '{stage['name']}': training failed (exit {result.returncode}); rerun to resume"
        )
    out = stage_dir / "model"
    if not hf_model_complete(out):
        raise StageError(f"stage '{stage['name']}': training finished but {out} holds no HF model")
    timings["fit_seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(stage_dir / TIMINGS, timings, indent=2)
    _plot_curves(stage_dir, stage["name"])
    return str(out)


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


def iterate(
    run_dir: str,
    base_model: str,
    stages: list[dict[str, Any]],
    evaluation: dict[str, Any] | None = None,
    only_stages: list[str] | None = None,
    from_stage: str | None = None,
    progress: bool = True,
    keep_checkpoints: bool = False,
) -> dict[str, str]:
    """Run the ARIES loop: each stage trains from the previous stage's model (its reference too).

    Args:
        run_dir: everything the run makes goes here; rerun the same command to resume.
        base_model: the starting model, a hub name or an HF folder.
        stages: a list of ``{name, fit, fit_config?, collect?}``: ``fit`` is a LightningCLI fit
            config (``trainer``, ``model``, ``data``, ...; ``model.init_args.model`` and the
            output folders are set by the run); ``collect`` = ``{prompts, generator, selector}``
            makes the stage collect its own pairs with the current model first.
        evaluation: options of :func:`aries_lit.evaluation.evaluate_checkpoints`; evaluates the
            base model and every stage's model at the end (resumable).
        only_stages: run just these stages (``--only_stages [sft,offline]``); earlier finished
            stages still provide the models.
        from_stage: rerun this stage and all after it (their old folders are kept as ``*.old-<time>``).
        keep_checkpoints: keep each finished stage's Lightning checkpoints; by default they are
            deleted once its model is saved (they only serve to resume its fit).
    """
    check_stages(stages)
    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    names = [s["name"] for s in stages]
    for chosen in [*(only_stages or []), *([from_stage] if from_stage else [])]:
        if chosen not in names:
            raise ValueError(f"unknown stage '{chosen}'; stages are {', '.join(names)}")
    (root / "iterate_config.yaml").write_text(
        yaml.safe_dump(
            {"base_model": base_model, "stages": stages, "evaluation": evaluation}, sort_keys=False
        )
    )
    start_all = time.time()
    model = str(Path(base_model).expanduser()) if Path(base_model).expanduser().exists() else base_model
    models = {"base": model}
    for i, stage in enumerate(stages):
        name = stage["name"]
        stage_dir = root / f"{i:02d}-{name}"
        if from_stage == name:
            for later in [root / f"{j:02d}-{s['name']}" for j, s in enumerate(stages) if j >= i]:
                if later.exists():
                    later.rename(later.with_name(f"{later.name}.old-{int(time.time())}"))
        manifest = read_stage_manifest(stage_dir)
        done = manifest.get("status") == "done" and hf_model_complete(manifest.get("model", ""))
        wanted = only_stages is None or name in only_stages
        if done:
            print(
                f"[aries-lit] stage {i + 1}/{len(stages)} '{name}': done, model {manifest['model']}",
                flush=True,
            )
            model = manifest["model"]
            models[name] = model
            continue
        if not wanted:
            raise StageError(f"stage '{name}' is not finished and not selected; run it first")
        started = time.time()
        elapsed_total = started - start_all
        print(
            f"[aries-lit] stage {i + 1}/{len(stages)} '{name}' started (from {model}; run elapsed "
            f"{_fmt(elapsed_total)})",
            flush=True,
        )
        stage_dir.mkdir(parents=True, exist_ok=True)
        with folder_lock(stage_dir, "stage"):
            attempts = manifest.get("attempts", 0) + 1
            write_stage_manifest(
                stage_dir if stage_dir.exists() else (stage_dir.mkdir(parents=True) or stage_dir),
                {
                    **manifest,
                    "name": name,
                    "status": "running",
                    "input_model": model,
                    "attempts": attempts,
                    "started_at": manifest.get("started_at", _now()),
                },
            )
            out = run_stage(with_base_model(stage, models["base"]), stage_dir, model, progress=progress)
            took = time.time() - started
            write_stage_manifest(
                stage_dir,
                {
                    "name": name,
                    "status": "done",
                    "input_model": model,
                    "model": out,
                    "attempts": attempts,
                    "started_at": manifest.get("started_at", _now()),
                    "finished_at": _now(),
                    "seconds_last_attempt": round(took, 1),
                },
            )
            if not keep_checkpoints:
                drop_resume_checkpoints(stage_dir)
        remaining = len(stages) - i - 1
        print(
            f"[aries-lit] stage {i + 1}/{len(stages)} '{name}' done in {_fmt(took)}; model {out}; "
            f"{remaining} stage(s) left",
            flush=True,
        )
        model = out
        models[name] = out
    write_json_atomic(root / "models.json", models, indent=2)
    if evaluation:
        from aries_lit.evaluation import evaluate_checkpoints

        print("[aries-lit] evaluating every stage's model", flush=True)
        evaluate_checkpoints(
            checkpoints=list(models.values()),
            names=list(models),
            out_dir=str(root / "evaluation"),
            **evaluation,
        )
    print(
        f"[aries-lit] run finished in {_fmt(time.time() - start_all)}; models: {json.dumps(models)}",
        flush=True,
    )
    return models
