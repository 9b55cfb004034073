"""Agreement of the two length-controlled win rates (``builtin`` and ``alpaca_eval``) on the same judgements.

For each set of judgements prints the raw win rate, our LC win rate
(:func:`aries_lit.evaluation.winrate.length_controlled_win_rate`, ``method="builtin"``), the
``alpaca-eval`` 0.6.6 package's (``method="alpaca_eval"``, its ``length_controlled_minimal`` GLM
run offline) and their difference in points, with both fits' length coefficients.

Real judgements: pass ``aries-lit evaluate`` folders; every pairwise task (AlpacaEval with a
``judge``) of every checkpoint, at every turn, is one judgement set::

    python benchmarks/lc_winrate_agreement.py runs/eval/alpaca_eval [more folders...]

Without folders it uses **synthetic** judgements (no real model or judge): the reference lengths
are the character lengths of the 805 shipped AlpacaEval 2 reference answers (GPT-4 Turbo,
``aries_lit:alpaca_eval/gpt4_1106_preview_outputs.json.gz``); a model answer's length is the
reference's times ``exp(N(shift, 0.5))``; each judgement is a tie with probability 0.05, else a win
with probability ``sigmoid(a + b * tanh(d / std(d)))`` for ``d = model - reference`` length, so
``target = 0.95 * sigmoid(a) + 0.025`` is the true win rate at zero length difference. Scenarios:
every ``a`` in ``--a``, ``b`` in ``--b``, ``shift`` in ``--shift``, on the first ``n`` of the 805
instructions for each ``n`` in ``--n``, seeded. Needs ``pip install alpaca-eval==0.6.6`` (the
``lc-winrate`` extra). See docs/evaluation.md for the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aries_lit.evaluation.winrate import length_controlled_win_rate, sigmoid, win_rate

TIE_RATE = 0.05


def reference_lengths() -> np.ndarray:
    """Character lengths of the 805 shipped AlpacaEval 2 reference answers, in file order."""
    from aries_lit.assets import asset_path

    with gzip.open(asset_path("alpaca_eval/gpt4_1106_preview_outputs.json.gz"), "rt") as f:
        return np.array([len(r["output"]) for r in json.load(f)], dtype=np.int64)


def synthetic_judgements(
    ref_len: np.ndarray, a: float, b: float, shift: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(wins, model_lengths)`` from the synthetic preference model of the module docstring."""
    rng = np.random.default_rng(seed)
    ratio = np.exp(rng.normal(shift, 0.5, ref_len.size))
    model_len = np.maximum(1, np.rint(ref_len * ratio)).astype(np.int64)
    d = (model_len - ref_len).astype(np.float64)
    p = sigmoid(a + b * np.tanh(d / d.std()))
    wins = (rng.random(ref_len.size) < p).astype(np.float64)
    wins[rng.random(ref_len.size) < TIE_RATE] = 0.5
    return wins, model_len


def synthetic_sets(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """The synthetic judgement sets, one per scenario and size."""
    ref_all = reference_lengths()
    seed = args.seed
    for n in args.n:
        for shift in args.shift:
            for a in args.a:
                for b in args.b:
                    ref = ref_all[:n]
                    wins, model_len = synthetic_judgements(ref, a, b, shift, seed)
                    seed += 1
                    yield {
                        "name": f"synthetic n={n} a={a:+.1f} b={b:.1f} shift={shift:+.1f}",
                        "wins": wins,
                        "model_lengths": model_len,
                        "reference_lengths": ref,
                        "target": (1 - TIE_RATE) * float(sigmoid(a)) + TIE_RATE / 2,
                    }


def report_sets(folder: Path) -> Iterator[dict[str, Any]]:
    """Every pairwise task's judgements at every turn in an evaluation folder's ``report.json``."""
    report = json.loads((folder / "report.json").read_text())
    for checkpoint, result in report["results"].items():
        for task, task_result in result["tasks"].items():
            records = [r for r in task_result["records"] if "reference_length" in r]
            if not records or "win" not in records[0]["turns"][0]:
                continue  # not a judged pairwise task
            for t in range(len(records[0]["turns"])):
                yield {
                    "name": f"{folder.name}/{checkpoint}/{task} turn {t}",
                    "wins": np.array([r["turns"][t]["win"] for r in records], dtype=np.float64),
                    "model_lengths": np.array([r["turns"][t]["length"] for r in records]),
                    "reference_lengths": np.array([r["reference_length"] for r in records]),
                    "target": math.nan,
                }


def compare(item: dict[str, Any]) -> dict[str, Any]:
    """Both LC win rates (and the raw one) of one judgement set, in fractions, with timings."""
    args = (item["wins"], item["model_lengths"], item["reference_lengths"])
    t0 = time.perf_counter()
    ours = length_controlled_win_rate(*args)
    t1 = time.perf_counter()
    theirs = length_controlled_win_rate(*args, method="alpaca_eval")
    t2 = time.perf_counter()
    return {
        "name": item["name"],
        "n": int(item["wins"].size),
        "win_rate": win_rate(item["wins"])["win_rate"],
        "target": item["target"],
        "builtin": ours["lc_win_rate"],
        "builtin_se": ours["se"],
        "alpaca_eval": theirs["lc_win_rate"],
        "alpaca_eval_method": theirs["method"],
        "difference": theirs["lc_win_rate"] - ours["lc_win_rate"],
        "builtin_length_coef": ours["length_coef"],
        "alpaca_eval_length_coef": theirs["length_coef"],
        "seconds_builtin": t1 - t0,
        "seconds_alpaca_eval": t2 - t1,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="evaluation folders holding report.json")
    parser.add_argument("--n", type=int, nargs="+", default=[805, 200], help="synthetic: instructions")
    parser.add_argument("--a", type=float, nargs="+", default=[-1.5, -0.5, 0.5], help="synthetic: intercepts")
    parser.add_argument("--b", type=float, nargs="+", default=[0.0, 1.0, 2.0], help="synthetic: slopes")
    parser.add_argument("--shift", type=float, nargs="+", default=[0.3, -0.3], help="synthetic: log ratio")
    parser.add_argument("--seed", type=int, default=0, help="synthetic: first seed (one per scenario)")
    parser.add_argument("--json", type=Path, default=None, help="also write every row")
    args = parser.parse_args(argv)

    items: list[dict[str, Any]] = []
    for folder in args.folders:
        if not (folder / "report.json").exists():
            print(f"{folder}: no report.json (evaluation unfinished?), skipped")
            continue
        found = list(report_sets(folder))
        print(f"{folder}: {len(found)} judged pairwise sets")
        items.extend(found)
    if not args.folders:
        print("SYNTHETIC judgements (no real model or judge): reference lengths of the shipped AlpacaEval")
        print("2 answers, model lengths and outcomes from the seeded preference model in the docstring.")
        items = list(synthetic_sets(args))

    from aries_lit.evaluation.alpaca_eval_lc import alpaca_eval_glm

    alpaca_eval_glm()  # import the package (seconds) before timing the fits; fails with the install hint
    rows = [compare(item) for item in items]
    columns = ["judgements", "n", "win rate", "target", "LC builtin", "LC alpaca_eval", "diff (pts)"]
    columns += ["b builtin", "b alpaca_eval"]
    print("\n| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        label = "" if r["alpaca_eval_method"] == "alpaca_eval" else " (fell back to builtin)"
        print(
            f"| {r['name']}{label} | {r['n']} | {100 * r['win_rate']:.1f} | {100 * r['target']:.1f} | "
            f"{100 * r['builtin']:.2f} ± {100 * r['builtin_se']:.2f} | {100 * r['alpaca_eval']:.2f} | "
            f"{100 * r['difference']:+.2f} | {r['builtin_length_coef']:.2f} | "
            f"{r['alpaca_eval_length_coef']:.2f} |"
        )
    for n in sorted({r["n"] for r in rows}):
        diffs = np.array([abs(r["difference"]) for r in rows if r["n"] == n])
        known = [r for r in rows if r["n"] == n and not math.isnan(r["target"])]
        errors = np.array([r["builtin"] - r["target"] for r in known])
        errors_ae = np.array([r["alpaca_eval"] - r["target"] for r in known])
        line = f"n={n}: {diffs.size} sets, |LC alpaca_eval - LC builtin| mean {100 * diffs.mean():.2f}, "
        line += f"max {100 * diffs.max():.2f} points"
        if errors.size:
            line += (
                f"; RMS error vs target: builtin {100 * math.sqrt(np.mean(errors**2)):.2f}, "
                f"alpaca_eval {100 * math.sqrt(np.mean(errors_ae**2)):.2f} points"
            )
        print(line)
    seconds = [r["seconds_alpaca_eval"] for r in rows]
    if seconds:
        print(f"seconds per fit: builtin {np.mean([r['seconds_builtin'] for r in rows]):.3f}, "
              f"alpaca_eval {np.mean(seconds):.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
