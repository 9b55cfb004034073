"""Agreement of the two answer checkers (``builtin`` and ``math_verify``) on real evaluation outputs.

Reads the ``report.json`` of one or more ``aries-lit evaluate`` folders (every record's gold and
every turn's generated text), grades each (text, gold) pair with both checkers of
:func:`aries_lit.answers.checking.is_correct` and prints the counts: total, both correct, both
wrong, builtin-only correct, math_verify-only correct, with up to ``--examples`` texts of each
disagreement kind. Needs ``pip install math-verify`` (the ``eval`` or ``dev`` extra)::

    python benchmarks/checker_agreement.py /root/aries_study_cpu/eval/base [more folders...]

``--selection STAGE_DIR CANDIDATES_DIR`` (repeatable) also reruns a study stage's verifier or
reference selection (its ``stage.json``: prompts and selector) on a candidates folder with each
checker and prints the pairs both make, the pairs only one makes, and the finished candidates
stating an answer that the two checkers grade differently.

The builtin verdicts are also compared with the ``correct`` flags stored in the report (they
should be equal: a difference means the report was made by another version of the checker).
See docs/answer_checking.md for the figures on SmolLM2-135M-Instruct outputs.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aries_lit.answers.checking import is_correct
from aries_lit.answers.extraction import extract_answer, gold_answer

KINDS = ("both_correct", "both_wrong", "builtin_only", "math_verify_only")


def pairs(folder: Path) -> Iterator[dict[str, Any]]:
    """Every (text, gold) pair of an evaluation folder's ``report.json``, with where it came from."""
    report = json.loads((folder / "report.json").read_text())
    for checkpoint, result in report["results"].items():
        for task, task_result in result["tasks"].items():
            for record in task_result["records"]:
                if "gold" not in record:
                    continue  # not a verifiable task
                for turn in record["turns"]:
                    yield {
                        "folder": str(folder),
                        "checkpoint": checkpoint,
                        "task": task,
                        "id": record["id"],
                        "turn": turn["turn"],
                        "gold": record["gold"],
                        "text": turn["text"],
                        "stored_correct": turn.get("correct"),
                    }


def compare(items: list[dict[str, Any]]) -> tuple[Counter, dict[str, list[dict[str, Any]]]]:
    """Counts of each agreement kind (plus ``total`` and ``stored_mismatch``) and the items by kind."""
    from math_verify import parse

    counts: Counter = Counter()
    by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for item in items:
        gold = gold_answer(item["gold"])
        builtin = is_correct(item["text"], gold, "builtin")
        mv = is_correct(item["text"], gold, "math_verify")
        if builtin:
            kind = "both_correct" if mv else "builtin_only"
        else:
            kind = "math_verify_only" if mv else "both_wrong"
        counts["total"] += 1
        counts[kind] += 1
        if item["stored_correct"] is not None and bool(item["stored_correct"]) != builtin:
            counts["stored_mismatch"] += 1
        if kind in ("builtin_only", "math_verify_only"):
            item = {
                **item,
                "builtin_extracted": extract_answer(item["text"]),
                "math_verify_parsed": [str(x) for x in parse(item["text"])],
            }
        by_kind[kind].append(item)
    return counts, by_kind


def selection_agreement(stage_dir: Path, candidates_dir: Path, examples: int, chars: int) -> None:
    """Rerun a stage's selection on ``candidates_dir`` with both checkers and print the differences."""
    from aries_lit.answers.extraction import stated_answer
    from aries_lit.generators import load_groups
    from aries_lit.prompts.sources import load_prompts
    from aries_lit.selectors import SELECTORS

    collect = json.loads((stage_dir / "stage.json").read_text())["collect"]
    items = load_prompts(collect["prompts"])
    groups = load_groups(candidates_dir, items)
    manifest = json.loads((candidates_dir / "manifest.json").read_text())
    written = collect["selector"]
    spec = written if isinstance(written, dict) else {"class_path": written}
    pairs_by_checker = {}
    for checker in ("builtin", "math_verify"):
        selector = SELECTORS.build({**spec, "checker": checker})
        template = (manifest.get("settings") or {}).get("template")
        if isinstance(template, str) and template:
            selector.add_echo_templates([template])
        result = selector.select(groups)
        pairs_by_checker[checker] = {(p["id"], p["chosen_index"], p["rejected_index"]) for p in result.pairs}
    a, b = pairs_by_checker["builtin"], pairs_by_checker["math_verify"]
    print(f"{stage_dir.name} on {candidates_dir} ({spec['name']}, {len(groups)} groups):")
    print(f"  pairs: builtin {len(a)}, math_verify {len(b)}, both {len(a & b)}")
    print(f"  builtin-only {sorted(a - b)}, math_verify-only {sorted(b - a)}")
    differing = []
    for group in groups:
        gold = gold_answer(group.get("answer"))
        for cand in group["candidates"]:
            if cand.get("finish_reason") == "length" or stated_answer(cand["text"]) is None:
                continue
            builtin = is_correct(cand["text"], gold, "builtin")
            if builtin != is_correct(cand["text"], gold, "math_verify"):
                differing.append((group["id"], cand["index"], gold, builtin, cand["text"]))
    print(f"  finished candidates stating an answer, graded differently: {len(differing)}")
    for gid, index, gold, builtin, text in differing[:examples]:
        who = "builtin" if builtin else "math_verify"
        print(f"  - {gid} #{index} gold {gold!r}, correct by {who} only: {text[:chars]!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="evaluation folders holding report.json")
    parser.add_argument(
        "--selection",
        nargs=2,
        action="append",
        type=Path,
        default=[],
        metavar=("STAGE_DIR", "CANDIDATES_DIR"),
        help="rerun a study stage's selection on a candidates folder with both checkers",
    )
    parser.add_argument("--examples", type=int, default=5, help="examples shown per disagreement kind")
    parser.add_argument("--chars", type=int, default=300, help="characters of each example text shown")
    parser.add_argument("--json", type=Path, default=None, help="also write the counts and all disagreements")
    args = parser.parse_args(argv)

    total: Counter = Counter()
    disagreements: dict[str, list[dict[str, Any]]] = {"builtin_only": [], "math_verify_only": []}
    per_folder = {}
    for folder in args.folders:
        if not (folder / "report.json").exists():
            print(f"{folder}: no report.json (evaluation unfinished?), skipped")
            continue
        counts, by_kind = compare(list(pairs(folder)))
        per_folder[str(folder)] = dict(counts)
        total.update(counts)
        for kind in disagreements:
            disagreements[kind].extend(by_kind[kind])
        print(f"{folder}: " + ", ".join(f"{k} {counts[k]}" for k in ("total", *KINDS, "stored_mismatch")))
    if len(args.folders) > 1:
        print("all: " + ", ".join(f"{k} {total[k]}" for k in ("total", *KINDS, "stored_mismatch")))
    for kind, items in disagreements.items():
        if not args.folders:
            break
        print(f"\n== {kind}: {len(items)} (showing {min(len(items), args.examples)})")
        for item in items[: args.examples]:
            text = item["text"][: args.chars].replace("\n", "\\n")
            print(
                f"- {item['checkpoint']}/{item['id']} turn {item['turn']} gold {item['gold']!r} "
                f"builtin {item['builtin_extracted']!r} math_verify {item['math_verify_parsed']}\n  {text!r}"
            )
    for stage_dir, candidates_dir in args.selection:
        print()
        selection_agreement(stage_dir, candidates_dir, args.examples, args.chars)
    if args.json is not None:
        summary = {"per_folder": per_folder, "total": dict(total), "disagreements": disagreements}
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
