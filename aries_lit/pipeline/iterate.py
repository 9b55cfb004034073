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
import time
from pathlib import Path
from typing import Any

import yaml

from aries_lit.core.errors import StageError
from aries_lit.core.io import write_json_atomic
from aries_lit.pipeline.specs import IterateSpec
from aries_lit.pipeline.stage import (  # noqa: F401 - importable from here too
    CURVES,
    MANIFEST,
    TIMINGS,
    check_fit_process,
    drop_resume_checkpoints,
    finished_model,
    read_stage_manifest,
    resume_checkpoint_dir,
    run_stage,
    run_stage_once,
    write_stage_manifest,
)


def _fmt(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def iterate(
    run_dir: str,
    base_model: str,
    stages: list[dict[str, Any]],
    evaluation: dict[str, Any] | None = None,
    only_stages: list[str] | None = None,
    from_stage: str | None = None,
    progress: bool = True,
    keep_checkpoints: bool = False,
    fit_process: str = "auto",
    template: str | None = None,
) -> dict[str, str]:
    """Run the ARIES loop: each stage trains from the previous stage's model (its reference too).

    The run's settings are parsed here, once, into an :class:`~aries_lit.pipeline.specs.IterateSpec`
    (a bad stage fails before any work), which :func:`run_iterate` runs.

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
        fit_process: ``auto`` trains each stage in this process unless its strategy needs
            processes of its own (DDP over several devices or nodes); ``own`` always runs an
            ``aries-lit fit`` subprocess (:mod:`aries_lit.pipeline.stage`).
        template: the run's refinement template (``paper``, ``short``, ``analysis`` or a text),
            declared once: filled into every collection generator that refines, every training
            DataModule and the evaluation that set none; a part that sets another keeps it and
            is printed (:mod:`aries_lit.pipeline.run_template`).
    """
    spec = IterateSpec.from_config(
        {"run_dir": run_dir, "base_model": base_model, "stages": stages, "evaluation": evaluation,
         "template": template}
    )  # fmt: skip
    return run_iterate(
        spec, only_stages, from_stage, progress, keep_checkpoints, check_fit_process(fit_process)
    )


def run_iterate(
    spec: IterateSpec,
    only_stages: list[str] | None = None,
    from_stage: str | None = None,
    progress: bool = True,
    keep_checkpoints: bool = False,
    fit_process: str = "auto",
) -> dict[str, str]:
    """Run the stages of ``spec`` (the options as in :func:`iterate`); returns the model of each."""
    stages, base_model, evaluation = spec.stages, spec.base_model, spec.evaluation
    root = Path(spec.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in stages]
    for chosen in [*(only_stages or []), *([from_stage] if from_stage else [])]:
        if chosen not in names:
            raise ValueError(f"unknown stage '{chosen}'; stages are {', '.join(names)}")
    record = {"base_model": base_model, "stages": [s.to_config() for s in stages], "evaluation": evaluation}
    (root / "iterate_config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    start_all = time.time()
    model = str(Path(base_model).expanduser()) if Path(base_model).expanduser().exists() else base_model
    models = {"base": model}
    for i, stage in enumerate(stages):
        name = stage.name
        stage_dir = root / f"{i:02d}-{name}"
        if from_stage == name:
            for later in [root / f"{j:02d}-{s.name}" for j, s in enumerate(stages) if j >= i]:
                if later.exists():
                    later.rename(later.with_name(f"{later.name}.old-{int(time.time())}"))
        done = finished_model(stage_dir)
        wanted = only_stages is None or name in only_stages
        if done is not None:
            print(f"[aries-lit] stage {i + 1}/{len(stages)} '{name}': done, model {done}", flush=True)
            model = done
            models[name] = model
            continue
        if not wanted:
            raise StageError(f"stage '{name}' is not finished and not selected; run it first")
        started = time.time()
        print(
            f"[aries-lit] stage {i + 1}/{len(stages)} '{name}' started (from {model}; run elapsed "
            f"{_fmt(started - start_all)})",
            flush=True,
        )
        out = run_stage_once(
            stage.with_base_model(models["base"]),
            stage_dir,
            model,
            progress=progress,
            keep_checkpoints=keep_checkpoints,
            fit_process=fit_process,
        )
        took = time.time() - started
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
