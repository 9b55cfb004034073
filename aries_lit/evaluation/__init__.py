"""Evaluation: Direct vs sequential self-refinement (SR) of checkpoints (ARIES Tables 1-3, Fig. 3a).

::

    from aries_lit.evaluation import evaluate_checkpoints

    result = evaluate_checkpoints(
        ["runs/aries/02-iter1/model", "runs/aries/03-iter2/model"],
        tasks=[
            {"class_path": "gsm8k", "init_args": {"limit": 200}},
            {"class_path": "alpaca_eval", "init_args": {"limit": 805}},
        ],
        out_dir="runs/eval", num_refinements=3, judge="path/to/reward-model",
    )
    result["checkpoints"]["iter1-hf"]["tasks"]["gsm8k"]["accuracy"]["sr"]["mean"]

- :mod:`~aries_lit.evaluation.evaluate`: the protocol, its steps and the ``aries-lit evaluate`` command.
- :mod:`~aries_lit.evaluation.tasks`: tasks, checkpoint names and each task's generator config.
- :mod:`~aries_lit.evaluation.kinds`: task kinds (verifiable, ifeval, pairwise, open, mt_bench), one
  class each in the ``TASK_KINDS`` registry: their prompts, generation, records, scores, report lines.
- :mod:`~aries_lit.evaluation.plan`: the checked inputs of an evaluation, settled before generating.
- :mod:`~aries_lit.evaluation.backend`: the generation backend shared by a checkpoint's tasks.
- :mod:`~aries_lit.evaluation.score_cache`: reward-model scores, cached on disk.
- :mod:`~aries_lit.evaluation.turns`: what every kind's records and metrics share;
  :mod:`~aries_lit.evaluation.metrics`: records and metrics by kind name.
- :mod:`~aries_lit.evaluation.stats`: means and intervals (Wilson, normal), reduced across ranks.
- :mod:`~aries_lit.evaluation.winrate`: win rate and length-controlled win rate (numpy only).
- :mod:`~aries_lit.evaluation.report`: JSON, Markdown, PNG plots; :mod:`~aries_lit.evaluation.files`:
  strict JSON and AlpacaEval output files.
- :mod:`~aries_lit.evaluation.suites`: Arena-Hard-Auto and MT-Bench answer files, MT-Bench's two passes.

This package imports nothing heavy at import time (torch, transformers and matplotlib load
when an evaluation runs).
"""

from aries_lit.evaluation.evaluate import checkpoint_names, evaluate, evaluate_checkpoints, parse_tasks
from aries_lit.evaluation.kinds import TASK_KINDS, TaskKind

__all__ = ["TASK_KINDS", "TaskKind", "checkpoint_names", "evaluate", "evaluate_checkpoints", "parse_tasks"]
