"""``aries-lit study``: arms x seeds of the ARIES loop from one base, evaluated alike, with a report.

A study config names its arms; each arm is a run config of ``aries-lit iterate`` (its
``stages``, with ``base:`` + ``overrides:`` overlays for ablations) run once per seed::

    run_dir: runs/study/cpu               # models, candidates, generations (large; resumable)
    results_dir: docs/study/cpu           # small result files, meant to be committed
    base_model: ~/.cache/aries_lit/smollm2-135m-instruct
    arms:
      - {name: aries, config: configs/study/arms/aries.yaml, seeds: [0, 1, 2]}
      - {name: iterative_dpo, config: configs/study/arms/iterative_dpo.yaml, seeds: [0, 1, 2]}
    evaluation: {tasks: [...], num_refinements: 3, generator: {...}}   # evaluate's options
    compare: {treatment: aries, baseline: iterative_dpo}

**Shared stages run once.** A stage's folder is named by a hash of its settings (with the seed
put in: ``fit.seed_everything`` and the collection generator's ``seed``) and of the stage it
starts from, so arms that share their first stages (an ablation that changes only the later
ones) reuse those stages' models, candidates and evaluations. Kill it at any point and rerun
the same command: finished stages and evaluations are skipped, the unfinished one resumes.

**Results.** After each stage's model is evaluated, a small JSON file
``<results_dir>/<arm>/seed<k>/<NN>-<stage>.json`` records its Direct and SR accuracy, the
refinement curve, every test item's correctness by turn, the stage's selection statistics and
its timings; :mod:`aries_lit.pipeline.study_report` rebuilds the report from these files alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from aries_lit.core.errors import SettingsError
from aries_lit.evaluation.report import write_json
from aries_lit.pipeline.curves import training_summary
from aries_lit.pipeline.specs import StageSpec
from aries_lit.pipeline.stage import TIMINGS, check_fit_process, run_stage_once
from aries_lit.pipeline.study_keys import (  # noqa: F401 - importable from here too
    _digest,
    collect_key,
    eval_key,
    seeded_stage,
    stage_key,
)
from aries_lit.pipeline.study_spec import BASE, ArmSpec, StudySpec

#: the counts of a stage's generation manifest kept in its result file (the compute of collection)
GENERATION_COUNTS = ("candidates", "prompt_tokens", "completion_tokens", "finish_length")


def find_recorded_evaluation(
    results_dir: str | Path, key: str, evaluation_key: str
) -> tuple[dict[str, Any], float, Path] | None:
    """``(tasks, seconds, result file)`` of a result file in ``results_dir`` that evaluated the model
    of stage ``key`` under evaluation settings ``evaluation_key``, or ``None``.

    Result files without an ``eval_key`` (written before it was recorded), with other settings or
    without an evaluation (``eval_stages: last``) are never used; nor are unreadable ones (the
    report names them)."""
    from aries_lit.pipeline.study_results import RESULT_FILES, read_result

    for path in sorted(Path(results_dir).glob(RESULT_FILES)):
        try:
            result = read_result(path)
        except (OSError, ValueError, TypeError):
            continue
        if result["key"] != key or not result["tasks"]:
            continue
        seconds = (result.get("timings") or {}).get("eval_seconds")
        if result.get("eval_key") == evaluation_key and seconds is not None:
            return result["tasks"], seconds, path
    return None


def _ifeval_results(ifeval: dict[str, Any]) -> dict[str, Any]:
    """The compact IFEval figures of one task: by turn the instruction-level strict accuracy and the
    loose prompt- and instruction-level ones, and per instruction type the followed/total counts at
    Direct and at the last turn (from which the report splits held-out types from trained ones)."""
    curve = ifeval["curve"]
    return {
        "inst_strict": [c["inst_strict"]["mean"] for c in curve],
        "prompt_loose": [c["prompt_loose"]["mean"] for c in curve],
        "inst_loose": [c["inst_loose"]["mean"] for c in curve],
        "by_type": {
            turn: {t: [v["followed"], v["n"]] for t, v in types.items()}
            for turn, types in ifeval["by_type"].items()
        },
        "oracle_feedback": bool(ifeval.get("oracle_feedback")),
    }


def _task_results(report: dict[str, Any]) -> dict[str, Any]:
    """The compact per-task results of one evaluated model (metrics and per-item correctness)."""
    (result,) = report["results"].values()
    tasks = {}
    for label, task in result["tasks"].items():
        metrics = task["metrics"]
        entry: dict[str, Any] = {"n": metrics.get("n"), "kind": metrics.get("kind")}
        if (metrics.get("length") or {}).get("curve"):  # mean answer length (characters) by turn
            entry["length"] = [round(c["mean"], 1) for c in metrics["length"]["curve"]]
        if "ifeval" in metrics:
            entry["ifeval"] = _ifeval_results(metrics["ifeval"])
        if "accuracy" in metrics:
            acc = metrics["accuracy"]
            keep = ("mean", "ci_low", "ci_high", "n")
            entry["direct"] = {k: acc["direct"].get(k) for k in keep}
            entry["sr"] = {k: acc["sr"].get(k) for k in keep}
            entry["curve"] = [c["mean"] for c in acc["curve"]]
            entry["items"] = {
                str(r["id"]): "".join("1" if t.get("correct") else "0" for t in r["turns"])
                for r in task["records"]
            }
            entry["truncated"] = [
                sum(1 for r in task["records"] if r["turns"][i].get("finish_reason") == "length")
                for i in range(len(acc["curve"]))
            ]
        tasks[label] = entry
    return tasks


class Study:
    """Runs the arms of a study and writes their result files (see the module docstring).

    ``base_model`` is the study's :class:`StudySpec`, or the base model of the old arguments
    (``arms``, ``evaluation``, ``run_dir``, ``results_dir``, ``template``), parsed into one here.
    The other arguments are options of the run."""

    def __init__(
        self,
        base_model: str | StudySpec,
        arms: list[dict[str, Any]] | None = None,
        evaluation: dict[str, Any] | None = None,
        run_dir: str = "runs/study",
        results_dir: str = "docs/study/results",
        progress: bool = True,
        eval_stages: str = "all",
        keep_checkpoints: bool = False,
        reuse_evaluations: bool = True,
        fit_process: str = "auto",
        template: str | None = None,
    ) -> None:
        self.fit_process = check_fit_process(fit_process)
        if isinstance(base_model, StudySpec):
            spec = base_model
        else:
            fields = {"base_model": base_model, "arms": arms or [], "evaluation": evaluation or {},
                      "run_dir": run_dir, "results_dir": results_dir, "template": template}  # fmt: skip
            spec = StudySpec.from_config(fields)
        if eval_stages not in ("all", "last"):
            raise SettingsError(f"eval_stages: must be 'all' or 'last', got {eval_stages!r}")
        self.spec = spec
        self.base_model = spec.base_model
        self.arms = spec.arms
        self.evaluation = dict(spec.evaluation)
        self.eval_key = eval_key(spec.base_model, self.evaluation)
        self.run_dir = Path(spec.run_dir).expanduser()
        self.results_dir = Path(spec.results_dir)
        self.eval_stages = eval_stages
        self.keep_checkpoints = keep_checkpoints
        self.reuse_evaluations = reuse_evaluations
        self.progress = progress

    def _model(self) -> str:
        path = Path(self.base_model).expanduser()
        return str(path) if path.exists() else self.base_model

    def evaluate_model(self, model: str, key: str) -> tuple[dict[str, Any], float]:
        """Evaluate one model once (resumable; cached by ``key``); ``(task results, seconds)``.

        On a machine whose run folder lacks the evaluation, a result file in ``results_dir`` that
        recorded it under the same evaluation settings (:func:`find_recorded_evaluation`) is used
        instead of evaluating again, unless ``reuse_evaluations`` is off."""
        from aries_lit.evaluation import evaluate_checkpoints

        out = self.run_dir / "eval" / key
        summary = out / "study_summary.json"
        if summary.exists():
            saved = json.loads(summary.read_text())
            return saved["tasks"], saved["seconds"]
        recorded = None
        if self.reuse_evaluations:
            recorded = find_recorded_evaluation(self.results_dir, key, self.eval_key)
        if recorded is not None:
            tasks, seconds, path = recorded
            print(f"[aries-lit] study: the evaluation of '{key}' is reused from {path}")
            write_json(summary, {"tasks": tasks, "seconds": seconds, "reused_from": str(path)})
            return tasks, seconds
        t0 = time.perf_counter()
        evaluate_checkpoints(
            checkpoints=[model], names=[key], out_dir=str(out), progress=self.progress, **self.evaluation
        )
        seconds = round(time.perf_counter() - t0, 1)
        tasks = _task_results(json.loads((out / "report.json").read_text()))
        write_json(summary, {"tasks": tasks, "seconds": seconds})
        return tasks, seconds

    def _candidates_dir(self, stage: StageSpec) -> Path | None:
        """The shared candidates folder of a stage that collects with a fixed model (``collect.model``,
        not the policy: every arm shares it), else ``None`` (the stage's own folder)."""
        if stage.collect is not None and stage.collect.model:
            return self.run_dir / "candidates" / collect_key(stage.collect)
        return None

    def run_stage_once(self, stage: StageSpec, key: str, model: str) -> str:
        """Run a stage in its shared folder unless it is done; return its model folder."""
        stage_dir = self.run_dir / "stages" / f"{key}-{stage.name}"
        candidates = self._candidates_dir(stage)
        return run_stage_once(
            stage,
            stage_dir,
            model,
            key=key,
            progress=self.progress,
            candidates_dir=candidates,
            keep_checkpoints=self.keep_checkpoints,
            fit_process=self.fit_process,
        )

    def _stage_record(self, stage_dir: Path, candidates_dir: Path | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {}
        timings = stage_dir / TIMINGS
        if timings.exists():
            record["timings"] = json.loads(timings.read_text())
        stats = stage_dir / "selection_stats.json"
        if stats.exists():
            record["selection"] = json.loads(stats.read_text())
        data_stats = stage_dir / "train" / "data_stats.json"
        if data_stats.exists():
            record["data"] = json.loads(data_stats.read_text())
        training = training_summary(stage_dir / "train")
        if training:
            record["training"] = training
        fit_config = stage_dir / "fit_config.yaml"
        if fit_config.exists():
            epochs = ((yaml.safe_load(fit_config.read_text()) or {}).get("trainer") or {}).get("max_epochs")
            if epochs is not None:
                record.setdefault("data", {})["max_epochs"] = epochs
        candidates = (candidates_dir or stage_dir / "candidates") / "manifest.json"
        if candidates.exists():
            manifest = json.loads(candidates.read_text())
            counts = manifest.get("counts") or {}
            record["generation"] = {
                "prompts": manifest.get("num_prompts"),
                **{k: counts[k] for k in GENERATION_COUNTS if k in counts},
            }
        return record

    def arm_stages(self, arm: ArmSpec, seed: int, model: str | None = None) -> list[tuple[StageSpec, str]]:
        """``(stage, key)`` of each stage of one arm and seed, as :meth:`run_arm` runs them: the
        stage seeded and with ``collect.model: base`` set to ``model`` (default: the base model's
        folder), its key chained from the base model's through the stages before it."""
        model = self._model() if model is None else model
        input_key = f"base:{self.base_model}"
        out = []
        for stage in arm.stages:
            stage = stage.with_base_model(model).seeded(seed)
            key = stage_key(stage, input_key)
            out.append((stage, key))
            input_key = key
        return out

    def run_arm(self, arm: ArmSpec, seed: int) -> None:
        """Every stage of one arm and seed, each evaluated, each result file written."""
        model = self._model()
        base_tasks, base_seconds = self.evaluate_model(model, "base")
        record = {"timings": {"eval_seconds": base_seconds}}
        self._write_result(arm.name, seed, 0, BASE, "base", base_tasks, record)
        for i, (stage, key) in enumerate(self.arm_stages(arm, seed), start=1):
            print(f"[aries-lit] study: arm '{arm.name}' seed {seed} stage {i} '{stage.name}' ({key})")
            model = self.run_stage_once(stage, key, model)
            record = self._stage_record(
                self.run_dir / "stages" / f"{key}-{stage.name}", self._candidates_dir(stage)
            )
            tasks: dict[str, Any] = {}
            if self.eval_stages == "all" or i == len(arm.stages):
                tasks, seconds = self.evaluate_model(model, key)
                record.setdefault("timings", {})["eval_seconds"] = seconds
            self._write_result(arm.name, seed, i, stage.name, key, tasks, record)

    def _write_result(
        self, arm: str, seed: int, index: int, stage: str, key: str, tasks: dict, record: dict
    ) -> None:
        path = self.results_dir / arm / f"seed{seed}" / f"{index:02d}-{stage}.json"
        evaluated = {"eval_key": self.eval_key} if tasks else {}
        write_json(
            path,
            {"arm": arm, "seed": seed, "index": index, "stage": stage, "key": key, **evaluated, **record,
             "tasks": tasks},
        )  # fmt: skip

    def run(self, only_arms: list[str] | None = None, only_seeds: list[int] | None = None) -> None:
        """All arms, seed by seed (every arm's first seed before any arm's second)."""
        for name in only_arms or []:
            self.spec.arm(name)  # an unknown arm fails before any work
        seeds = sorted({s for a in self.arms for s in a.seeds})
        for seed in seeds:
            if only_seeds is not None and seed not in only_seeds:
                continue
            for arm in self.arms:
                if seed in arm.seeds and (not only_arms or arm.name in only_arms):
                    self.run_arm(arm, seed)


def study(
    base_model: str,
    arms: list[dict[str, Any]],
    evaluation: dict[str, Any],
    run_dir: str = "runs/study",
    results_dir: str = "docs/study/results",
    compare: dict[str, Any] | None = None,
    only_arms: list[str] | None = None,
    only_seeds: list[int] | None = None,
    report_only: bool = False,
    progress: bool = True,
    eval_stages: str = "all",
    keep_checkpoints: bool = False,
    reuse_evaluations: bool = True,
    report_command: str | None = None,
    fit_process: str = "auto",
    template: str | None = None,
) -> str:
    """Run a study (arms x seeds from one base, evaluated alike) and write its report.

    The study's settings are parsed here, once, into a :class:`StudySpec` (every arm config loaded
    and checked before any work), which :class:`Study` runs; ``report_only`` reads only the
    result files.

    Args:
        base_model: the model every arm starts from (HF folder or hub name).
        arms: ``[{name, config, seeds, until, overrides}]``; ``config`` is an ``iterate`` run
            config (its stages; relative paths are from the working directory); ``until`` (a stage
            name) keeps the stages up to it; ``overrides`` are dotted paths set on the arm's config
            as in an overlay. Stages shared by arms run once.
        evaluation: options of ``aries-lit evaluate`` (tasks, num_refinements, generator, ...)
            applied to the base model and to every stage's model.
        run_dir: models, candidates and generations; keep it outside the repository.
        results_dir: the small result files and the report (``report.md``, plots).
        compare: ``{treatment: arm, baseline: arm, ablations: [arm, ...]}``: the paired test and the
            paper's targets in the report.
        only_arms / only_seeds: run part of the study (the report uses every result file).
        report_only: rebuild the report from ``results_dir`` without running anything.
        progress: progress bars.
        eval_stages: ``all`` evaluates every stage's model; ``last`` only the base and each arm's
            last stage (a faster demo; the report then has one row per arm and seed).
        keep_checkpoints: keep each finished stage's Lightning checkpoint (1.6 GB for a 135M
            model); by default it is deleted once the stage's model is saved, since it only
            serves to resume that stage's fit.
        reuse_evaluations: on a fresh machine (a run folder without the evaluation), take a
            stage's or the base model's evaluation from a result file in ``results_dir`` that
            recorded it under the same base model and evaluation settings, instead of evaluating
            again; the stage itself is still run when a later stage needs its model.
        report_command: the command the report prints to rerun the study and rebuild the
            report; the CLI sets it to ``aries-lit study --config <the config file>``.
        fit_process: ``auto`` trains each stage in this process unless its strategy needs
            processes of its own; ``own`` always runs an ``aries-lit fit`` subprocess.
        template: the study's refinement template, declared once: filled into every arm's
            collection and training parts and the evaluation that set none (an arm config's own
            ``template`` wins for its stages); parts that set another are printed.
    """
    from aries_lit.pipeline.study_report import final_summary, load_results, write_report

    if not report_only:  # the spec is parsed here, once; the report needs only the result files
        fields = {"base_model": base_model, "arms": arms, "evaluation": evaluation, "template": template,
                  "run_dir": run_dir, "results_dir": results_dir, "compare": compare}  # fmt: skip
        runner = Study(
            StudySpec.from_config(fields), progress=progress, eval_stages=eval_stages,
            keep_checkpoints=keep_checkpoints, reuse_evaluations=reuse_evaluations, fit_process=fit_process,
        )  # fmt: skip
        runner.run(only_arms, only_seeds)
    path = write_report(results_dir, compare=compare, command=report_command)
    print(final_summary(load_results(results_dir), compare=compare))
    print(f"[aries-lit] study report: {path}")
    return str(path)


__all__ = [
    "BASE",
    "ArmSpec",
    "Study",
    "StudySpec",
    "collect_key",
    "eval_key",
    "find_recorded_evaluation",
    "seeded_stage",
    "stage_key",
    "study",
]
