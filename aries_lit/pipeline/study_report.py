"""The study report, rebuilt from the result files alone (``<results_dir>/<arm>/seed<k>/<NN>-<stage>.json``).

``aries-lit study --config C --report_only true`` (or :func:`write_report`) writes
``<results_dir>/report.md`` and ``refinement_curves.png``. Every figure in them is computed
here from the result files; nothing is typed in.

Statistics. For one arm, stage and turn, each test item gets ``p_i`` = its correctness averaged
over the arm's seeds (seeds are pooled per item, so items stay the unit of sampling). The
accuracy is ``mean(p_i)`` with a 95% Wilson interval over items (``sum(p_i)`` successes in ``n``
items: the usual one for one seed, slightly conservative for pooled seeds); the spread over
seeds is the range of the per-seed accuracies. The paired comparison of two arms uses
``d_i = p_i(treatment) - p_i(baseline)`` on the items both have: its mean, a 95% normal
interval, and a two-sided sign-flip permutation p-value (10,000 draws, seed 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aries_lit.pipeline.study_compare import ArmComparison, by_seed, final_pooled
from aries_lit.pipeline.study_diagnostics import compute_section, instructions_section, training_section
from aries_lit.pipeline.study_format import pct as _pct
from aries_lit.pipeline.study_format import table as _table
from aries_lit.pipeline.study_results import RESULT_FILES, StageSeeds, StudyResults, load_results, read_result
from aries_lit.pipeline.study_stats import Accuracy, Difference, accuracy_summary, paired_difference

REPORT = "report.md"
CURVES_PNG = "refinement_curves.png"


def _cell(s: Accuracy | Difference) -> str:
    return f"{_pct(s.mean)} [{_pct(s.ci_low)}, {_pct(s.ci_high)}]"


def _spread(s: Accuracy) -> str:
    seeds = s.seeds
    if len(seeds) < 2:
        return "1 seed"
    return f"{len(seeds)} seeds, {_pct(min(seeds))}-{_pct(max(seeds))}"


def _plot_curves(path: Path, curves: dict[str, list[float]], task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, curve in curves.items():
        ax.plot(range(len(curve)), [100 * c for c in curve], marker="o", label=name)
    ax.set_xlabel("refinement turn (0 = direct answer)")
    ax.set_ylabel(f"{task} accuracy (%)")
    ax.set_title("Refinement curves of each arm's final model (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _targets(finals: dict[str, StageSeeds], task: str, compare: dict[str, Any]) -> list[list[str]]:
    """Rows ``[target, measured, by seed, met]`` for the paper's shape (Tables 1-4, Fig. 3a).

    A target is met when the seed-pooled difference meets it *and* every seed both arms ran
    points the same way: the items' interval treats the seeds as fixed, so it cannot show that
    one seed's result reverses another's. Two arms are compared on the seeds both ran. An
    ablation is "below" only when the interval excludes 0 as well; a difference in the right
    direction whose interval includes 0 is reported as not shown, not as met."""

    def fmt(d: Difference) -> str:
        return f"{_cell(d)}, {d.n} items"

    def row(
        target: str,
        d: Difference,
        seeds: list[tuple[int, float]],
        pooled_met: bool,
        strict: bool,
        excludes_zero: bool = True,
    ) -> list[str]:
        agree = all(x > 0 or (not strict and x >= 0) for _, x in seeds)
        met = "yes" if pooled_met and agree else ("no (seeds disagree)" if pooled_met else "no")
        if met == "yes" and not excludes_zero:
            met = "not shown (right direction, interval includes 0)"
        by_seed = ", ".join(f"{seed}: {x * 100:+.1f}" for seed, x in seeds)
        return [target, fmt(d), by_seed, met]

    treatment = compare["treatment"]
    t_rec = finals[treatment]
    rows = []
    d = paired_difference(final_pooled(t_rec, task), final_pooled(t_rec, task, 0))
    seeds = by_seed(t_rec, t_rec, task, 0)
    rows.append(row(f"{treatment}: SR >= Direct after the last stage", d, seeds, d.mean >= 0, strict=False))
    baseline = compare.get("baseline")
    if baseline in finals:
        c = ArmComparison.of(finals, treatment, baseline)
        target = f"{treatment} SR > {baseline} SR, interval excludes 0"
        if c.ready:
            d = c.difference(task)
            rows.append(row(target, d, c.by_seed(task), d.mean > 0 and d.ci_low > 0, strict=True))
        else:
            rows.append([target, f"not yet: {c.pending}", "-", "pending"])
    for ablation in compare.get("ablations") or []:
        if ablation in finals:
            c = ArmComparison.of(finals, treatment, ablation)
            target = f"{ablation} SR below {treatment} SR"
            if c.ready:
                d = c.difference(task)
                met, excludes_zero = d.mean > 0, d.ci_low > 0
                rows.append(row(target, d, c.by_seed(task), met, strict=True, excludes_zero=excludes_zero))
            else:
                rows.append([target, f"not yet: {c.pending}", "-", "pending"])
    return rows


def final_summary(results: StudyResults, compare: dict[str, Any] | None = None) -> str:
    """A short plain-text table for the console: per task, the base model and each arm's last
    evaluated stage (Direct, SR, SR - Direct; seeds pooled per item) and, with ``compare``, the
    paired treatment SR - baseline SR on the same items."""
    lines: list[str] = []
    for task in results.scored_tasks:
        rows = []
        finals = results.finals(task)
        for arm, final in finals.items():
            stages = results.arms[arm]
            if not rows and 0 in stages and final.index != 0:
                rows.append(_summary_row("base model", stages[0], task))
            rows.append(_summary_row(arm, final, task))
        header = ["arm", "stage", "seeds", "Direct %", "SR %", "SR - Direct"]
        widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
        lines += ["", f"{task}: accuracy of each arm's last stage on the test items (intervals: report)"]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
        t_arm, b_arm = (compare or {}).get("treatment"), (compare or {}).get("baseline")
        if t_arm in finals and b_arm in finals:
            c = ArmComparison.of(finals, t_arm, b_arm)
            if c.ready:
                d = c.difference(task)
                lines.append(
                    f"{t_arm} SR - {b_arm} SR: {_pct(d.mean)} points, 95% interval "
                    f"[{_pct(d.ci_low)}, {_pct(d.ci_high)}], {_p_text(d.p_value)} "
                    f"(sign-flip), {d.n} paired items"
                )
            else:
                lines.append(f"{t_arm} vs {b_arm}: not compared yet ({c.pending})")
    return "\n".join(lines).lstrip("\n")


def _p_text(p: float) -> str:
    """``p = 0.034``, or ``p < 0.001`` below what three decimals show."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _direct_sr(stage: StageSeeds, task: str) -> tuple[Accuracy, Accuracy, Difference]:
    """Direct and SR accuracy of one stage, and SR - Direct item by item."""
    last = stage.last_turn(task)
    delta = paired_difference(final_pooled(stage, task, last), final_pooled(stage, task, 0))
    return accuracy_summary(stage, task, 0), accuracy_summary(stage, task, last), delta


def _summary_row(label: str, stage: StageSeeds, task: str) -> list[str]:
    direct, sr, delta = _direct_sr(stage, task)
    return [label, stage.stage, str(len(stage.results)), _pct(direct.mean), _pct(sr.mean),
            f"{'+' if delta.mean >= 0 else ''}{_pct(delta.mean)}"]  # fmt: skip


def _header(command: str | None) -> list[str]:
    lines = ["# ARIES study report", ""]
    lines.append(
        "Generated by `aries_lit.pipeline.study_report` from the result files beside this report; "
        "accuracy in %, 95% intervals over test items (seeds pooled per item), spread = range of "
        "the per-seed accuracies."
    )
    if command:
        lines += [
            "",
            f"Run or resume the study: `{command}` (add `--run_dir DIR` for a run folder outside the "
            "repository, `--only_arms [ARM] --only_seeds [SEED]` for one piece). Rebuild this report "
            f"from the result files alone: `{command} --report_only true`.",
        ]
    return lines


def _stages_section(results: StudyResults, task: str) -> list[str]:
    """Direct and SR of every arm's every stage."""
    rows = []
    for arm, stages in results.arms.items():
        for _, stage in sorted(stages.items()):
            if not stage.has(task):
                continue
            direct, sr, delta = _direct_sr(stage, task)
            rows.append([arm, stage.label, _cell(direct), _cell(sr), _cell(delta), _spread(sr)])
    header = ["arm", "stage", "Direct", "SR", "SR - Direct", "SR spread over seeds"]
    return ["", f"## {task}: Direct and SR by arm and stage", "", _table(header, rows)]


def _curves_section(finals: dict[str, StageSeeds], task: str, plot_path: Path | None) -> list[str]:
    lines = ["", f"### {task}: refinement curve of each arm's final model", ""]
    curves = {}
    rows = []
    for arm, stage in finals.items():
        curve = [accuracy_summary(stage, task, t).mean for t in range(stage.num_turns(task))]
        curves[f"{arm} ({stage.stage})"] = curve
        rows.append([arm, stage.stage, *[_pct(c) for c in curve]])
    if rows:
        width = max(len(r) for r in rows) - 2
        lines.append(_table(["arm", "final stage", *[f"turn {t}" for t in range(width)]], rows))
    if plot_path is not None and curves:
        _plot_curves(plot_path, curves, task)
        lines += ["", f"![refinement curves]({plot_path.name})"]
    return lines


def _paired_section(c: ArmComparison, task: str) -> list[str]:
    """The treatment's final model against the baseline's, item by item (SR and Direct)."""
    lines = ["", f"### {task}: paired comparison of the final models", ""]
    if not c.ready:
        return [*lines, f"Not compared yet ({c.pending})."]
    rows = []
    for label, turn in (("SR", None), ("Direct", 0)):
        d = c.difference(task, turn, turn)
        rows.append(
            [f"{c.treatment_arm} {label} - {c.other_arm} {label}", str(d.n), _pct(d.mean),
             f"[{_pct(d.ci_low)}, {_pct(d.ci_high)}]", f"{d.p_value:.4f}"]
        )  # fmt: skip
    lines.append(
        "Per item, correctness is averaged over the seeds both arms ran; the difference is "
        "taken item by item (same test items)."
    )
    header = ["difference", "items", "mean (points)", "95% interval", "p (sign-flip)"]
    return [*lines, "", _table(header, rows)]


def _targets_section(finals: dict[str, StageSeeds], task: str, compare: dict[str, Any]) -> list[str]:
    lines = ["", f"### {task}: the paper's targets", ""]
    lines.append(
        "Arms are compared on the seeds both ran. Met: the seed-pooled difference meets the "
        "target and every such seed points the same way (by seed: the paired difference of "
        "that seed alone, in points); an ablation is below ARIES only when the interval "
        "excludes 0 too."
    )
    header = ["target", "measured (points, 95% interval)", "by seed", "met"]
    return [*lines, "", _table(header, _targets(finals, task, compare))]


def _yield_section(results: StudyResults) -> list[str]:
    rows = []
    for r in results.results:
        sel = r.selection
        if not sel:
            continue
        skipped = ", ".join(
            f"{k.split('/', 1)[1]} {v}" for k, v in sorted(sel.items()) if k.startswith("skipped/") and v
        )
        audit = sel.get("audit") or {}
        chosen = audit.get("chosen") or {}
        quality = ", ".join(
            f"{k.removesuffix('_share')} {_pct(v)}"
            for k, v in chosen.items()
            if k.endswith("_share") and isinstance(v, (int, float))
        )
        groups_n = sel.get("groups", 0)
        rows.append(
            [r.arm, str(r.seed), r.stage, str(groups_n), str(sel.get("pairs", 0)),
             _pct(sel.get("pairs", 0) / groups_n) if groups_n else "n/a", skipped or "-", quality or "-"]
        )  # fmt: skip
    header = ["arm", "seed", "stage", "prompts", "pairs", "yield %", "skipped", "chosen answers (%)"]
    body = _table(header, rows) if rows else "No collection stage has finished yet."
    return ["", "## Pair yield and quality by collection stage", "", body]


def _scoring_section(results: StudyResults) -> list[str]:
    rows = []
    for r in results.results:
        scoring = r.selection.get("scoring")
        if not scoring:
            continue
        selector = str(r.selection.get("selector", "?")).split("(", 1)[0]
        rows.append(
            [r.arm, str(r.seed), r.stage, selector, str(scoring["candidates"]),
             str(scoring.get("cache_hits", 0)), f"{scoring['seconds']:.1f}",
             f"{scoring['candidates_per_s']:.1f}", f"{scoring['pairs_per_s']:.2f}"]
        )  # fmt: skip
    if not rows:
        return []
    lines = ["", "## Selector scoring cost", ""]
    lines.append(
        "Seconds spent scoring candidates in selection (the reward model's forward passes, the "
        "verifier's answer checks); cache hits are identical conversations scored once."
    )
    header = ["arm", "seed", "stage", "selector", "candidates", "cache hits", "seconds", "candidates/s",
              "pairs/s"]  # fmt: skip
    return [*lines, "", _table(header, rows)]


def _timings_section(results: StudyResults) -> list[str]:
    lines = ["", "## Stage timings (seconds, this run's last attempt of each stage)", ""]
    rows, seen, total = [], set(), 0.0
    for r in results.results:
        timings = r.timings
        shared = r.key in seen
        seen.add(r.key)
        cost = sum(v for v in timings.values() if isinstance(v, (int, float)))
        if not shared:
            total += cost
        rows.append(
            [r.arm, str(r.seed), r.stage, *[str(timings.get(k, "-")) for k in
             ("collect_seconds", "fit_seconds", "eval_seconds")], "shared (counted once)" if shared else ""]
        )  # fmt: skip
    lines.append(_table(["arm", "seed", "stage", "collect", "fit", "evaluate", "note"], rows))
    return [*lines, "", f"Total compute of the distinct stages and evaluations: {total / 3600:.2f} h."]


def build_report(
    results: StudyResults,
    compare: dict[str, Any] | None = None,
    plot_path: Path | None = None,
    command: str | None = None,
) -> str:
    """The Markdown report for ``results`` (see the module docstring for the statistics); with
    ``command`` (e.g. ``aries-lit study --config configs/study/cpu.yaml``), how to rerun the
    study and rebuild the report."""
    lines = _header(command)
    compare = compare or {}
    treatment, baseline = compare.get("treatment"), compare.get("baseline")
    for task in results.scored_tasks:
        finals = results.finals(task)
        lines += _stages_section(results, task)
        lines += _curves_section(finals, task, plot_path)
        if treatment in finals and baseline in finals:
            lines += _paired_section(ArmComparison.of(finals, treatment, baseline), task)
        if treatment in finals:
            lines += _targets_section(finals, task, compare)
    lines += instructions_section(results)
    lines += _yield_section(results) + training_section(results) + compute_section(results)
    lines += _scoring_section(results) + _timings_section(results)
    return "\n".join(lines) + "\n"


def write_report(
    results_dir: str | Path, compare: dict[str, Any] | None = None, command: str | None = None
) -> Path:
    """Write ``report.md`` (and the refinement-curve plot) into ``results_dir``; return its path."""
    root = Path(results_dir)
    results = load_results(root)
    text = build_report(results, compare=compare, plot_path=root / CURVES_PNG, command=command)
    path = root / REPORT
    path.write_text(text)
    return path


__all__ = [
    "RESULT_FILES",
    "build_report",
    "final_summary",
    "load_results",
    "read_result",
    "write_report",
]
