"""MT-Bench (Zheng et al. 2023, FastChat ``llm_judge``): 80 two-turn questions and their answer file.

The questions ship in the package (``aries_lit:mt_bench/question.jsonl.gz``, Apache-2.0, see
:mod:`aries_lit.assets`): ``{"question_id", "category", "turns": [turn 1, turn 2], "reference"?}``.
A model answers turn 1, then turn 2 given the conversation so far (:func:`second_turn_prompt`);
:func:`answer_row` is a line of FastChat's ``model_answer/<model>.jsonl``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from aries_lit.prompts.sources import (
    PROMPT_SOURCES,
    DataValidationError,
    PromptSource,
    read_numbered,
    scalar_text,
    window,
)

__all__ = ["MTBench", "answer_row", "second_turn_prompt"]


def _turns(src: str, number: int, field: str, value: Any, count: int | None) -> list[str]:
    """``count`` non-empty strings (``None``: any number of strings, e.g. reference answers)."""
    if value is None:
        raise DataValidationError(src, number, field, "missing field", reason="missing_field")
    if count is None:
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise DataValidationError(src, number, field, "expected a list of strings", reason="wrong_type")
    elif (
        not isinstance(value, list)
        or len(value) != count
        or not all(isinstance(t, str) and t.strip() for t in value)
    ):
        raise DataValidationError(
            src, number, field, f"expected a list of {count} non-empty strings", reason="wrong_type"
        )
    return list(value)


@PROMPT_SOURCES.register("mt_bench")
@dataclass
class MTBench(PromptSource):
    """MT-Bench's two-turn questions: ``prompt`` = turn 1, ``turns`` = both user turns; kept:
    ``question_id`` (as in the file), ``category``, ``reference`` (when given). Ids: the question
    ids as strings."""

    path: str = "aries_lit:mt_bench/question.jsonl.gz"
    limit: int | None = None
    offset: int = 0

    def load(self) -> list[dict[str, Any]]:
        src, _, records = read_numbered(self.path)
        items = []
        for number, record in records:
            if "question_id" not in record and "turns" not in record:
                raise DataValidationError(
                    src, number, "question_id",
                    "not an MT-Bench question: expected 'question_id', 'category' and 'turns'",
                    reason="missing_field",
                )  # fmt: skip
            qid = record.get("question_id")
            turns = _turns(src, number, "turns", record.get("turns"), 2)
            item = {
                "id": scalar_text(src, number, "question_id", qid),
                "prompt": turns[0],
                "turns": turns,
                "question_id": qid,
                "category": scalar_text(src, number, "category", record.get("category")),
            }
            if record.get("reference") is not None:
                item["reference"] = _turns(src, number, "reference", record["reference"], None)
            items.append(item)
        return window(items, self.offset, self.limit)


def second_turn_prompt(item: dict[str, Any], first_answer: str) -> list[dict[str, str]]:
    """The conversation the second answer continues: user turn 1, the model's answer, user turn 2."""
    return [
        {"role": "user", "content": item["turns"][0]},
        {"role": "assistant", "content": first_answer},
        {"role": "user", "content": item["turns"][1]},
    ]


def answer_row(question_id: Any, model: str, answers: list[str], tstamp: float) -> dict[str, Any]:
    """One line of FastChat's ``model_answer/<model>.jsonl``."""
    return {
        "question_id": question_id,
        "answer_id": hashlib.sha256(f"{model}\0{question_id}\0{answers}".encode()).hexdigest()[:22],
        "model_id": model,
        "choices": [{"index": 0, "turns": list(answers)}],
        "tstamp": tstamp,
    }
