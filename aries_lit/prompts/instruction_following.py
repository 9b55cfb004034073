"""Procedural instruction-following prompts: a short base task plus 1-3 verifiable constraints.

``InstructionFollowingTask`` (prompt source ``instruction_following``) makes items like::

    {"id": "ifp-train-0-3", "split": "train",
     "prompt": "Describe rainy mornings in a few sentences. Your response should contain less than 60
                words. There should be exactly 2 bullet points. Use the markdown bullet points such as: ...",
     "instruction_id_list": ["length_constraints:number_words", "detectable_format:number_bullet_lists"],
     "kwargs": [{"num_words": 60, "relation": "less than"}, {"num_bullets": 2}],
     "task": "Describe rainy mornings in a few sentences.", "topic": "rainy mornings",
     "held_out_instructions": []}

``instruction_id_list`` and ``kwargs`` are IFEval's own field names and values, so the same
checkers (:mod:`aries_lit.instructions`) score an answer: the ``graded`` selector scores the fraction
of constraints met. Each constraint is appended as the checker's own description
(:func:`aries_lit.instructions.describe`) with kwargs chosen so that a compliant answer fits in
about 100 tokens (word limits of at most 90 words, at most 3 paragraphs, sections, bullets,
highlights or placeholders; see :data:`KWARGS_DRAWS`).

The base tasks (:data:`~aries_lit.prompts.instruction_data.BASE_TASKS`, 60) and topics
(:data:`~aries_lit.prompts.instruction_data.TOPICS`, 244) were written for this project, not taken
from IFEval or any other evaluation set. Train, validation and test share no base task and no
topic, for any seed: a fixed shuffle (independent of ``seed``) deals 70% / 15% / 15% of each list
to the three splits. The constraint types in :data:`HELD_OUT_TYPES` (option ``held_out_types``)
never appear in train; validation and test draw from every type, and each record names its
held-out types in ``held_out_instructions``, so an evaluation can report transfer to unseen types.

Excluded types (:data:`EXCLUDED_TYPES` says why): ``language:response_language`` (the check runs
``langdetect``, unreliable on short answers, and the base model writes English),
``length_constraints:number_sentences`` (without NLTK's punkt data the checkers split sentences
with an untrained Punkt tokenizer, which breaks at every abbreviation; sentence counts of short
lists and notes are ambiguous too), and ``detectable_format:constrained_response`` (the answer
must be one of three fixed yes/no/maybe phrases, which no open writing task can be answered
with). The two case checks that stay (``english_capital``, ``english_lowercase``) also ask
``langdetect`` for English: seeded, so always the same verdict, and right on a sentence or more,
but it can misjudge an answer of two or three words.

Items are a deterministic function of the arguments; prompts within one load are distinct.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aries_lit.instructions import (
    INSTRUCTION_IDS,
    Instruction,
    describe,
    parse_instructions,
    random_instruction,
)
from aries_lit.prompts.base import PROMPT_SOURCES, PromptSource
from aries_lit.prompts.instruction_data import BASE_TASKS, TOPICS

SPLITS = ("train", "validation", "test")

#: Shares of base tasks and of topics dealt to validation and test (train gets the rest).
VALIDATION_SHARE = 0.15
TEST_SHARE = 0.15

#: Constraint types kept out of training altogether (validation and test only).
HELD_OUT_TYPES: tuple[str, ...] = (
    "startend:quotation",
    "detectable_format:title",
    "detectable_content:postscript",
    "punctuation:no_comma",
)

#: IFEval types this source never uses, and why.
EXCLUDED_TYPES: dict[str, str] = {
    "language:response_language": "langdetect is unreliable on short answers; the model writes English",
    "length_constraints:number_sentences": "checked with an untrained Punkt splitter (no punkt data)",
    "detectable_format:constrained_response": "a fixed yes/no/maybe answer fits no open writing task",
}

_END_PHRASES = ("Thanks for reading!", "Have a lovely day!", "Any other questions?", "Is that clear?")
_FIRST_WORDS = ("today", "first", "imagine", "every", "here", "sometimes", "remember", "finally")
_COMMON_LETTERS = "etaoinsrl"
_RARE_LETTERS = "zqxj"


def _words(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"num_words": rng.choice(range(40, 91, 10)), "relation": "less than"}
    return {"num_words": rng.choice(range(15, 41, 5)), "relation": "at least"}


def _letters(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {
            "letter": rng.choice(_COMMON_LETTERS),
            "let_frequency": rng.randint(3, 8),
            "let_relation": "at least",
        }
    return {
        "letter": rng.choice(_RARE_LETTERS),
        "let_frequency": rng.randint(2, 4),
        "let_relation": "less than",
    }


def _capitals(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"capital_frequency": rng.randint(2, 5), "capital_relation": "less than"}
    return {"capital_frequency": rng.randint(1, 3), "capital_relation": "at least"}


def _nth_paragraph(rng: random.Random) -> dict[str, Any]:
    paragraphs = rng.randint(2, 3)
    return {
        "num_paragraphs": paragraphs,
        "nth_paragraph": rng.randint(1, paragraphs),
        "first_word": rng.choice(_FIRST_WORDS),
    }


def _keyword_frequency(rng: random.Random) -> dict[str, Any]:
    drawn = dict(random_instruction("keywords:frequency", rng).kwargs)
    return {**drawn, "frequency": rng.randint(1, 3)}


def _fixed(**kwargs: Any) -> Callable[[random.Random], dict[str, Any]]:
    return lambda rng: dict(kwargs)


def _drawn(instruction_id: str) -> Callable[[random.Random], dict[str, Any]]:
    return lambda rng: dict(random_instruction(instruction_id, rng).kwargs)


#: How each used type's kwargs are drawn (capped so that a compliant answer fits ~100 tokens).
#: ``combination:repeat_prompt`` gets ``prompt_to_repeat`` = the base task when the prompt is built.
KWARGS_DRAWS: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "keywords:existence": _drawn("keywords:existence"),
    "keywords:frequency": _keyword_frequency,
    "keywords:forbidden_words": _drawn("keywords:forbidden_words"),
    "keywords:letter_frequency": _letters,
    "length_constraints:number_words": _words,
    "length_constraints:number_paragraphs": lambda rng: {"num_paragraphs": rng.randint(2, 3)},
    "length_constraints:nth_paragraph_first_word": _nth_paragraph,
    "detectable_content:number_placeholders": lambda rng: {"num_placeholders": rng.randint(1, 3)},
    "detectable_content:postscript": lambda rng: {"postscript_marker": rng.choice(("P.S.", "P.P.S"))},
    "detectable_format:number_bullet_lists": lambda rng: {"num_bullets": rng.randint(2, 4)},
    "detectable_format:number_highlighted_sections": lambda rng: {"num_highlights": rng.randint(1, 3)},
    "detectable_format:multiple_sections": lambda rng: {
        "section_spliter": rng.choice(("SECTION", "PART")),
        "num_sections": rng.randint(2, 3),
    },
    "detectable_format:json_format": _fixed(),
    "detectable_format:title": _fixed(),
    "combination:two_responses": _fixed(),
    "combination:repeat_prompt": _fixed(),
    "startend:end_checker": lambda rng: {"end_phrase": rng.choice(_END_PHRASES)},
    "startend:quotation": _fixed(),
    "change_case:capital_word_frequency": _capitals,
    "change_case:english_capital": _fixed(),
    "change_case:english_lowercase": _fixed(),
    "punctuation:no_comma": _fixed(),
}

#: The types this source draws from (IFEval's minus :data:`EXCLUDED_TYPES`), in a fixed order.
CONSTRAINT_TYPES: tuple[str, ...] = tuple(KWARGS_DRAWS)

_STRUCTURE = (
    "length_constraints:number_paragraphs",
    "length_constraints:nth_paragraph_first_word",
    "detectable_format:multiple_sections",
    "detectable_format:number_bullet_lists",
    "detectable_format:title",
    "detectable_content:postscript",
    "startend:end_checker",
    "startend:quotation",
    "combination:repeat_prompt",
)
_CASE = ("change_case:english_capital", "change_case:english_lowercase", "change_case:capital_word_frequency")

#: Pairs of types never combined in one prompt (contradictory or checked against each other).
CONFLICTS: frozenset[frozenset[str]] = frozenset(
    frozenset(pair)
    for pair in [
        *((a, b) for i, a in enumerate(_CASE) for b in _CASE[i + 1 :]),
        *(("detectable_format:json_format", t) for t in (*_STRUCTURE, "punctuation:no_comma",
                                                         "combination:two_responses",
                                                         "detectable_format:number_highlighted_sections")),
        *(("combination:two_responses", t) for t in _STRUCTURE),
        ("length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word"),
        ("length_constraints:number_paragraphs", "detectable_format:multiple_sections"),
        ("length_constraints:nth_paragraph_first_word", "detectable_format:multiple_sections"),
        ("change_case:english_lowercase", "detectable_format:multiple_sections"),
        ("startend:quotation", "startend:end_checker"),
        ("startend:quotation", "combination:repeat_prompt"),
        ("startend:quotation", "detectable_content:postscript"),
        ("startend:end_checker", "detectable_content:postscript"),
        ("startend:quotation", "detectable_format:title"),
        ("combination:repeat_prompt", "detectable_format:title"),
        ("combination:repeat_prompt", "length_constraints:nth_paragraph_first_word"),
        ("keywords:existence", "keywords:forbidden_words"),
    ]
)  # fmt: skip


def _deal(items: Sequence[str], salt: str) -> dict[str, tuple[str, ...]]:
    """``items`` dealt to the splits by a fixed shuffle (``VALIDATION_SHARE``/``TEST_SHARE``)."""
    order = list(items)
    random.Random(f"aries_lit.instruction_following:{salt}").shuffle(order)
    n_val, n_test = round(len(order) * VALIDATION_SHARE), round(len(order) * TEST_SHARE)
    return {
        "test": tuple(order[:n_test]),
        "validation": tuple(order[n_test : n_test + n_val]),
        "train": tuple(order[n_test + n_val :]),
    }


#: Base tasks and topics of each split (disjoint; independent of any seed).
SPLIT_TASKS: dict[str, tuple[str, ...]] = _deal(BASE_TASKS, "tasks")
SPLIT_TOPICS: dict[str, tuple[str, ...]] = _deal(TOPICS, "topics")


def conflicting(a: str, b: str) -> bool:
    """Whether constraint types ``a`` and ``b`` are never combined (:data:`CONFLICTS`)."""
    return frozenset((a, b)) in CONFLICTS


def record_instructions(
    record: Mapping[str, Any], source: str = "prompts", number: int | None = None
) -> list[Instruction] | None:
    """The checkable instructions of a prompt record (IFEval's ``instruction_id_list`` and
    ``kwargs``), or ``None`` when it has none; bad ids or kwargs raise a
    :class:`~aries_lit.core.errors.DataValidationError` naming ``source``, the prompt id and ``number``."""
    ids = record.get("instruction_id_list")
    if not ids:
        return None
    kwargs = record.get("kwargs")
    if kwargs is None:
        kwargs = [{} for _ in ids]
    return parse_instructions(ids, kwargs, path=f"{source} (prompt '{record.get('id')}')", record=number)


@PROMPT_SOURCES.register("instruction_following")
@dataclass
class InstructionFollowingTask(PromptSource):
    """Base task + 1-3 IFEval-style constraints, scored by the IFEval checkers (module docstring).

    Args:
        split: ``train``, ``validation`` or ``test`` (disjoint base tasks and topics).
        count: prompts to make (distinct prompt texts).
        seed: the draw (the splits' tasks and topics do not depend on it).
        min_constraints, max_constraints: constraints per prompt, drawn uniformly in that range.
        held_out_types: constraint types kept out of train (default :data:`HELD_OUT_TYPES`).
    """

    split: str = "train"
    count: int = 1000
    seed: int = 0
    min_constraints: int = 1
    max_constraints: int = 3
    held_out_types: list[str] = field(default_factory=lambda: list(HELD_OUT_TYPES))

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split: must be one of {', '.join(SPLITS)}; got '{self.split}'")
        if self.count < 0:
            raise ValueError(f"count: must be >= 0; got {self.count}")
        if not 1 <= self.min_constraints <= self.max_constraints <= 3:
            raise ValueError(
                "min_constraints, max_constraints: need 1 <= min_constraints <= max_constraints <= 3; "
                f"got {self.min_constraints}, {self.max_constraints}"
            )
        for name in self.held_out_types:
            if name not in CONSTRAINT_TYPES:
                known = "not used by this source" if name in INSTRUCTION_IDS else "unknown"
                raise ValueError(
                    f"held_out_types: '{name}' is {known}; choose from {', '.join(CONSTRAINT_TYPES)}"
                )
        if len(set(CONSTRAINT_TYPES) - set(self.held_out_types)) < 3:
            raise ValueError("held_out_types: leaves fewer than 3 constraint types for train")

    def constraint_types(self) -> tuple[str, ...]:
        """The types this split draws from (held-out types removed for train)."""
        if self.split != "train":
            return CONSTRAINT_TYPES
        return tuple(t for t in CONSTRAINT_TYPES if t not in self.held_out_types)

    def _constraints(self, rng: random.Random, task: str) -> list[Instruction]:
        pool = list(self.constraint_types())
        wanted = rng.randint(self.min_constraints, self.max_constraints)
        chosen: list[Instruction] = []
        while len(chosen) < wanted and pool:
            kind = rng.choice(pool)
            kwargs = KWARGS_DRAWS[kind](rng)
            if kind == "combination:repeat_prompt":
                kwargs = {"prompt_to_repeat": task}
            chosen.append(Instruction(kind, kwargs))
            pool = [t for t in pool if t != kind and not conflicting(t, kind)]
        return chosen

    def load(self) -> list[dict[str, Any]]:
        rng = random.Random(f"aries_lit.instruction_following:{self.split}:{self.seed}")
        tasks, topics = SPLIT_TASKS[self.split], SPLIT_TOPICS[self.split]
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        attempts = 0
        while len(items) < self.count:
            attempts += 1
            if attempts > 50 * self.count + 1000:
                raise ValueError(f"count: could not draw {self.count} distinct {self.split} prompts")
            topic = rng.choice(topics)
            task = rng.choice(tasks).replace("{topic}", topic)
            instructions = self._constraints(rng, task)
            prompt = " ".join([task, *(describe(i, task) for i in instructions)])
            if prompt in seen:
                continue
            seen.add(prompt)
            ids = [i.id for i in instructions]
            items.append(
                {
                    "id": f"ifp-{self.split}-{self.seed}-{len(items)}",
                    "prompt": prompt,
                    "instruction_id_list": ids,
                    "kwargs": [dict(i.kwargs) for i in instructions],
                    "split": self.split,
                    "task": task,
                    "topic": topic,
                    "held_out_instructions": [t for t in ids if t in self.held_out_types],
                }
            )
        return items


__all__ = [
    "CONFLICTS",
    "CONSTRAINT_TYPES",
    "EXCLUDED_TYPES",
    "HELD_OUT_TYPES",
    "KWARGS_DRAWS",
    "SPLITS",
    "SPLIT_TASKS",
    "SPLIT_TOPICS",
    "InstructionFollowingTask",
    "conflicting",
    "record_instructions",
]
