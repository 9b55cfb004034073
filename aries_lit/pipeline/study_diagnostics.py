"""Report sections beside the accuracies: IFEval's instruction-level figures (constraint types
trained on and held out apart), answer length, the training drift of each stage, and the compute
each arm used. Every figure is read from the study's result files.

Seeds are pooled as plain means of the per-seed figures (instruction counts per type are summed),
without intervals: these sections describe what happened; the paired tests are the report's main
sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aries_lit.pipeline.study_format import mean, pct, table
from aries_lit.pipeline.study_results import StageResult, StudyResults
from aries_lit.prompts.instruction_following import CONSTRAINT_TYPES, HELD_OUT_TYPES

#: the constraint types the ``instruction_following`` train split draws (its default held-out types
#: left out); every other IFEval type was never trained on
TRAINED_TYPES = frozenset(CONSTRAINT_TYPES) - frozenset(HELD_OUT_TYPES)


def _ifeval_tasks(results: StudyResults) -> list[str]:
    return sorted({name for r in results.results for name, t in r.tasks.items() if t.ifeval is not None})


def _type_rate(records: list[StageResult], task: str, turn: str, trained: bool) -> tuple[float | None, int]:
    """Followed / total over the instruction types trained on (or not), summed over seeds."""
    followed = total = 0
    for r in records:
        for name, (f, n) in r.tasks[task].ifeval["by_type"].get(turn, {}).items():
            if (name in TRAINED_TYPES) == trained:
                followed, total = followed + f, total + n
    return (followed / total if total else None), total // max(1, len(records))


def _arrow(a: float | None, b: float | None, fmt: Any = pct) -> str:
    return f"{fmt(a)} -> {fmt(b)}"


def instructions_section(results: StudyResults) -> list[str]:
    """Per IFEval-kind task: by arm and stage, Direct -> SR of instruction-level strict accuracy,
    of it on the trained and the never-trained constraint types, of prompt-level loose accuracy,
    and the mean answer length."""
    lines: list[str] = []
    for task in _ifeval_tasks(results):
        rows = []
        for arm, stages in results.arms.items():
            for index, stage in sorted(stages.items()):
                evaluated = [r for r in stage.results if (t := r.tasks.get(task)) and t.ifeval is not None]
                if not evaluated:
                    continue
                ife = [r.tasks[task].ifeval for r in evaluated]
                lengths = [r.tasks[task].length or [None] for r in evaluated]
                cells = [_arrow(mean([f[k][0] for f in ife]), mean([f[k][-1] for f in ife]))
                         for k in ("inst_strict", "prompt_loose")]  # fmt: skip
                for trained in (True, False):
                    d, n = _type_rate(evaluated, task, "direct", trained)
                    s, _ = _type_rate(evaluated, task, "last", trained)
                    cells.append(f"{_arrow(d, s)} ({n})" if n else "-")
                length = _arrow(mean([x[0] for x in lengths]), mean([x[-1] for x in lengths]),
                                lambda v: "n/a" if v is None else f"{v:.0f}")  # fmt: skip
                rows.append([arm, f"{index:02d}-{evaluated[0].stage}", str(len(evaluated)), *cells, length])
        header = ["arm", "stage", "seeds", "inst strict", "prompt loose", "trained types, inst strict (n)",
                  "never-trained types, inst strict (n)", "answer length (chars)"]  # fmt: skip
        lines += ["", f"## {task}: instructions, Direct -> SR", "",
                  "Instruction-level accuracy by constraint type: the types the train split draws, and "
                  "those it never draws (held out, or absent from the procedural task); (n) = "
                  "instructions per seed. Length: mean characters of the answer.", "",
                  table(header, rows)]  # fmt: skip
    return lines


def _end(training: Mapping[str, Any], metric: str, key: str = "end") -> float | None:
    value = (training.get(f"train/{metric}") or {}).get(key)
    return float(value) if value is not None else None


def training_section(results: StudyResults) -> list[str]:
    """Per trained stage, from its CSV training log: the loss, the chosen answers' summed
    log-probability and the policy-reference log-ratio of the chosen and rejected answers (mean of
    the first -> last quarter of the steps), and the pair accuracy at the end."""
    rows, seen = [], set()
    for r in results.results:
        training = r.training
        if not training or r.key in seen:
            continue
        seen.add(r.key)

        def both(metric: str, t: Mapping[str, Any] = training) -> str:
            a, b = _end(t, metric, "start"), _end(t, metric)
            return "-" if a is None else f"{a:.2f} -> {b:.2f}"

        acc = _end(training, "rewards/accuracy")
        rows.append([r.arm, str(r.seed), r.stage, both("loss"), both("logps/direct/chosen"),
                     both("logratio/direct/chosen"), both("logratio/direct/rejected"),
                     "-" if acc is None else pct(acc)])  # fmt: skip
    if not rows:
        return []
    header = ["arm", "seed", "stage", "loss", "log p(chosen)", "log-ratio chosen", "log-ratio rejected",
              "pair accuracy % (end)"]  # fmt: skip
    return ["", "## Training drift by stage (first -> last quarter of the steps)", "",
            "log-ratio = log pi(y|x) - log pi_ref(y|x) summed over the answer's tokens (the stage's "
            "input model is its reference): how far the stage moved the policy on its training answers; "
            "a chosen log-probability that falls while the margin grows is where length exploitation "
            "shows first. Shared stages are listed once.", "", table(header, rows)]  # fmt: skip


def compute_section(results: StudyResults) -> list[str]:
    """Per arm and seed: answer tokens generated per collected prompt, answers per prompt, and the
    tokens trained on (every view's context and response, times the epochs), over all its stages
    (shared stages counted in every arm that uses them)."""
    arms: dict[tuple[str, int], dict[str, Any]] = {}
    for r in results.results:
        a = arms.setdefault((r.arm, r.seed), {"gen": 0, "prompts": 0, "cands": 0, "train": 0, "per": []})
        gen = r.generation
        if gen.get("prompts"):
            a["gen"] += gen.get("completion_tokens", 0)
            a["prompts"] += gen["prompts"]
            a["cands"] += gen.get("candidates", 0)
            a["per"].append(f"{r.stage} {gen.get('completion_tokens', 0) / gen['prompts']:.0f}")
        data = r.data
        if "train/view_tokens" in data:
            a["train"] += data["train/view_tokens"] * int(data.get("max_epochs") or 1)
    rows = []
    for (arm, seed), a in sorted(arms.items()):
        if not (a["prompts"] or a["train"]):
            continue
        per_prompt = f"{a['cands'] / a['prompts']:.1f}" if a["prompts"] else "-"
        trained = f"{a['train'] / 1e6:.2f}" if a["train"] else "-"
        generated = f"{a['gen'] / 1e6:.2f}"
        rows.append([arm, str(seed), ", ".join(a["per"]) or "-", per_prompt, generated, trained])
    if not rows:
        return []
    header = ["arm", "seed", "answer tokens per prompt, by stage", "answers per prompt", "generated M tokens",
              "trained M tokens"]  # fmt: skip
    return ["", "## Compute by arm", "",
            "Collection only (evaluation is the same for every arm); SR spends its four answers on one "
            "chain, PS on four samples. Trained tokens: every view's context and response per epoch, "
            "times the epochs (ARIES trains more views per pair than DPO).",
            "", table(header, rows)]  # fmt: skip


__all__ = ["TRAINED_TYPES", "compute_section", "instructions_section", "training_section"]
