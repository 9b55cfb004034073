"""The pair-yield table of the instruction-following study (docs/study_if.md, "Pair yield").

Reads the selections of ``configs/study/if_yield/`` (each ``<runs>/<name>/selection_stats.json``
and ``pairs.jsonl``, with the generation's ``<runs>/<collection>/manifest.json``), scores every
pair's chosen and rejected answers with the graded scorer (the fraction of the prompt's
constraints met, IFEval's strict checkers) and prints one markdown row per selection: pairs per
prompt, why groups gave none, and the pairs' quality. ``--copy DIR`` also copies the small result
files (stats, manifests) there to be committed::

    python scripts/if_yield_table.py --runs runs/if_yield --copy docs/study/if/yield
    python scripts/if_yield_table.py --runs docs/study/if/yield      # the table from committed files
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

#: selection folder -> (collection folder, what it is)
SELECTIONS = {
    "sr_graded": ("sr", "SR, 4 turns, T 0.7", "graded"),
    "sr_rule": ("sr", "SR, 4 turns, T 0.7", "rule (y4 over y1)"),
    "ps_graded": ("ps", "PS, 4 samples, T 0.7", "graded"),
    "ps8_graded": ("ps8", "PS, 8 samples, T 0.8", "graded"),
}
PROMPTS = {
    "class_path": "instruction_following",
    "init_args": {"split": "validation", "count": 96, "seed": 0, "min_constraints": 1, "max_constraints": 3},
}


def pair_scores(pairs_file: Path) -> list[tuple[float, float]]:
    """(chosen, rejected) graded scores of each pair of ``pairs_file``."""
    from aries_lit.instructions import follows
    from aries_lit.prompts.instruction_following import record_instructions
    from aries_lit.prompts.sources import build_prompt_source

    records = {r["id"]: r for r in build_prompt_source(PROMPTS).load()}
    out = []
    for line in pairs_file.read_text().splitlines():
        pair = json.loads(line)
        record = records[pair["id"]]
        instructions = record_instructions(record)
        met = [[follows(i, record["prompt"], pair[s]) for i in instructions] for s in ("chosen", "rejected")]
        out.append((sum(met[0]) / len(met[0]), sum(met[1]) / len(met[1])))
    return out


def _means(scores: list[tuple[float, float]]) -> str:
    if not scores:
        return "-"
    return f"{sum(c for c, _ in scores) / len(scores):.2f} / {sum(r for _, r in scores) / len(scores):.2f}"


def row(runs: Path, name: str) -> list[str] | None:
    """The table row of selection ``name`` under ``runs`` (None when it was not run)."""
    collection, generated, selector = SELECTIONS[name]
    stats_file = runs / name / "selection_stats.json"
    if not stats_file.exists():
        return None
    stats = json.loads(stats_file.read_text())
    manifest = json.loads((runs / collection / "manifest.json").read_text())
    groups, pairs = stats["groups"], stats["pairs"]
    pairs_file = runs / name / "pairs.jsonl"
    scores = pair_scores(pairs_file) if pairs_file.exists() else []
    better = sum(c > r for c, r in scores)
    worse = sum(c < r for c, r in scores)
    chosen_all = sum(c == 1.0 for c, _ in scores)
    skips = sorted((k.split("/", 1)[1], v) for k, v in stats.items() if k.startswith("skipped/"))
    skipped = ", ".join(f"{k} {v}" for k, v in skips)
    counts = manifest["counts"]
    seconds = manifest.get("last_run", {}).get("seconds")
    return [
        generated,
        selector,
        str(groups),
        str(pairs),
        f"{pairs / groups:.2f}",
        skipped or "-",
        f"{counts['finish_length']}/{counts['candidates']}",
        f"{better} / {len(scores) - better - worse} / {worse}" if scores else "-",
        f"{chosen_all}/{len(scores)}" if scores else "-",
        _means(scores),
        f"{counts['completion_tokens'] / groups:.0f}",
        f"{seconds:.0f}" if seconds else "-",
    ]


HEADER = ["collection (base model)", "selection", "prompts", "pairs", "pairs / prompt", "skipped",
          "answers at 192 tokens", "chosen better / equal / worse", "chosen meets all",
          "mean score chosen / rejected", "answer tokens / prompt", "generation s"]  # fmt: skip


def table(runs: Path) -> str:
    rows = [r for r in (row(runs, n) for n in SELECTIONS) if r]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def copy_results(runs: Path, dest: Path) -> None:
    """Copy the small files (manifests, selection stats, pairs) of every run under ``runs`` to ``dest``."""
    for name, (collection, _, _) in SELECTIONS.items():
        wanted = ((collection, ["manifest.json"]), (name, ["selection_stats.json", "pairs.jsonl"]))
        for folder, files in wanted:
            for file in files:
                src = runs / folder / file
                if src.exists():
                    (dest / folder).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dest / folder / file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/if_yield"), help="the yield runs' folder")
    parser.add_argument("--copy", type=Path, help="copy the small result files here")
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        print(f"if_yield_table: --runs {args.runs}: no such folder", file=sys.stderr)
        return 2
    if args.copy:
        copy_results(args.runs, args.copy)
    print(table(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
