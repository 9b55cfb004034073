"""Evaluation reports: JSON (config + metrics + every per-record result), a Markdown summary in
the layout of the ARIES tables (rows = checkpoints, Direct and SR side by side), PNG plots
(refinement curves, metric by checkpoint order) and AlpacaEval ``model_outputs.json`` files.

``results`` (as built by :func:`aries_lit.evaluation.evaluate.evaluate_checkpoints`)::

    {checkpoint name: {"path": str, "generation_seconds": float,
                       "tasks": {task label: {"metrics": {...}, "records": [...]}}}}
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aries_lit.evaluation.ifeval import ifeval_markdown
from aries_lit.io import write_json_atomic

__all__ = [
    "ARENA_HARD_DISCLAIMER",
    "JUDGE_DISCLAIMER",
    "LOCAL_JUDGE_NOTE",
    "alpaca_model_outputs",
    "markdown_summary",
    "plot_by_checkpoint",
    "plot_refinement_curves",
    "sanitize",
    "write_alpaca_outputs",
    "write_json",
    "write_reports",
]

JUDGE_DISCLAIMER = (
    "Win rates here come from a local reward-model judge scoring the model's and the GPT-4 Turbo "
    "reference answers; they are NOT AlpacaEval 2's official GPT-4 Turbo judge and are not comparable "
    "to leaderboard numbers. For official numbers run `alpaca_eval --model_outputs <file>` on the "
    "written model_outputs files."
)
LOCAL_JUDGE_NOTE = (
    "Win rates here come from a local reward-model judge scoring the model's answers against the "
    "task's reference answers: they measure what that reward model prefers (its held-out accuracy "
    "bounds how much they mean), for comparing checkpoints with each other."
)
ARENA_HARD_DISCLAIMER = (
    "Arena-Hard win rates here come from a local reward-model judge scoring the model's and the "
    "baseline model's answers (joined by question id); they are NOT Arena-Hard-Auto's official GPT-4 "
    "judge and are not comparable to its leaderboard. For official numbers run Arena-Hard-Auto's "
    "gen_judgment.py and show_result.py on the written model_answer files."
)


def _source_name(task: dict[str, Any]) -> str | None:
    """The prompt-source name of a task in the report's config (``alpaca_eval``, ``file``, ...)."""
    source = task.get("source")
    if isinstance(source, str) or source is None:
        return source
    name = source.get("name") or source.get("class_path")
    return "alpaca_eval" if name in ("alpaca_eval", "aries_lit.prompts.sources.AlpacaEval") else name


def sanitize(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become ``None``, numpy scalars/arrays become Python values."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy
        return sanitize(obj.tolist())
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)  # paths, backend instances in a config, ...


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``sanitize(obj)`` as strict JSON, atomically (see :func:`aries_lit.io.write_json_atomic`)."""
    return write_json_atomic(
        path, sanitize(obj), indent=indent, trailing_newline=True, ensure_ascii=False, allow_nan=False
    )


# --- AlpacaEval -----------------------------------------------------------------------------


def alpaca_model_outputs(
    records: Sequence[Mapping[str, Any]], generator: str, turn: int
) -> list[dict[str, str]]:
    """AlpacaEval's ``model_outputs.json`` rows: ``{"instruction", "output", "generator", "dataset"}``."""
    return [
        {
            "instruction": str(r["prompt"]),
            "output": str(r["turns"][turn]["text"]),
            "generator": generator,
            "dataset": str(r.get("dataset") or "alpaca_eval"),
        }
        for r in records
    ]


def write_alpaca_outputs(
    task_dir: Path, checkpoint: str, records: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """``model_outputs_direct.json`` (turn 0) and ``model_outputs_sr.json`` (last turn) in ``task_dir``."""
    paths = {}
    for label, turn in (("direct", 0), ("sr", -1)):
        rows = alpaca_model_outputs(records, f"{checkpoint}-{label}", turn)
        paths[label] = str(write_json(task_dir / f"model_outputs_{label}.json", rows))
    return paths


# --- Markdown -------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def _acc_cell(stat: Mapping[str, Any]) -> str:
    return f"{_pct(stat['mean'])} [{_pct(stat['ci_low'])}, {_pct(stat['ci_high'])}]"


def _pm(value: float, se: float, scale: float = 100.0, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    se_text = f"{scale * se:.{digits}f}" if se is not None and math.isfinite(se) else "n/a"
    return f"{scale * value:.{digits}f} ±{se_text}"


def _columns(metrics: Mapping[str, Any], label: str) -> list[tuple[str, str]]:
    """``(column header, cell)`` pairs of one task's metrics."""
    cols: list[tuple[str, str]] = []
    if metrics.get("kind") == "mt_bench":  # Direct answers to two turns: their lengths
        return [(f"{label} len turn {t['turn']}", f"{t['mean']:.0f}") for t in metrics["length"]["turns"]]
    if "accuracy" in metrics:
        acc = metrics["accuracy"]
        delta = acc["delta"]["mean"]
        cols += [
            (f"{label} Direct", _acc_cell(acc["direct"])),
            (f"{label} SR", _acc_cell(acc["sr"])),
            (f"{label} Δ", "n/a" if not math.isfinite(delta) else f"{100 * delta:+.1f}"),
        ]
    if "win_rate" in metrics:
        wr = metrics["win_rate"]
        cols += [
            (f"{label} LC Direct", _pm(wr["direct"]["lc_win_rate"], wr["direct"]["lc_se"])),
            (f"{label} WR Direct", _pm(wr["direct"]["win_rate"], wr["direct"]["se"])),
            (f"{label} LC SR", _pm(wr["sr"]["lc_win_rate"], wr["sr"]["lc_se"])),
            (f"{label} WR SR", _pm(wr["sr"]["win_rate"], wr["sr"]["se"])),
        ]
    if "reward" in metrics:
        rw = metrics["reward"]
        cols += [
            (f"{label} RM Direct", _pm(rw["direct"]["mean"], rw["direct"]["se"], 1.0, 3)),
            (f"{label} RM SR", _pm(rw["sr"]["mean"], rw["sr"]["se"], 1.0, 3)),
        ]
    if not cols or ("win_rate" not in metrics and metrics.get("kind") == "pairwise"):
        ln = metrics["length"]
        cols += [
            (f"{label} len Direct", f"{ln['direct']['mean']:.0f}"),
            (f"{label} len SR", f"{ln['sr']['mean']:.0f}"),
        ]
    return cols


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _curve_values(metrics: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    if metrics.get("kind") == "mt_bench":  # no refinement turns
        return out
    if "accuracy" in metrics:
        out.append(("accuracy %", [_pct(c["mean"]) for c in metrics["accuracy"]["curve"]]))
    if "win_rate" in metrics:
        out.append(("LC win rate %", [_pct(c["lc_win_rate"]) for c in metrics["win_rate"]["curve"]]))
        out.append(("win rate %", [_pct(c["win_rate"]) for c in metrics["win_rate"]["curve"]]))
    if "reward" in metrics:
        out.append(("RM score", [f"{c['mean']:.3f}" for c in metrics["reward"]["curve"]]))
    out.append(("length (chars)", [f"{c['mean']:.0f}" for c in metrics["length"]["curve"]]))
    return out


def markdown_summary(results: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """The summary: one row per checkpoint, Direct and SR side by side per task; then the curves."""
    n_ref = config.get("num_refinements")
    header: list[str] = ["checkpoint"]
    rows: list[list[str]] = []
    for name, res in results.items():
        row = [name]
        for label, task in res["tasks"].items():
            cols = _columns(task["metrics"], label)
            if not rows:
                header += [h for h, _ in cols]
            row += [c for _, c in cols]
        rows.append(row)
    conf = int(round(100 * float(config.get("confidence", 0.95))))
    lines = [
        f"## ARIES evaluation: Direct (turn 0) vs SR (turn {n_ref}, after {n_ref} self-refinements)",
        "",
        _table(header, rows),
        "",
    ]
    for task in config.get("tasks", []):
        kind, label = task["kind"], task["label"]
        gen = config.get("generators", {}).get(label, {})
        if kind == "verifiable":
            what = f"accuracy % with {conf}% {config.get('ci', 'wilson')} interval; Δ = SR - Direct (points)"
        elif kind == "ifeval":
            oracle = gen.get("name") == "oracle_feedback"
            what = (
                f"IFEval prompt-level strict accuracy % with {conf}% interval; Δ = last turn - Direct"
                + ("; refinements get **oracle feedback** (the checkers' verdicts): not SR" if oracle else "")
            )
        elif kind == "pairwise":
            versus = "the baseline's answers" if task.get("suite") == "arena_hard" else "the reference"
            what = (
                f"LC = length-controlled win rate %, WR = win rate % vs {versus} (±1 standard error)"
                if config.get("judge")
                else "no judge configured: average answer length in characters"
            )
        elif kind == "mt_bench":
            what = (
                "Direct answers to both turns, written as FastChat's model_answer/<model>.jsonl "
                "(judge them with FastChat's gen_judgment.py); average answer length in characters per turn"
            )
        else:
            what = (
                "mean reward-model score ±1 standard error" if config.get("reward_model") else "answer length"
            )
        lines.append(
            f"- **{label}** ({kind}, {task['num_prompts']} prompts, {gen.get('name')}, "
            f"temperature {gen.get('temperature')}, max_new_tokens {gen.get('max_new_tokens')}): {what}."
        )
    times = ", ".join(
        f"{name} {res['generation_seconds']:.0f} s"
        for name, res in results.items()
        if "generation_seconds" in res
    )
    if times:
        lines.append(f"- generation wall time of this run: {times}.")
    pairwise = [t for t in config.get("tasks", []) if t["kind"] == "pairwise"]
    if config.get("judge") and pairwise:
        judge = config.get("judge_path") or config["judge"]
        if any(_source_name(t) == "alpaca_eval" for t in pairwise):
            lines += ["", f"> **Judge:** `{judge}`. {JUDGE_DISCLAIMER}"]
        if any(t.get("suite") != "arena_hard" and _source_name(t) != "alpaca_eval" for t in pairwise):
            lines += ["", f"> **Judge:** `{judge}`. {LOCAL_JUDGE_NOTE}"]
        if any(t.get("suite") == "arena_hard" for t in pairwise):
            lines += ["", f"> **Judge (Arena-Hard):** `{judge}`. {ARENA_HARD_DISCLAIMER}"]
    for warning in config.get("warnings") or []:
        lines += ["", f"> **Warning:** {warning}."]
    curve_rows = []
    for name, res in results.items():
        for label, task in res["tasks"].items():
            for metric, values in _curve_values(task["metrics"]):
                curve_rows.append([name, label, metric, *values])
    lines += ifeval_markdown(results, float(config.get("confidence", 0.95)))
    if curve_rows:
        turns = max(len(r) - 3 for r in curve_rows)
        lines += ["", "### Refinement curves (turn 0 = Direct)", ""]
        lines.append(
            _table(["checkpoint", "task", "metric", *[f"turn {t}" for t in range(turns)]], curve_rows)
        )
    return "\n".join(lines) + "\n"


# --- plots ----------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global backend, Agg canvas on save

    return Figure(figsize=(width, height), layout="constrained")


def _series(metrics: Mapping[str, Any]) -> list[tuple[str, str, list[float], list[float], list[float]]]:
    """``(key, y label, mean, low, high)`` per plottable metric, in display units."""
    series = []
    if "accuracy" in metrics:
        c = metrics["accuracy"]["curve"]
        series.append(
            (
                "accuracy",
                "accuracy (%)",
                [100 * x["mean"] for x in c],
                [100 * x["ci_low"] for x in c],
                [100 * x["ci_high"] for x in c],
            )
        )
    if "win_rate" in metrics:
        c = metrics["win_rate"]["curve"]
        series.append(
            (
                "lc_win_rate",
                "LC win rate vs reference (%)",
                [100 * x["lc_win_rate"] for x in c],
                [100 * x["lc_ci_low"] for x in c],
                [100 * x["lc_ci_high"] for x in c],
            )
        )
    if "reward" in metrics:
        c = metrics["reward"]["curve"]
        series.append(
            (
                "reward",
                "reward-model score",
                [x["mean"] for x in c],
                [x["ci_low"] for x in c],
                [x["ci_high"] for x in c],
            )
        )
    return series


def plot_refinement_curves(results: Mapping[str, Any], plots_dir: Path) -> list[Path]:
    """One PNG per (task, metric): the score at each turn, one line and confidence band per checkpoint."""
    paths = []
    labels = list(next(iter(results.values()))["tasks"]) if results else []
    for label in labels:
        per_metric: dict[str, list[tuple[str, Any]]] = {}
        for name, res in results.items():
            for s in _series(res["tasks"][label]["metrics"]):
                per_metric.setdefault(s[0], []).append((name, s))
        for key, entries in per_metric.items():
            fig = _figure(6.0, 4.0)
            ax = fig.subplots()
            for name, (_, ylabel, mean, low, high) in entries:
                turns = list(range(len(mean)))
                (line,) = ax.plot(turns, mean, marker="o", label=name)
                ax.fill_between(turns, low, high, color=line.get_color(), alpha=0.15)
                ax.set_ylabel(ylabel)
            ax.set_xlabel("refinement turn (0 = Direct)")
            ax.set_xticks(list(range(len(entries[0][1][2]))))
            ax.set_title(f"{label}: refinement curve")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
            path = plots_dir / f"refinement_{label}_{key}.png"
            fig.savefig(path, dpi=120)
            paths.append(path)
    return paths


def plot_by_checkpoint(results: Mapping[str, Any], plots_dir: Path) -> Path | None:
    """Direct and SR of each task's metrics across checkpoints, in the given (iteration) order."""
    names = list(results)
    panels: list[tuple[str, str, list[tuple[float, float, float]], list[tuple[float, float, float]]]] = []
    labels = list(results[names[0]]["tasks"]) if names else []
    for label in labels:
        keys = [s[0] for s in _series(results[names[0]]["tasks"][label]["metrics"])]
        for key in keys:
            direct, sr, ylabel = [], [], ""
            for name in names:
                for s in _series(results[name]["tasks"][label]["metrics"]):
                    if s[0] == key:
                        ylabel = s[1]
                        direct.append((s[2][0], s[3][0], s[4][0]))
                        sr.append((s[2][-1], s[3][-1], s[4][-1]))
            panels.append((f"{label}", ylabel, direct, sr))
    if not panels:
        return None
    fig = _figure(max(4.5, 1.2 * len(names) + 2.5) * min(len(panels), 3), 4.0 * math.ceil(len(panels) / 3))
    axes = fig.subplots(math.ceil(len(panels) / 3), min(len(panels), 3), squeeze=False).reshape(-1)
    x = list(range(len(names)))
    for ax, (title, ylabel, direct, sr) in zip(axes, panels):
        for series, label, shift in ((direct, "Direct", -0.05), (sr, "SR", 0.05)):
            mean = [m for m, _, _ in series]
            err = [[max(m - lo, 0.0) for m, lo, _ in series], [max(hi - m, 0.0) for m, _, hi in series]]
            ax.errorbar([i + shift for i in x], mean, yerr=err, marker="o", capsize=3, label=label)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize="small")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    path = plots_dir / "by_checkpoint.png"
    fig.savefig(path, dpi=120)
    return path


# --- everything -----------------------------------------------------------------------------


def write_reports(
    out_dir: Path,
    results: Mapping[str, Any],
    config: Mapping[str, Any],
    markdown: str,
    plots: bool = True,
) -> dict[str, Any]:
    """Write per-task ``results.json`` (+ AlpacaEval outputs or a suite's answer files), ``report.json``,
    ``report.md`` and plots."""
    from aries_lit.evaluation.suites import write_answer_files

    out_dir = Path(out_dir)

    paths: dict[str, Any] = {"tasks": {}, "alpaca_eval": {}, "answer_files": {}, "plots": []}
    for name, res in results.items():
        for label, task in res["tasks"].items():
            task_dir = out_dir / name / label
            payload = {"checkpoint": name, "path": res["path"], "task": label, **task}
            paths["tasks"][f"{name}/{label}"] = str(write_json(task_dir / "results.json", payload))
            suite = task["metrics"].get("answer_format")
            if suite:
                paths["answer_files"][f"{name}/{label}"] = write_answer_files(
                    task_dir, suite, task["metrics"]["model_name"], task["records"]
                )
            elif task["metrics"]["kind"] == "pairwise":
                paths["alpaca_eval"][f"{name}/{label}"] = write_alpaca_outputs(
                    task_dir, name, task["records"]
                )
    paths["json"] = str(write_json(out_dir / "report.json", {"config": config, "results": results}))
    md = out_dir / "report.md"
    md.write_text(markdown)
    paths["markdown"] = str(md)
    if plots:
        plots_dir = out_dir / "plots"
        plots_dir.mkdir(parents=True, exist_ok=True)
        paths["plots"] = [str(p) for p in plot_refinement_curves(results, plots_dir)]
        by_ckpt = plot_by_checkpoint(results, plots_dir)
        if by_ckpt is not None:
            paths["plots"].append(str(by_ckpt))
    return paths
