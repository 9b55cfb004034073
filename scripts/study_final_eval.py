"""Evaluate the final models of a study's arms (every seed) and the base model with an evaluate config,
e.g. all 541 IFEval prompts with SR and with oracle feedback (docs/study_if.md, "Evaluation").

Finds each arm-seed's last stage model in the run folder (``<run_dir>/stages/<key>-<stage>/model``,
the key computed from the study config as the study computes it), writes an ``aries-lit evaluate``
config (the given one, with those models as ``checkpoints``, named ``<arm>-seed<k>``, and
``out_dir`` set) and runs it; a killed run resumes (the evaluation reuses every answer made)::

    python scripts/study_final_eval.py --config configs/study/if.yaml --run_dir ~/aries_study_if \\
        --eval configs/eval/ifeval_smollm2.yaml --out_dir docs/study/if/final
    python scripts/study_final_eval.py ... --print_only     # the evaluate config, nothing run

Run it from the repository root (the configs' relative paths are from there).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from aries_lit.core.checkpoints import hf_model_complete
from aries_lit.core.errors import UserError
from aries_lit.pipeline.study import Study
from aries_lit.pipeline.study_spec import StudySpec


def final_models(study: Study, arms: list[str]) -> list[tuple[str, str]]:
    """``(name, model folder)`` of the base model and of each listed arm's last stage, every seed;
    a model the run folder lacks is one error naming the arm, seed and folder."""
    out = [("base", study._model())]
    for name in arms:
        arm = study.spec.arm(name)
        for seed in arm.seeds:
            stage, key = study.arm_stages(arm, seed)[-1]
            model = study.run_dir / "stages" / f"{key}-{stage.name}" / "model"
            if not hf_model_complete(str(model)):
                raise UserError(
                    f"arm '{name}' seed {seed}: its last stage '{stage.name}' has no model at {model}; "
                    "finish it first (aries-lit study --config ... --only_arms [...] --only_seeds [...])"
                )
            out.append((f"{name}-seed{seed}", str(model)))
    return out


def evaluate_config(eval_config: Path, models: list[tuple[str, str]], out_dir: str) -> dict[str, Any]:
    """The evaluate config ``eval_config`` with ``models`` as its checkpoints and ``out_dir`` set."""
    try:
        config = yaml.safe_load(eval_config.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{eval_config}: cannot read it as YAML ({err})") from None
    if not isinstance(config, dict) or "tasks" not in config:
        raise UserError(f"{eval_config}: not an evaluate config (no 'tasks' key)")
    config["checkpoints"] = [m for _, m in models]
    config["names"] = [n for n, _ in models]
    config["out_dir"] = out_dir
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the study config (configs/study/if.yaml)")
    parser.add_argument("--run_dir", help="the study's run folder (default: the config's run_dir)")
    parser.add_argument(
        "--eval", required=True, type=Path, help="an evaluate config (its tasks and settings)"
    )
    parser.add_argument(
        "--out_dir", required=True, help="where the evaluation writes (commit its small files)"
    )
    parser.add_argument("--arms", nargs="+", help="arms (default: the config's treatment and baseline)")
    parser.add_argument("--print_only", action="store_true", help="print the evaluate config, run nothing")
    args = parser.parse_args(argv)
    try:
        spec = StudySpec.from_file(args.config)
        if args.run_dir:
            spec = dataclasses.replace(spec, run_dir=args.run_dir)
        study = Study(spec, progress=False)
        compare = spec.compare or {}
        arms = args.arms or [a for a in (compare.get("treatment"), compare.get("baseline")) if a]
        config = evaluate_config(args.eval, final_models(study, arms), args.out_dir)
    except (UserError, OSError, ValueError) as err:  # a bad config or a missing model: one line
        print(f"study_final_eval: error: {err}", file=sys.stderr)
        return 1
    text = yaml.safe_dump(config, sort_keys=False)
    if args.print_only:
        print(text, end="")
        return 0
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluate.yaml").write_text(text)
    command = [sys.executable, "-m", "aries_lit.cli", "evaluate", "--config", str(out / "evaluate.yaml")]
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
