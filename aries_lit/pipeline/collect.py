"""Prompts -> candidates (a generator) -> preference pairs (a selector), on disk.

``aries-lit generate`` and ``aries-lit select`` are these two functions; the collecting
DataModule and ``aries-lit iterate`` call them too. Generation resumes from its own
``candidates.jsonl``; selection is rerun from the finished candidates and its pairs file is
written atomically, so a killed run never leaves a half-written pairs file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aries_lit.generators import GENERATORS, Generator
from aries_lit.generators.store import load_groups
from aries_lit.prompts.sources import load_prompts
from aries_lit.selectors import SELECTORS, Selector

PAIRS_FILE = "pairs.jsonl"
SELECTION_STATS_FILE = "selection_stats.json"


def _expand(path: str) -> str:
    return str(Path(path).expanduser())


def generate(
    model: str,
    prompts: dict[str, Any] | str,
    generator: dict[str, Any] | str = "sequential_refinement",
    out_dir: str = "runs/candidates",
    progress: bool = True,
) -> str:
    """Generate candidate answers for a prompt set (resumes a killed run in ``out_dir``).

    Args:
        model: the policy, a hub name or an HF-format folder.
        prompts: a prompt source: a registry name (``gsm8k``, ``alpaca_eval``, ``arithmetic``,
            ``file``, ``preference_prompts``) with its options, e.g. ``{name: gsm8k, limit: 64}``,
            or ``{class_path: ..., init_args: ...}``, or a path to a prompt file.
        generator: ``sequential_refinement`` (SR, the paper's) or ``parallel_sampling`` (PS) with
            options, e.g. ``{name: sequential_refinement, num_candidates: 4, temperature: 0.7}``.
        out_dir: where ``candidates.jsonl`` and ``manifest.json`` go.
    """
    gen: Generator = GENERATORS.build(generator)
    items = load_prompts(prompts)
    out = gen.run(items, _expand(model), out_dir, progress=progress)
    print(f"[aries-lit] candidates in {out}")
    return str(out)


def select(
    candidates: str,
    prompts: dict[str, Any] | str,
    selector: dict[str, Any] | str = "rule",
    out: str | None = None,
) -> str:
    """Turn finished candidates into TRL-format preference pairs (``pairs.jsonl``).

    Args:
        candidates: a generation folder written by ``generate``.
        prompts: the same prompt source the candidates were generated from (gold answers for
            the verifier come from it).
        selector: ``rule``, ``reward_model``, ``llm_judge`` or ``verifier`` with options, e.g.
            ``{name: rule, chosen_index: -1, rejected_index: 0}``.
        out: the pairs file (default ``<candidates>/pairs.jsonl``); the selection's counts go to
            ``selection_stats.json`` beside it.
    """
    sel: Selector = SELECTORS.build(selector)
    groups = load_groups(candidates, load_prompts(prompts))
    result = sel.select(groups)
    target = Path(out or Path(candidates) / PAIRS_FILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for pair in result.pairs:
            f.write(json.dumps(pair, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(target)
    stats = {"selector": repr(sel), "groups": len(groups), **{k: int(v) for k, v in result.stats.items()}}
    target.with_name(SELECTION_STATS_FILE).write_text(json.dumps(stats, indent=2))
    print(f"[aries-lit] {result.summary()}")
    print(f"[aries-lit] pairs in {target}")
    return str(target)
