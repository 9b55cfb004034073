"""``aries-lit score-ifeval``: score an IFEval response file (``{"prompt", "response"}`` lines, the
format of Google's ``evaluation_main`` and of :func:`aries_lit.evaluation.ifeval.write_responses`)
with the IFEval checkers of ``if-verifiable``.

Responses are matched to the prompts' instructions by prompt text, as Google's scorer does; the
prompts default to IFEval's 541 shipped in the package. Bad input is one line naming the file,
record and field: a line that is not a JSON object, a missing or non-string ``prompt`` or
``response``, a prompt absent from the input data, a duplicate prompt, an empty response (unless
``allow_empty``: IFEval then scores it as following nothing), an unknown instruction id or
arguments that do not fit the checker (in the input data).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aries_lit.core.errors import DataValidationError

__all__ = ["score_ifeval", "score_responses"]


def _read_responses(path: Path, allow_empty: bool) -> list[tuple[int, str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such response file")
    rows: list[tuple[int, str, str]] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                message = f"not JSON ({err.msg})"
                raise DataValidationError(path, number, None, message, reason="bad_json") from None
            if not isinstance(row, dict):
                raise DataValidationError(path, number, None, "expected a JSON object", reason="wrong_type")
            for field in ("prompt", "response"):
                if not isinstance(row.get(field), str):
                    what = "missing" if field not in row else "not a string"
                    raise DataValidationError(path, number, field, what, reason="missing_field")
            if not row["response"].strip() and not allow_empty:
                raise DataValidationError(
                    path, number, "response",
                    "empty response (allow_empty: true scores it as following nothing, as IFEval does)",
                    reason="empty",
                )  # fmt: skip
            if row["prompt"] in seen:
                first = seen[row["prompt"]]
                message = f"the same prompt as record {first}"
                raise DataValidationError(path, number, "prompt", message, reason="duplicate")
            seen[row["prompt"]] = number
            rows.append((number, row["prompt"], row["response"]))
    if not rows:
        raise DataValidationError(path, None, None, "no responses", reason="empty")
    return rows


def score_responses(
    responses: str | os.PathLike, input_data: str | None = None, allow_empty: bool = False
) -> dict[str, Any]:
    """IFEval's four accuracies (and the rest of :func:`~aries_lit.evaluation.ifeval.ifeval_metrics`)
    of a response file; ``input_data``: prompts in IFEval's layout (default the 541 shipped)."""
    from aries_lit.evaluation.ifeval import ifeval_metrics, ifeval_records
    from aries_lit.prompts.ifeval import IFEVAL_PATH, IFEval

    path = Path(responses).expanduser()
    rows = _read_responses(path, allow_empty)
    prompts = {p["prompt"]: p for p in IFEval(path=input_data or IFEVAL_PATH).load()}
    groups = []
    for number, prompt, response in rows:
        if prompt not in prompts:
            raise DataValidationError(
                path, number, "prompt", "not a prompt of the input data " f"({input_data or 'IFEval'})",
                reason="unknown_prompt",
            )  # fmt: skip
        candidate = {"index": 0, "text": response, "finish_reason": None}
        groups.append({**prompts[prompt], "candidates": [candidate]})
    records = ifeval_records(groups, source=str(path))
    metrics = ifeval_metrics(records, num_turns=1)
    return {"responses": str(path), "n": len(records), "of": len(prompts), **metrics["ifeval"]["direct"],
            "by_type": metrics["ifeval"]["by_type"]["direct"]}  # fmt: skip


def score_ifeval(
    responses: str, input_data: str | None = None, allow_empty: bool = False, out: str | None = None
) -> None:
    """Score an IFEval response file (``{"prompt", "response"}`` lines) with IFEval's checkers and
    print prompt- and instruction-level accuracy, strict and loose, with 95% intervals.

    Args:
        responses: the response file (e.g. ``<eval>/<checkpoint>/<task>/ifeval/turn-0.jsonl``).
        input_data: prompts in IFEval's layout (``key``, ``prompt``, ``instruction_id_list``,
            ``kwargs``); default IFEval's 541, shipped in the package.
        allow_empty: score empty responses as following nothing (IFEval's rule) instead of refusing them.
        out: also write the scores as JSON here.
    """
    from aries_lit.evaluation.report import write_json

    scores = score_responses(responses, input_data, allow_empty)
    if out:
        write_json(out, scores)
    print(f"{scores['responses']}: {scores['n']} responses (of {scores['of']} prompts)")
    for key in ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose"):
        s = scores[key]
        print(f"  {key:<14} {100 * s['mean']:5.1f}  [{100 * s['ci_low']:.1f}, {100 * s['ci_high']:.1f}]")
