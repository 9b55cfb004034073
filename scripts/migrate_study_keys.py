"""Move a study's result files (and, optionally, its run folder) from the keys of before to the
keys of today, once.

Until 2026-12-04 a study's stage, candidate and evaluation keys hashed each part as its config wrote
it, in the flat ``{name: X, **options}`` shape of the first study configs; today they hash the
resolved settings, defaults included (``aries_lit.pipeline.study_keys``). This script computes
both keys for every stage of every arm and seed that has result files, and rewrites each result
file whose ``key`` / ``eval_key`` is the old one (atomically; files already moved, or recorded
under other settings, are left as they are and counted). With ``--run_dir`` it also renames the
run folder's ``stages/<key>-<stage>``, ``eval/<key>`` and ``candidates/<key>`` folders, so a
machine that kept them reuses them.

    python scripts/migrate_study_keys.py --config configs/study/cpu.yaml
    python scripts/migrate_study_keys.py --config configs/study/cpu.yaml --run_dir /work/study_cpu --dry_run

Run it from the repository root (the configs' relative paths are from there) on a machine where
the base model's folder is where the study found it (``model: base`` stages hash that path).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aries_lit.core.errors import UserError
from aries_lit.core.io import write_json_atomic
from aries_lit.core.registry import split_spec
from aries_lit.pipeline.specs import CollectSpec, StageSpec
from aries_lit.pipeline.study import Study
from aries_lit.pipeline.study_keys import collect_key, eval_key
from aries_lit.pipeline.study_spec import StudySpec

# ----------------------------------------------------------------- the keys of before (as they were)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


def _old_shape(spec: Any, nested: bool = False) -> Any:
    """A part in the flat ``{name: X, **options}`` shape (a ``backend`` as ``{name, init_args}``)."""
    if not isinstance(spec, Mapping):
        return spec
    target, options = split_spec(spec)
    if target is None:
        return dict(spec)
    options = {k: _old_shape(v, nested=True) if k == "backend" else v for k, v in options.items()}
    if nested:
        return {"name": target, "init_args": options} if options else {"name": target}
    return {"name": target, **options}


def _old_collect(collect: CollectSpec) -> dict[str, Any]:
    parts = ("prompts", "generator", "selector")
    return {k: _old_shape(v) if k in parts else v for k, v in collect.to_config().items()}


def old_stage_key(stage: StageSpec, input_key: str) -> str:
    settings = stage.to_config()
    del settings["name"]
    if stage.collect is not None:
        settings["collect"] = _old_collect(stage.collect)
    return _digest({"input": input_key, "stage": settings})


def old_collect_key(collect: CollectSpec) -> str:
    return _digest(_old_collect(collect))


def old_eval_key(base_model: str, evaluation: Mapping[str, Any]) -> str:
    options = dict(evaluation)
    if isinstance(options.get("tasks"), list):
        options["tasks"] = [_old_shape(t) for t in options["tasks"]]
    if "generator" in options:
        options["generator"] = _old_shape(options["generator"])
    return _digest({"base_model": base_model, "evaluation": options})


# ----------------------------------------------------------------- the move


def key_moves(study: Study, arm_seeds: dict[str, set[int]], model: str) -> tuple[dict, dict, dict]:
    """``(stage keys, candidate keys, evaluation key)`` as ``{old: new}`` maps for the arms and seeds
    given (each stage's old key chained from the old keys before it, the new from the new)."""
    stages: dict[str, str] = {}
    candidates: dict[str, str] = {}
    for arm in study.arms:
        for seed in sorted(arm_seeds.get(arm.name, ())):
            old_input = f"base:{study.base_model}"
            for stage, new in study.arm_stages(arm, seed, model):
                old = old_stage_key(stage, old_input)
                if stages.setdefault(old, new) != new:
                    raise SystemExit(f"old key {old} maps to two new keys: {stages[old]} and {new}")
                if stage.collect is not None:
                    candidates[old_collect_key(stage.collect)] = collect_key(stage.collect)
                old_input = old
    base, settings = study.base_model, study.evaluation
    evaluation = {old_eval_key(base, settings): eval_key(base, settings)}
    return stages, candidates, evaluation


def migrate_results(results_dir: Path, stages: dict, evaluation: dict, dry_run: bool) -> dict[str, int]:
    counts = {"moved": 0, "already": 0, "other": 0}
    new_keys, new_evals = set(stages.values()), set(evaluation.values())
    for path in sorted(results_dir.glob("*/seed*/*.json")):
        result = json.loads(path.read_text())
        changed = dict(result)
        if result.get("index") != 0:
            changed["key"] = stages.get(result["key"], result["key"])
        if result.get("eval_key"):
            changed["eval_key"] = evaluation.get(result["eval_key"], result["eval_key"])
        if changed != result:
            counts["moved"] += 1
            if not dry_run:
                write_json_atomic(path, changed, indent=2, trailing_newline=True)
        elif (result.get("index") == 0 or result["key"] in new_keys) and (
            not result.get("eval_key") or result["eval_key"] in new_evals
        ):
            counts["already"] += 1
        else:
            counts["other"] += 1
            print(f"left as it is (recorded under other settings): {path}")
    return counts


def migrate_run_dir(run_dir: Path, stages: dict, candidates: dict, dry_run: bool) -> int:
    renamed = 0
    moves = [(run_dir / "candidates" / old, run_dir / "candidates" / new) for old, new in candidates.items()]
    moves += [(run_dir / "eval" / old, run_dir / "eval" / new) for old, new in stages.items()]
    for folder in sorted((run_dir / "stages").glob("*-*")):
        old, _, name = folder.name.partition("-")
        if old in stages:
            moves.append((folder, folder.with_name(f"{stages[old]}-{name}")))
    for old, new in moves:
        if old.exists() and old != new and not new.exists():
            print(f"{old} -> {new.name}")
            renamed += 1
            if not dry_run:
                old.rename(new)
    return renamed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the study config (configs/study/cpu.yaml)")
    parser.add_argument("--run_dir", help="also rename this run folder's stage, eval and candidate folders")
    parser.add_argument("--dry_run", action="store_true", help="say what would move, change nothing")
    parser.add_argument(
        "--base_model_dir", help="the base model's folder as the study found it (default: as found here)"
    )
    args = parser.parse_args(argv)
    try:
        return _migrate(args)
    except (UserError, OSError, ValueError) as err:  # a bad config or results folder: one line
        print(f"migrate_study_keys: error: {err}", file=sys.stderr)
        return 1


def _migrate(args: argparse.Namespace) -> int:
    spec = StudySpec.from_file(args.config)
    study = Study(spec, progress=False)
    results_dir = Path(spec.results_dir)
    arm_seeds: dict[str, set[int]] = {}
    for path in results_dir.glob("*/seed*/*.json"):
        result = json.loads(path.read_text())
        arm_seeds.setdefault(result["arm"], set()).add(int(result["seed"]))
    stages, candidates, evaluation = key_moves(study, arm_seeds, args.base_model_dir or study._model())
    counts = migrate_results(results_dir, stages, evaluation, args.dry_run)
    renamed = migrate_run_dir(Path(args.run_dir), stages, candidates, args.dry_run) if args.run_dir else 0
    verb = "would move" if args.dry_run else "moved"
    print(
        f"{results_dir}: {verb} {counts['moved']} result files to the new keys; {counts['already']} had them "
        f"already; {counts['other']} recorded under other settings, left as they are"
        + (f"; {renamed} run folders renamed" if args.run_dir else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
