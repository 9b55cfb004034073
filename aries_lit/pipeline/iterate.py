"""``aries-lit iterate``: the ARIES workflow as a list of stages under one run directory.

base -> ARIES-SFT -> ARIES offline -> iteration 1 (collect with the previous model, select,
train) -> iteration 2 ... Each stage starts from the previous stage's HF-format model and
uses it as its reference. Per stage, ``<run_dir>/<NN>-<name>/`` holds its resolved fit
config, candidates, pairs, Lightning checkpoints, the final HF model and a manifest.

Killed at any point and rerun with the same command, the run skips finished stages and
continues the unfinished one from its own resume point (generation from its candidates file,
training from Lightning's ``last.ckpt``).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from aries_lit.checkpoints import hf_model_complete

MANIFEST = "manifest.json"
#: per stage: seconds of this run's last attempt at collection and at training
TIMINGS = "timings.json"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    node = config
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def read_stage_manifest(stage_dir: Path) -> dict[str, Any]:
    path = stage_dir / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def write_stage_manifest(stage_dir: Path, manifest: dict[str, Any]) -> None:
    tmp = stage_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(stage_dir / MANIFEST)


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


def _stage_fit_config(
    stage: dict[str, Any], stage_dir: Path, model: str, pairs: Path | None
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if stage.get("fit_config"):
        path = Path(stage["fit_config"])
        if not path.exists():
            raise FileNotFoundError(f"stage '{stage['name']}': fit_config '{path}' does not exist")
        config = yaml.safe_load(path.read_text()) or {}
    config = _merge(config, stage.get("fit") or {})
    _set(config, "model.init_args.model", model)
    if pairs is not None:
        _set(config, "data.init_args.train", str(pairs))
    _set(config, "trainer.default_root_dir", str(stage_dir / "train"))
    _set(config, "export.dirpath", str(stage_dir / "model"))
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
        if isinstance(selector, dict) and selector.get("name") == "llm_judge" and not selector.get("model"):
            selector = {**selector, "model": collect_model}  # Self-Rewarding: the current policy judges
        pairs = Path(select(candidates, collect["prompts"], selector, str(stage_dir / "pairs.jsonl")))
        if not pairs.read_text().strip():
            raise RuntimeError(
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
        raise RuntimeError(
            f"stage '{stage['name']}': training failed (exit {result.returncode}); rerun to resume"
        )
    out = stage_dir / "model"
    if not hf_model_complete(out):
        raise RuntimeError(f"stage '{stage['name']}': training finished but {out} holds no HF model")
    timings["fit_seconds"] = round(time.perf_counter() - t0, 1)
    (stage_dir / TIMINGS).write_text(json.dumps(timings, indent=2))
    return str(out)


def iterate(
    run_dir: str,
    base_model: str,
    stages: list[dict[str, Any]],
    evaluation: dict[str, Any] | None = None,
    only_stages: list[str] | None = None,
    from_stage: str | None = None,
    progress: bool = True,
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
            raise RuntimeError(f"stage '{name}' is not finished and not selected; run it first")
        started = time.time()
        elapsed_total = started - start_all
        print(
            f"[aries-lit] stage {i + 1}/{len(stages)} '{name}' started (from {model}; run elapsed "
            f"{_fmt(elapsed_total)})",
            flush=True,
        )
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
        remaining = len(stages) - i - 1
        print(
            f"[aries-lit] stage {i + 1}/{len(stages)} '{name}' done in {_fmt(took)}; model {out}; "
            f"{remaining} stage(s) left",
            flush=True,
        )
        model = out
        models[name] = out
    (root / "models.json").write_text(json.dumps(models, indent=2))
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


def _apply_override(node: Any, keys: list[str], value: Any, where: str) -> int:
    """Set ``value`` at ``keys`` under ``node``; ``*`` matches every list item (or mapping value)
    that already holds the rest of the path's parent; a list item can also be named by its ``name``."""
    key, rest = keys[0], keys[1:]
    if isinstance(node, list):
        if key == "*":
            items = node
        else:
            items = [x for x in node if isinstance(x, dict) and x.get("name") == key]
            if not items:
                raise ValueError(f"{where}: no list item named '{key}'")
        if not rest:
            raise ValueError(f"{where}: cannot replace a whole list item")
        hits = 0
        for item in items:
            try:
                hits += _apply_override(item, rest, value, where)
            except KeyError:
                if key != "*":
                    raise
        return hits
    if not isinstance(node, dict):
        raise KeyError(key)
    if not rest:
        node[key] = copy.deepcopy(value)
        return 1
    if key not in node:
        raise KeyError(key)
    return _apply_override(node[key], rest, value, where)


def inline_fit_configs(config: dict[str, Any]) -> dict[str, Any]:
    """Merge each stage's ``fit_config`` file (relative to the working directory) under its ``fit``."""
    for stage in config.get("stages") or []:
        if isinstance(stage, dict) and stage.get("fit_config"):
            file = Path(stage.pop("fit_config"))
            if not file.exists():
                raise FileNotFoundError(
                    f"stage '{stage.get('name')}': fit_config '{file}' does not exist "
                    "(relative paths are from the working directory)"
                )
            stage["fit"] = _merge(yaml.safe_load(file.read_text()) or {}, stage.get("fit") or {})
    return config


def load_run_config(path: str | Path) -> dict[str, Any]:
    """A run config; an overlay names its ``base`` (relative to itself) and dotted ``overrides``.

    ``overrides`` maps paths such as ``stages.*.fit.model.init_args.loss.init_args.alpha`` or
    ``stages.iter1.collect.selector`` to values; ``*`` applies to every stage that has the
    path's parent, a stage name to that stage only.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file '{path}' does not exist")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML: {err}") from None
    if "base" not in config:
        return inline_fit_configs(config)
    base = load_run_config(path.parent / config.pop("base"))
    overrides = config.pop("overrides", {}) or {}
    merged = _merge(base, config)
    for dotted, value in overrides.items():
        try:
            hits = _apply_override(merged, dotted.split("."), value, f"{path}: override '{dotted}'")
        except KeyError as err:
            raise ValueError(f"{path}: override '{dotted}': the base config has no '{err.args[0]}'") from None
        if hits == 0:
            raise ValueError(f"{path}: override '{dotted}' matched nothing in the base config")
    return merged


def iterate_main(argv: list[str]) -> None:
    """``aries-lit iterate --config RUN.yaml [--run_dir D] [--only_stages a,b] [--from_stage s]``.

    The run config is read as plain YAML (its stages hold whole fit configs with
    ``class_path`` entries, which are resolved by each stage's own ``fit``, not here).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="aries-lit iterate", description=iterate.__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="run config: run_dir, base_model, stages, evaluation")
    parser.add_argument("--run_dir", help="override the config's run_dir")
    parser.add_argument("--base_model", help="override the config's base_model")
    parser.add_argument("--only_stages", "--stages", help="comma-separated stage names to run")
    parser.add_argument("--from_stage", help="rerun this stage and all after it")
    parser.add_argument("--progress", default="true", choices=["true", "false"])
    parser.add_argument("--print_config", action="store_true", help="print the resolved run config and exit")
    args = parser.parse_args(argv)
    path = Path(args.config)
    try:
        config = load_run_config(path)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"aries-lit iterate: {err}") from None
    if args.print_config:
        print(yaml.safe_dump(config, sort_keys=False))
        return
    unknown = set(config) - {"run_dir", "base_model", "stages", "evaluation"}
    if unknown:
        raise SystemExit(f"aries-lit iterate: {path}: unknown top-level field(s) {sorted(unknown)}")
    for key in ("run_dir", "base_model", "stages"):
        if not (getattr(args, key, None) if key != "stages" else None) and key not in config:
            raise SystemExit(f"aries-lit iterate: {path}: field '{key}' is missing")
    try:
        iterate(
            run_dir=args.run_dir or config["run_dir"],
            base_model=args.base_model or config["base_model"],
            stages=config["stages"],
            evaluation=config.get("evaluation"),
            only_stages=args.only_stages.split(",") if args.only_stages else None,
            from_stage=args.from_stage,
            progress=args.progress == "true",
        )
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"aries-lit iterate: {path}: {err}") from None
