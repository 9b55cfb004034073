"""``aries-lit evaluate``: Direct vs sequential self-refinement (SR) evaluation of checkpoints.

The protocol of ARIES (arXiv 2502.05605, Tables 1-3, Fig. 3a): every checkpoint answers every
prompt directly (turn 0), then refines its own previous answer ``N`` times with the refinement
template (turns 1..N). "Direct" is turn 0, "SR" is turn N, and the refinement curve is the score
at every turn. Generation reuses :mod:`aries_lit.generators` (``sequential_refinement`` by
default, any registered generator and backend by config) and writes to
``<out_dir>/<checkpoint>/<task>/``, so a killed evaluation rerun resumes where it stopped.

A task's kind (``verifiable``, ``ifeval``, ``pairwise``, ``open``, ``mt_bench``; inferred from its
prompt records or set with ``kind``) decides how it is generated, recorded, scored and reported:
one class per kind in :mod:`aries_lit.evaluation.kinds`, where a new kind is one registered class.
``arena_hard`` tasks also write Arena-Hard's ``model_answer`` files (:mod:`aries_lit.evaluation.suites`).

A local reward-model judge is **not** AlpacaEval's GPT-4 Turbo judge: its win rates are for
comparing checkpoints with each other, not with the leaderboard. The official numbers come
from running ``alpaca_eval --model_outputs <file>`` on the written outputs.

When ``torch.distributed`` is initialized, each rank generates a shard of the prompts (into
``<task>/shard-<rank>-of-<world>/``), statistics are reduced across ranks and rank 0 writes
the reports.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from aries_lit.core.registry import class_path_form
from aries_lit.evaluation.kinds import Generation, TaskRun
from aries_lit.evaluation.plan import EvaluationPlan, make_plan
from aries_lit.evaluation.score_cache import rm_config, score_pairs
from aries_lit.evaluation.suites import add_answer_fields, suite_of
from aries_lit.evaluation.tasks import (
    DEFAULT_TASKS,
    Task,
    checkpoint_names,
    generator_spec,
    model_path,
    parse_tasks,
)
from aries_lit.evaluation.turns import gather, reward_metrics, winrate_metrics

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TASKS",
    "Task",
    "checkpoint_names",
    "evaluate",
    "evaluate_checkpoints",
    "generator_spec",
    "parse_tasks",
]

Pairs = list[tuple[Any, str]]
Records = dict[tuple[str, str], list[dict[str, Any]]]


def evaluate_checkpoints(
    checkpoints: Sequence[str] | str,
    tasks: Sequence[str | Mapping[str, Any]] | None = None,
    out_dir: str | os.PathLike = "runs/eval",
    num_refinements: int = 3,
    generator: str | Mapping[str, Any] | None = None,
    reward_model: str | Mapping[str, Any] | None = None,
    judge: str | Mapping[str, Any] | None = None,
    max_new_tokens: int = 256,
    names: Sequence[str] | None = None,
    confidence: float = 0.95,
    ci: Literal["wilson", "normal"] = "wilson",
    lc_options: Mapping[str, Any] | None = None,
    tie_tolerance: float = 0.0,
    plots: bool = True,
    progress: bool = True,
    print_table: bool = False,
    checker: Literal["builtin", "math_verify"] = "builtin",
) -> dict[str, Any]:
    """Evaluate checkpoints Direct vs SR on tasks; write reports; return the metrics.

    Each checkpoint answers each task's prompts (turn 0, "Direct") and refines its answer
    ``num_refinements`` times (turn N, "SR"). Writes ``<out_dir>/report.json`` (config, metrics,
    every per-record result), ``report.md`` (the summary table), PNG plots under ``plots/`` and,
    for AlpacaEval, ``model_outputs_direct.json`` / ``model_outputs_sr.json`` in AlpacaEval's
    format. A rerun reuses finished generations and cached reward-model scores.

    Args:
        checkpoints: HF model folders or hub names, in report order (e.g. iteration order).
        tasks: prompt sets, names or prompt-source specs, e.g. ``[gsm8k, {class_path: arithmetic,
            init_args: {count: 300, seed: 1}}, {class_path: alpaca_eval, init_args: {limit: 805}},
            {class_path: file, init_args: {path: x.jsonl, answer_field: gold}, label: mine}]``;
            beside ``class_path``, keys ``label``, ``kind``, ``temperature``,
            ``max_new_tokens``, ``generator`` (overrides), ``reward_model`` (bool: score this
            task with the reward model) and ``model_name`` (the model in ``arena_hard`` /
            ``mt_bench`` answer files) configure the evaluation, the rest the prompt source.
            Default: the first 200 GSM8K test problems.
        out_dir: output root: ``<out_dir>/<checkpoint>/<task>/`` holds each generation; the
            reports go to ``<out_dir>``.
        num_refinements: refinement turns N (turns 0..N are generated, ``N + 1`` candidates;
            SR = turn N).
        generator: generator name or settings (default ``sequential_refinement``, greedy for
            tasks with answers, temperature 0.9 otherwise), e.g. ``{class_path: sequential_refinement,
            init_args: {backend: vllm, chunk_size: 256, template: paper, seed: 0, top_p: 1.0}}``.
        reward_model: reward model (HF folder or hub name, or reward-model selector arguments
            ``{model: ..., batch_size: ...}``) scoring every turn of tasks without gold answers
            (or tasks with ``reward_model: true``).
        judge: reward model judging AlpacaEval (pairwise) answers against the GPT-4 Turbo
            reference (default: reward_model). A local judge, not AlpacaEval's GPT-4 judge.
        max_new_tokens: generation budget per answer (a task or the generator may override it).
        names: checkpoint names for folders and reports (default: shortest unique path suffix).
        confidence: interval coverage.
        ci: accuracy interval: ``wilson`` or ``normal``.
        lc_options: length-controlled win rate options (``transform``: tanh|standardize,
            ``l2``, ``se_method``: sandwich|fisher|bootstrap, ``n_bootstrap``, ``seed``).
        tie_tolerance: judge score difference counted as a tie.
        plots: write PNG plots.
        progress: show progress bars.
        print_table: print the Markdown summary at the end.
        checker: answer checker for tasks with gold answers: ``builtin`` (default) or
            ``math_verify`` (Hugging Face math-verify; ``pip install math-verify``).

    Returns ``{"out_dir", "config", "checkpoints": {name: {"path", "tasks": {label: metrics}}},
    "reports": {...paths}, "markdown": str}``. Metrics per task: ``n``, ``kind``, ``length``, and
    by kind ``accuracy`` / ``reward`` / ``win_rate``, each with ``direct``, ``sr`` and ``curve``
    (one entry per turn: ``mean``, ``ci_low``, ``ci_high``, ``se``, ``n``; win rates as fractions).
    """
    from aries_lit.evaluation import report

    if isinstance(checkpoints, (str, os.PathLike)):
        checkpoints = [str(checkpoints)]
    checkpoints = [str(c) for c in checkpoints]
    lc_options = _check_options(checkpoints, num_refinements, ci, checker, lc_options)
    t_start = time.perf_counter()
    plan = make_plan(
        checkpoints=checkpoints,
        names=names,
        tasks=tasks,
        out=Path(out_dir).expanduser(),
        num_refinements=num_refinements,
        generator=generator,
        reward_model=reward_model,
        judge=judge if judge is not None else reward_model,
        max_new_tokens=max_new_tokens,
    )
    config = {
        **plan.config(),
        "confidence": confidence,
        "ci": ci,
        "lc_options": lc_options,
        "tie_tolerance": tie_tolerance,
        "checker": checker,
        "world_size": plan.world,
    }
    gen_seconds = _generate(plan, progress)
    records = _read_records(plan, checker)
    _score(plan, records, tie_tolerance)
    results = _results(plan, records, gen_seconds, confidence, ci, lc_options)
    config["seconds"] = time.perf_counter() - t_start
    markdown = report.markdown_summary(results, config)
    paths: dict[str, Any] = {}
    if plan.rank == 0:
        paths = report.write_reports(plan.out, results, config, markdown, plots=plots)
    if print_table and plan.rank == 0:
        print(markdown)
    return {
        "out_dir": str(plan.out),
        "config": config,
        "checkpoints": {
            name: {
                "path": res["path"],
                "tasks": {label: tr["metrics"] for label, tr in res["tasks"].items()},
            }
            for name, res in results.items()
        },
        "reports": paths,
        "markdown": markdown,
    }


def evaluate(checkpoints: list[str], **options: Any) -> None:
    """Direct vs sequential self-refinement evaluation (ARIES Tables 1-3, Fig. 3a): runs
    :func:`evaluate_checkpoints` and prints the Markdown summary at the end.

    Args:
        checkpoints: HF model folders or hub names, in report order (e.g. iteration order).
        options: the options of :func:`evaluate_checkpoints` but ``print_table``.
    """
    # The ``aries-lit evaluate`` command: jsonargparse resolves ``**options`` to the parameters of
    # evaluate_checkpoints (its types, defaults and help) from this call, less print_table.
    evaluate_checkpoints(checkpoints, print_table=True, **options)


# --- the steps of an evaluation -----------------------------------------------------------


def _check_options(
    checkpoints: list[str], num_refinements: int, ci: str, checker: str, lc_options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Fail on a bad option before anything runs; returns the length-controlled win rate options."""
    from aries_lit.answers.checking import validate_checker
    from aries_lit.evaluation.winrate import length_controlled_win_rate

    if not checkpoints:
        raise ValueError("no checkpoints to evaluate")
    if num_refinements < 0:
        raise ValueError(f"num_refinements must be >= 0, got {num_refinements}")
    if ci not in ("wilson", "normal"):
        raise ValueError(f"ci must be 'wilson' or 'normal', got '{ci}'")
    validate_checker(checker)
    lc_options = dict(lc_options or {})
    length_controlled_win_rate([1.0, 0.0], [2.0, 1.0], [1.0, 1.0], **lc_options)  # bad options fail now
    return lc_options


def _task_dir(plan: EvaluationPlan, name: str, task: Task) -> Path:
    """Where this rank generates a checkpoint's answers to a task (resumable)."""
    task_dir = plan.out / name / task.label
    return task_dir if plan.world == 1 else task_dir / f"shard-{plan.rank}-of-{plan.world}"


def _generate(plan: EvaluationPlan, progress: bool) -> dict[str, float]:
    """Generate every checkpoint's turns on this rank's shard of every task (resuming what is done),
    with one shared, lazily built backend per checkpoint and backend spec; seconds per checkpoint."""
    from aries_lit.core.distributed import backend_for_rank
    from aries_lit.evaluation.backend import SharedBackend
    from aries_lit.generators import GENERATORS

    seconds: dict[str, float] = {}
    for name, ckpt in plan.checkpoints.items():
        model = model_path(ckpt)
        backends: dict[str, SharedBackend] = {}
        t0 = time.perf_counter()
        try:
            for task in plan.tasks:
                spec = dict(plan.generators[task.label])
                backend_spec = backend_for_rank(spec.pop("backend", "transformers"), plan.world)
                key = json.dumps(backend_spec, sort_keys=True, default=str)
                if key not in backends:
                    backends[key] = SharedBackend(backend_spec, model)
                gen = GENERATORS.build(class_path_form(spec), backend=backends[key])
                gen_dir = _task_dir(plan, name, task)
                prompts = plan.shard(task)
                log.info("evaluate: %s on %s (%d prompts) -> %s", name, task.label, len(prompts), gen_dir)
                plan.kinds[task.label].generate(
                    Generation(gen, spec, backends[key], prompts, model, gen_dir, progress)
                )
        finally:
            for backend in backends.values():
                backend.close()
        seconds[name] = time.perf_counter() - t0
    return seconds


def _run(plan: EvaluationPlan, name: str, task: Task, **settings: Any) -> TaskRun:
    """A (checkpoint, task) as its kind sees it."""
    return TaskRun(
        label=task.label,
        num_turns=plan.num_turns,
        generator=plan.generators[task.label],
        out=plan.out / name / task.label,
        rank=plan.rank,
        **settings,
    )


def _read_records(plan: EvaluationPlan, checker: str) -> Records:
    """The per-record results of every (checkpoint, task) on this rank, read from the generations."""
    records: Records = {}
    for name in plan.checkpoints:
        for task in plan.tasks:
            prompts = plan.shard(task)
            run = _run(plan, name, task, checker=checker)
            recs = plan.kinds[task.label].read_records(_task_dir(plan, name, task), prompts, run)
            add_answer_fields(suite_of(task.source), recs, prompts)  # what a suite's answer files need
            records[(name, task.label)] = recs
    return records


def _score(plan: EvaluationPlan, records: Records, tie_tolerance: float) -> None:
    """Add the reward model's score (``reward``) to every turn of the tasks it scores, and the
    judge's (``judge_score``, ``win`` against the reference) to every turn of the pairwise tasks.

    Each reward model is loaded at most once, to score every pair not in its cache yet; the
    scores are then read back from the cache per task and checkpoint."""

    def candidate_pairs(task: Task, name: str) -> Pairs:
        recs = records[(name, task.label)]
        return [(p["prompt"], t["text"]) for p, r in zip(plan.shard(task), recs) for t in r["turns"]]

    def reference_pairs(task: Task) -> Pairs:
        return [(p["prompt"], p["reference_output"]) for p in plan.shard(task)]

    rm_tasks = [t for t in plan.tasks if plan.wants_rm(t)]
    judge_tasks = [t for t in plan.tasks if plan.judged(t)]
    jobs: list[tuple[Any, Pairs]] = []
    if rm_tasks:
        pairs = [x for t in rm_tasks for n in plan.checkpoints for x in candidate_pairs(t, n)]
        jobs.append((plan.reward_model, pairs))
    if judge_tasks:
        pairs = [x for t in judge_tasks for x in reference_pairs(t)]
        pairs += [x for t in judge_tasks for n in plan.checkpoints for x in candidate_pairs(t, n)]
        jobs.append((plan.judge, pairs))
    for spec, pairs in jobs:  # one model load per reward model; everything below reads the cache
        score_pairs(spec, pairs, plan.out, plan.rank)
    for task in rm_tasks:
        for name in plan.checkpoints:
            scores = iter(score_pairs(plan.reward_model, candidate_pairs(task, name), plan.out, plan.rank))
            for r in records[(name, task.label)]:
                for turn in r["turns"]:
                    turn["reward"] = next(scores)
    for task in judge_tasks:
        ref_scores = score_pairs(plan.judge, reference_pairs(task), plan.out, plan.rank)
        for name in plan.checkpoints:
            scores = iter(score_pairs(plan.judge, candidate_pairs(task, name), plan.out, plan.rank))
            for r, ref in zip(records[(name, task.label)], ref_scores):
                r["reference_judge_score"] = ref
                for turn in r["turns"]:
                    turn["judge_score"] = next(scores)
                    diff = turn["judge_score"] - ref
                    turn["win"] = 0.5 if abs(diff) <= tie_tolerance else float(diff > 0)


def _results(
    plan: EvaluationPlan,
    records: Records,
    gen_seconds: Mapping[str, float],
    confidence: float,
    ci: str,
    lc_options: Mapping[str, Any],
) -> dict[str, Any]:
    """Metrics and all ranks' records per checkpoint and task: statistics reduced over ranks, win
    rates on the gathered records."""
    results: dict[str, Any] = {}
    for name, ckpt in plan.checkpoints.items():
        task_results = {}
        for task in plan.tasks:
            recs = records[(name, task.label)]
            all_recs = gather(recs, plan.world)
            run = _run(plan, name, task, confidence=confidence, ci=ci)
            metrics = plan.kinds[task.label].metrics(recs, all_recs, run)
            if plan.wants_rm(task):
                metrics["reward"] = reward_metrics(recs, plan.num_turns, confidence)
            if plan.judged(task):
                metrics["win_rate"] = winrate_metrics(all_recs, plan.num_turns, lc_options, confidence)
                metrics["judge"] = str(rm_config(plan.judge)["model"])
            metrics["generation_dir"] = str(plan.out / name / task.label)
            if suite_of(task.source):
                metrics["answer_format"] = suite_of(task.source)
                metrics["model_name"] = (
                    name if not task.model_name
                    else task.model_name if len(plan.checkpoints) == 1
                    else f"{task.model_name}-{name}"
                )  # fmt: skip
            task_results[task.label] = {"metrics": metrics, "records": all_recs}
        results[name] = {
            "path": ckpt,
            "data_selected_by": plan.selected_by[name],
            "generation_seconds": gen_seconds[name],
            "tasks": task_results,
        }
    return results
