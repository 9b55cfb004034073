"""IFEval's instruction checkers behind a small API: parse, check (strict / loose), describe, draw.

The checkers are those of ``if-verifiable`` (``if_verifiable.ifeval``, a copy of Google's
``instruction_following_eval`` code, Apache-2.0; ``pip install if-verifiable==0.1.2`` or
``pip install -e '.[ifeval]'``). Scoring follows IFEval's ``evaluation_lib`` exactly:

- **strict**: ``response.strip() and checker.check_following(response)``;
- **loose**: the same on any of 8 variants of the response (:func:`loose_variants`: as is,
  without its first line, its last line, both, and each of these with ``*`` removed);
- an **empty** (or whitespace-only) response follows no instruction, strict or loose.

**Offline sentence and word tokenizers.** Two checker types call nltk's trained Punkt model
(``length_constraints:number_sentences`` through ``instructions_util.count_sentences``,
``change_case:capital_word_frequency`` through ``nltk.word_tokenize``), whose data
(``punkt`` / ``punkt_tab``) cannot be downloaded here. While a check runs,
:func:`offline_tokenizers` patches, in the checkers' ``instructions_util`` module only, the
sentence tokenizer with nltk's *untrained* ``PunktSentenceTokenizer()`` (no abbreviation list:
``Dr. Smith`` is two sentences) and ``word_tokenize`` with the same sentence split followed by
``NLTKWordTokenizer`` (the Treebank tokenizer ``word_tokenize`` uses). The patch is undone on
exit; nltk itself is never modified. How far this moves scores is measured in docs/ifeval.md.
Language detection (``language:response_language``, ``langdetect``) is seeded (``seed = 0``)
during a check, so a response always gets the same verdict; IFEval leaves it unseeded.

The checkers draw missing arguments from Python's module-level ``random``; every call here runs
them with that state seeded and restores it afterwards, so nothing else's random stream moves.
"""

from __future__ import annotations

import difflib
import inspect
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from aries_lit.core.errors import DataValidationError

__all__ = [
    "INSTRUCTION_IDS",
    "Instruction",
    "describe",
    "follows",
    "follows_all",
    "loose_variants",
    "offline_tokenizers",
    "parse_instructions",
    "random_instruction",
]

#: every instruction id IFEval's registry knows (``if_verifiable.ifeval.instructions_registry``;
#: a test checks that the two agree), in the registry's order
INSTRUCTION_IDS: tuple[str, ...] = (
    "keywords:existence",
    "keywords:frequency",
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "language:response_language",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "length_constraints:number_words",
    "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "combination:two_responses",
    "combination:repeat_prompt",
    "startend:end_checker",
    "change_case:capital_word_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "punctuation:no_comma",
    "startend:quotation",
)

INSTALL_HINT = "pip install if-verifiable==0.1.2 (or pip install -e '.[ifeval]')"


@dataclass(frozen=True)
class Instruction:
    """One verifiable instruction: its IFEval id and the checker's arguments (``None`` values dropped)."""

    id: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "kwargs"}`` as plain JSON-ready values."""
        return {"id": self.id, "kwargs": dict(self.kwargs)}


def _registry() -> dict[str, Any]:
    """IFEval's ``INSTRUCTION_DICT`` (id -> checker class), imported on first use."""
    try:
        from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT
    except ImportError as err:
        raise ImportError(
            f"IFEval's checkers need the if-verifiable package: {INSTALL_HINT} ({err})"
        ) from err
    return INSTRUCTION_DICT


def _util_module() -> ModuleType:
    from if_verifiable.ifeval import instructions_util

    return instructions_util


@contextmanager
def _seeded_random(seed: int) -> Iterator[None]:
    """Python's module-level ``random`` seeded with ``seed`` inside, its previous state restored after."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


class _NltkWithOfflineTokenizers:
    """Stands in for the ``nltk`` module inside a checker module: offline ``word_tokenize`` and
    ``sent_tokenize``, every other attribute nltk's own."""

    def __init__(self, nltk: ModuleType) -> None:
        from nltk.tokenize.destructive import NLTKWordTokenizer
        from nltk.tokenize.punkt import PunktSentenceTokenizer

        self._nltk = nltk
        self._sentences = PunktSentenceTokenizer()  # untrained: no abbreviations, no model file
        self._words = NLTKWordTokenizer()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nltk, name)

    def sent_tokenize(self, text: str, language: str = "english") -> list[str]:
        return self._sentences.tokenize(text)

    def word_tokenize(self, text: str, language: str = "english", preserve_line: bool = False) -> list[str]:
        sentences = [text] if preserve_line else self._sentences.tokenize(text)
        return [token for sentence in sentences for token in self._words.tokenize(sentence)]


@contextmanager
def offline_tokenizers(util_module: ModuleType | None = None) -> Iterator[None]:
    """Inside: the checkers of ``util_module`` (an IFEval ``instructions_util`` module; default
    if-verifiable's) split sentences and words with nltk's untrained Punkt and Treebank tokenizers
    instead of the ``punkt`` data, and ``langdetect`` is seeded; all restored on exit."""
    from langdetect import DetectorFactory

    module = util_module if util_module is not None else _util_module()
    proxy = _NltkWithOfflineTokenizers(module.nltk if not isinstance(module.nltk, _NltkWithOfflineTokenizers)
                                       else module.nltk._nltk)  # fmt: skip
    saved = {name: module.__dict__[name] for name in ("nltk", "_get_sentence_tokenizer")}
    saved_seed = DetectorFactory.__dict__.get("seed")
    module.nltk = proxy
    module._get_sentence_tokenizer = lambda: proxy._sentences
    DetectorFactory.seed = 0
    try:
        yield
    finally:
        module.__dict__.update(saved)
        DetectorFactory.seed = saved_seed


def _checker_parameters(checker_class: type) -> list[str]:
    """The argument names of a checker's ``build_description``."""
    params = inspect.signature(checker_class.build_description).parameters
    return [name for name in params if name != "self"]


def _build(instruction: Instruction, prompt: str) -> tuple[Any, str]:
    """A checker built with the instruction's arguments (and the prompt, for checkers that read
    it, as IFEval does), and its description."""
    checker = _registry()[instruction.id](instruction.id)
    with _seeded_random(0):
        description = checker.build_description(**instruction.kwargs)
        args = checker.get_instruction_args()
        if args and "prompt" in args:
            description = checker.build_description(prompt=prompt)
    return checker, description


def parse_instructions(ids: Any, kwargs_list: Any, *, path: Any, record: int | None) -> list[Instruction]:
    """Checked instructions of one record (``instruction_id_list`` and ``kwargs``, IFEval's fields).

    Raises :class:`~aries_lit.core.errors.DataValidationError` naming ``path``, ``record`` and the field
    for: a non-list or empty id list, a non-list kwargs or one of another length, an unknown id,
    a kwargs entry that is not a dict, argument names the checker's ``build_description`` does not
    take, or values it refuses. ``None`` values are dropped (the hub's IFEval gives every record
    every argument name, unused ones ``None``)."""
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise DataValidationError(
            path,
            record,
            "instruction_id_list",
            "expected a non-empty list of instruction ids",
            reason="wrong_type",
        )
    if not isinstance(kwargs_list, list):
        raise DataValidationError(path, record, "kwargs", "expected a list of dicts", reason="wrong_type")
    if len(kwargs_list) != len(ids):
        raise DataValidationError(
            path, record, "kwargs",
            f"{len(kwargs_list)} kwargs for {len(ids)} instruction ids (one dict per id)",
            reason="length_mismatch",
        )  # fmt: skip
    registry = _registry()
    parsed = []
    for i, (instruction_id, kwargs) in enumerate(zip(ids, kwargs_list)):
        if instruction_id not in registry:
            close = difflib.get_close_matches(instruction_id, list(registry), n=1)
            hint = (
                f"; did you mean '{close[0]}'?" if close else "; see aries_lit.instructions.INSTRUCTION_IDS"
            )
            raise DataValidationError(
                path, record, f"instruction_id_list[{i}]", f"unknown instruction id '{instruction_id}'{hint}",
                reason="unknown_instruction",
            )  # fmt: skip
        if not isinstance(kwargs, dict):
            raise DataValidationError(path, record, f"kwargs[{i}]", "expected a dict", reason="wrong_type")
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        allowed = _checker_parameters(registry[instruction_id])
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise DataValidationError(
                path, record, f"kwargs[{i}]",
                f"'{instruction_id}' takes no argument {', '.join(repr(u) for u in unknown)} "
                f"(its arguments: {', '.join(allowed) or 'none'})",
                reason="bad_kwargs",
            )  # fmt: skip
        instruction = Instruction(instruction_id, kwargs)
        try:
            _build(instruction, "")
        except (ValueError, TypeError, KeyError) as err:
            raise DataValidationError(
                path,
                record,
                f"kwargs[{i}]",
                f"'{instruction_id}' refuses its arguments: {err}",
                reason="bad_kwargs",
            ) from err
        parsed.append(instruction)
    return parsed


def loose_variants(response: str) -> list[str]:
    """IFEval's 8 loose variants: the response, without ``*``, without its first line, its last
    line, both, and the last three without ``*`` (stripped, in IFEval's order)."""
    lines = response.split("\n")
    first = "\n".join(lines[1:]).strip()
    last = "\n".join(lines[:-1]).strip()
    both = "\n".join(lines[1:-1]).strip()
    return [response, response.replace("*", ""), first, last, both,
            first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]  # fmt: skip


def follows(instruction: Instruction, prompt: str, response: str, *, loose: bool = False) -> bool:
    """Whether ``response`` to ``prompt`` follows the instruction: IFEval strict, or loose (any of
    :func:`loose_variants`). An empty or whitespace-only response follows nothing."""
    if not response.strip():
        return False
    checker, _ = _build(instruction, prompt)
    candidates = loose_variants(response) if loose else [response]
    with offline_tokenizers():
        return any(bool(text.strip()) and bool(checker.check_following(text)) for text in candidates)


def describe(instruction: Instruction, prompt: str = "") -> str:
    """The checker's own description of the instruction (``build_description`` with its arguments),
    e.g. ``"In your entire response, refrain from the use of any commas."``."""
    return str(_build(instruction, prompt)[1])


def random_instruction(instruction_id: str, rng: random.Random, *, prompt: str = "") -> Instruction:
    """An instruction of type ``instruction_id`` with arguments drawn the way ``build_description()``
    draws them when given none, but from ``rng`` (the module-level ``random`` is seeded from it and
    restored). ``combination:repeat_prompt`` repeats ``prompt``, which must then be given."""
    registry = _registry()
    if instruction_id not in registry:
        raise ValueError(
            f"unknown instruction id '{instruction_id}'; see aries_lit.instructions.INSTRUCTION_IDS"
        )
    checker = registry[instruction_id](instruction_id)
    fixed: dict[str, Any] = {}
    if "prompt_to_repeat" in _checker_parameters(registry[instruction_id]):
        if not prompt:
            raise ValueError(f"'{instruction_id}' repeats the prompt: pass prompt=")
        fixed["prompt_to_repeat"] = prompt
    with _seeded_random(rng.getrandbits(64)):
        checker.build_description(**fixed)
        args = checker.get_instruction_args() or {}
    return Instruction(instruction_id, {k: v for k, v in args.items() if v is not None})


def follows_all(
    instructions: Sequence[Instruction], prompt: str, response: str, *, loose: bool = False
) -> list[bool]:
    """:func:`follows` for each instruction of a prompt, in order."""
    return [follows(inst, prompt, response, loose=loose) for inst in instructions]
