"""Evaluation reports: JSON (config + metrics + every per-record result), a Markdown summary in
the layout of the ARIES tables (rows = checkpoints, Direct and SR side by side), PNG plots
(refinement curves, metric by checkpoint order) and AlpacaEval ``model_outputs.json`` files.

``results`` (as built by :func:`aries_lit.evaluation.evaluate.evaluate_checkpoints`)::

    {checkpoint name: {"path": str, "generation_seconds": float,
                       "tasks": {task label: {"metrics": {...}, "records": [...]}}}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aries_lit.evaluation.files import alpaca_model_outputs, sanitize, write_alpaca_outputs, write_json
from aries_lit.evaluation.kinds import ARENA_HARD_DISCLAIMER, JUDGE_DISCLAIMER, LOCAL_JUDGE_NOTE, kind_of

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
    """``(column header, cell)`` pairs of one task's metrics (its kind's, if it has its own)."""
    kind = kind_of(str(metrics.get("kind")), strict=False)
    own = kind.columns(metrics, label)
    if own is not None:
        return own
    cols: list[tuple[str, str]] = []
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
    if not cols or ("win_rate" not in metrics and kind.judged):  # judged, but no judge: lengths
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
    if not kind_of(str(metrics.get("kind")), strict=False).refines:  # no refinement turns
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
    lines = [
        f"## ARIES evaluation: Direct (turn 0) vs SR (turn {n_ref}, after {n_ref} self-refinements)",
        "",
        _table(header, rows),
        "",
    ]
    kinds = {task["kind"]: kind_of(task["kind"], strict=False) for task in config.get("tasks", [])}
    for task in config.get("tasks", []):
        gen = config.get("generators", {}).get(task["label"], {})
        lines.append(
            f"- **{task['label']}** ({task['kind']}, {task['num_prompts']} prompts, {gen.get('name')}, "
            f"temperature {gen.get('temperature')}, max_new_tokens {gen.get('max_new_tokens')}): "
            f"{kinds[task['kind']].what(task, config)}."
        )
    times = ", ".join(
        f"{name} {res['generation_seconds']:.0f} s"
        for name, res in results.items()
        if "generation_seconds" in res
    )
    if times:
        lines.append(f"- generation wall time of this run: {times}.")
    for name, kind in kinds.items():
        lines += kind.notes([t for t in config.get("tasks", []) if t["kind"] == name], config)
    for warning in config.get("warnings") or []:
        lines += ["", f"> **Warning:** {warning}."]
    curve_rows = []
    for name, res in results.items():
        for label, task in res["tasks"].items():
            kind = kind_of(str(task["metrics"].get("kind")), strict=False)
            lines += kind.section(name, label, task["metrics"], config)  # a kind's own section
            curve_rows += [
                [name, label, metric, *values] for metric, values in _curve_values(task["metrics"])
            ]
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
            else:
                kind = kind_of(str(task["metrics"]["kind"]), strict=False)
                for group, files in kind.write_outputs(task_dir, name, task["records"]).items():
                    paths.setdefault(group, {})[f"{name}/{label}"] = files
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
