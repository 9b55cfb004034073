"""Arena-Hard-Auto (Li et al. 2024, github.com/lmarena/arena-hard-auto): questions and answer files.

Two layouts of ``question.jsonl`` are read, one per file:

- current (v2.0): ``{"uid", "category", "subcategory"?, "prompt"}``;
- v0.1: ``{"question_id", "category", "cluster", "turns": [{"content": ...}]}``.

Answers are written in the layout of the questions, as Arena-Hard's ``gen_answer.py`` writes
``model_answer/<model>.jsonl`` (:func:`answer_row`), so they drop into its judging pipeline.
:func:`read_answers` reads such a file (either layout), e.g. a baseline model's answers that
``arena_hard`` joins to its questions by question id (``reference_output``). No question file is
shipped: get one from the arena-hard-auto repository (``data/arena-hard-v0.1/question.jsonl``,
``data/arena-hard-v2.0/question.jsonl``).
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

__all__ = ["CURRENT", "V01", "ArenaHard", "answer_id", "answer_row", "read_answers"]

CURRENT = "current"
V01 = "v0.1"
_QUESTION_LAYOUTS = "expected 'uid' and 'prompt' (current) or 'question_id' and 'turns' (v0.1)"
_ANSWER_LAYOUTS = "expected 'uid' and 'messages' (current) or 'question_id' and 'choices' (v0.1)"


def _text(src: str, number: int, field: str, value: Any, what: str) -> str:
    if value is None:
        raise DataValidationError(src, number, field, "missing field", reason="missing_field")
    if not isinstance(value, str):
        raise DataValidationError(
            src, number, field, f"expected a string, got {type(value).__name__}", reason="wrong_type"
        )
    if not value.strip():
        raise DataValidationError(src, number, field, f"empty {what}", reason=f"empty_{what}")
    return value


def _question(src: str, number: int, record: dict[str, Any]) -> dict[str, Any]:
    """One question record as a prompt: ``id``, ``prompt``, ``question_id`` (as in the file),
    ``layout`` and the category fields."""
    if "uid" in record or "prompt" in record:
        qid = record.get("uid")
        scalar_text(src, number, "uid", qid)
        prompt = _text(src, number, "prompt", record.get("prompt"), "prompt")
        item = {"question_id": qid, "layout": CURRENT, "prompt": prompt}
    elif "question_id" in record or "turns" in record:
        qid = record.get("question_id")
        scalar_text(src, number, "question_id", qid)
        turns = record.get("turns")
        if not isinstance(turns, list) or len(turns) != 1 or not isinstance(turns[0], dict):
            raise DataValidationError(
                src, number, "turns", 'expected one turn: [{"content": <question>}]', reason="wrong_type"
            )
        item = {
            "question_id": qid,
            "layout": V01,
            "prompt": _text(src, number, "turns", turns[0].get("content"), "prompt"),
        }
    else:
        raise DataValidationError(
            src, number, "uid", f"in neither Arena-Hard question layout: {_QUESTION_LAYOUTS}",
            reason="missing_field",
        )  # fmt: skip
    item["id"] = str(qid)
    for key in ("category", "subcategory", "cluster"):
        if record.get(key) is not None:
            item[key] = record[key]
    return item


def _answer_text(src: str, number: int, record: dict[str, Any]) -> tuple[str, str, str]:
    """``(question id, model, answer)`` of one answer record in either layout."""
    if "uid" in record or "messages" in record:
        qid = scalar_text(src, number, "uid", record.get("uid"))
        messages = record.get("messages")
        last = messages[-1] if isinstance(messages, list) and messages else None
        if not isinstance(last, dict) or last.get("role") != "assistant":
            raise DataValidationError(
                src, number, "messages", "expected a list of messages ending with the assistant's",
                reason="wrong_type",
            )  # fmt: skip
        content = last.get("content")
        answer = content.get("answer") if isinstance(content, dict) else content
        return qid, str(record.get("model", "")), _text(src, number, "messages", answer, "answer")
    if "question_id" in record or "choices" in record:
        qid = scalar_text(src, number, "question_id", record.get("question_id"))
        choices = record.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        turns = first.get("turns") if isinstance(first, dict) else None
        if not isinstance(turns, list) or not turns:
            raise DataValidationError(
                src, number, "choices", 'expected [{"index": 0, "turns": [{"content": ...}]}]',
                reason="wrong_type",
            )  # fmt: skip
        answer = turns[-1].get("content") if isinstance(turns[-1], dict) else turns[-1]
        return qid, str(record.get("model_id", "")), _text(src, number, "choices", answer, "answer")
    raise DataValidationError(
        src, number, "uid", f"in neither Arena-Hard answer layout: {_ANSWER_LAYOUTS}", reason="missing_field"
    )


def read_answers(path: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """``(source, {question id: {"answer", "model", "record"}})`` of an Arena-Hard answer file
    (``model_answer/<model>.jsonl``, either layout); a later answer to a question wins, as in
    Arena-Hard's own loader."""
    src, _, records = read_numbered(path)
    answers = {}
    for number, record in records:
        qid, model, answer = _answer_text(src, number, record)
        answers[qid] = {"answer": answer, "model": model, "record": number}
    return src, answers


@PROMPT_SOURCES.register("arena_hard")
@dataclass
class ArenaHard(PromptSource):
    """Arena-Hard-Auto questions (``questions``: a ``question.jsonl`` in the current or the v0.1
    layout), optionally joined by question id with a ``baseline`` model's answer file, whose
    answers become ``reference_output`` (a pairwise task, judged locally against the baseline).

    Ids are the question ids as strings; kept: ``question_id`` (as in the file), ``layout``,
    ``category`` (and ``subcategory`` / ``cluster``), ``reference_generator``.
    """

    questions: str
    baseline: str | None = None
    limit: int | None = None
    offset: int = 0

    def load(self) -> list[dict[str, Any]]:
        src, _, records = read_numbered(self.questions)
        items, numbers = [], {}
        for number, record in records:
            item = _question(src, number, record)
            if items and item["layout"] != items[0]["layout"]:
                raise DataValidationError(
                    src, number, "uid" if item["layout"] == CURRENT else "question_id",
                    f"{item['layout']} layout after {items[0]['layout']} records: one layout per file",
                    reason="wrong_type",
                )  # fmt: skip
            numbers[item["id"]] = number
            items.append(item)
        items = window(items, self.offset, self.limit)
        if self.baseline is not None:
            base_src, answers = read_answers(self.baseline)
            for item in items:
                answer = answers.get(item["id"])
                if answer is None:
                    field = "uid" if item["layout"] == CURRENT else "question_id"
                    raise DataValidationError(
                        src, numbers[item["id"]], field,
                        f"question '{item['id']}' has no answer in the baseline file {base_src}",
                        reason="missing_answer",
                    )  # fmt: skip
                item["reference_output"] = answer["answer"]
                item["reference_generator"] = answer["model"]
        return items


def answer_id(model: str, question_id: Any, answer: str) -> str:
    """A stable 22-character answer id (Arena-Hard uses a random ``shortuuid``)."""
    return hashlib.sha256(f"{model}\0{question_id}\0{answer}".encode()).hexdigest()[:22]


def answer_row(
    layout: str,
    question_id: Any,
    prompt: str,
    answer: str,
    model: str,
    token_len: int,
    tstamp: float,
) -> dict[str, Any]:
    """One line of Arena-Hard's ``model_answer/<model>.jsonl`` in a question file's layout."""
    ans_id = answer_id(model, question_id, answer)
    if layout == V01:
        return {
            "question_id": question_id,
            "answer_id": ans_id,
            "model_id": model,
            "choices": [{"index": 0, "turns": [{"content": answer, "token_len": token_len}]}],
            "tstamp": tstamp,
        }
    return {
        "uid": question_id,
        "ans_id": ans_id,
        "model": model,
        "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": {"answer": answer}},
        ],
        "tstamp": tstamp,
        "metadata": {"token_len": token_len},
    }
