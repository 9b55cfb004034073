"""Verifier selection: a correct answer is chosen, an incorrect one rejected (tasks with a gold answer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from aries_lit.answers.checking import is_correct, validate_checker
from aries_lit.answers.extraction import (
    answers_match,
    extract_answer,
    extract_boxed,
    extract_last_number,
    gold_answer,
    stated_answer,
)
from aries_lit.prompts.templates import RefinementTemplate
from aries_lit.selectors.base import SELECTORS, Choice, Selector


def _gsm8k_only(text: str) -> str | None:
    return extract_answer(text) if "####" in text else None


def _boxed_only(text: str) -> str | None:
    return extract_answer(text) if extract_boxed(text) is not None else None


#: Answer extractors by name: the full cascade of :func:`extract_answer` (``auto``), only a
#: ``#### n`` line (``gsm8k``), only a ``\\boxed{}`` (``boxed``), or the last number.
EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "auto": extract_answer,
    "gsm8k": _gsm8k_only,
    "boxed": _boxed_only,
    "last_number": extract_last_number,
}


@SELECTORS.register("verifier")
class VerifierSelector(Selector):
    """Chosen = a correct candidate (the latest one), rejected = an incorrect one (the earliest).

    A usable candidate is **correct** when all of these hold, else incorrect, counted as
    ``candidates/<reason>`` by the first check it fails:

    1. it finished: a candidate cut at the token limit (``finish_reason == "length"``) is
       never chosen; with ``skip_truncated=True`` (the default) it takes no part at all, with
       ``skip_truncated=False`` it may still be the rejected answer (``truncated``);
    2. it does not echo the refinement template's scaffolding (``reject_template_echo``,
       :mod:`aries_lit.selectors.quality`; ``template_echo``);
    3. it *states* an answer in an expected form (``require_stated_answer``: ``#### n``,
       ``\\boxed{n}``, "the answer is n", a bare number, a concluding ``= n`` / ``is n``; see
       :func:`~aries_lit.answers.extraction.stated_answer`; ``no_stated_answer``), and
    4. its answer matches the gold (``wrong_answer``): the answer of the ``extract`` extractor
       (``auto``, ``gsm8k``, ``boxed`` or ``last_number``, see :data:`EXTRACTORS`) and, with
       ``require_stated_answer``, the stated answer too, compared with the group's gold
       ``answer`` by :func:`~aries_lit.answers.extraction.answers_match`. With
       ``checker="math_verify"`` (``pip install math-verify``) the whole text is compared with
       the gold by ``math_verify.verify(parse(gold), parse(text))`` instead (see
       :func:`~aries_lit.answers.checking.is_correct`; the stated-answer check 3 still applies,
       as a check of form only). ``checker="builtin"`` (the default) is the cascade above.

    A gold answer that is a whole GSM8K solution (``... #### 72``) is reduced to its final
    number. ``scores`` are 1.0 (correct) / 0.0 (incorrect) / ``None`` (not used: truncated
    with ``skip_truncated``). Groups are skipped as ``no_answer`` (no gold), ``all_correct``,
    ``none_correct``, ``truncated``/``too_few`` (fewer than two usable candidates);
    candidates with no extractable answer are also counted as ``candidates/no_answer_found``.
    ``require_stated_answer=False, reject_template_echo=False`` gives the older, looser
    grading (any extracted answer, e.g. the last number of the text, counts).

    ``prefer_latest_correct=False`` picks the earliest correct candidate instead;
    ``prefer_earliest_incorrect=False`` the latest incorrect one. ``echo_templates``: more
    refinement templates (names of :data:`~aries_lit.prompts.templates.TEMPLATES` or texts
    with ``{question}`` and ``{example_response}``) whose scaffolding counts as echo.
    """

    rejection_reasons = ("truncated", "template_echo", "no_stated_answer", "wrong_answer")

    def __init__(
        self,
        extract: str = "auto",
        prefer_latest_correct: bool = True,
        prefer_earliest_incorrect: bool = True,
        skip_truncated: bool = True,
        require_stated_answer: bool = True,
        reject_template_echo: bool = True,
        echo_templates: list[str] | None = None,
        checker: str = "builtin",
    ) -> None:
        super().__init__(skip_truncated=skip_truncated)
        if extract not in EXTRACTORS:
            raise ValueError(f"unknown answer extractor '{extract}'; known: {', '.join(EXTRACTORS)}")
        self.extract = extract
        self.checker = validate_checker(checker)
        self.prefer_latest_correct = prefer_latest_correct
        self.prefer_earliest_incorrect = prefer_earliest_incorrect
        self.require_stated_answer = require_stated_answer
        self.reject_template_echo = reject_template_echo
        self.add_echo_templates([RefinementTemplate.from_spec(t).text for t in echo_templates or []])

    @staticmethod
    def gold(group: dict[str, Any]) -> str | None:
        """The group's gold answer, or ``None`` when it has none."""
        return gold_answer(group.get("answer"))

    def verdict(self, candidate: dict[str, Any], gold: str, prompt: Any = None) -> str | None:
        """``None`` when ``candidate`` is correct, else why not (``truncated``, ``template_echo``,
        ``no_stated_answer`` or ``wrong_answer``; the order of the class docstring)."""
        text = candidate["text"]
        if self.truncated(candidate):
            return "truncated"
        if self.reject_template_echo and self.echo_detector(text, prompt):
            return "template_echo"
        if self.require_stated_answer:
            stated = stated_answer(text)
            if stated is None:
                return "no_stated_answer"
            if self.checker == "builtin" and not answers_match(stated, gold):
                return "wrong_answer"
        if not is_correct(text, gold, self.checker, extract=EXTRACTORS[self.extract]):
            return "wrong_answer"
        return None

    def score(self, groups: list[dict[str, Any]], usable: list[list[int]], stats: Counter) -> list[list[Any]]:
        extractor = EXTRACTORS[self.extract]
        out = []
        for group, positions in zip(groups, usable):
            scores: list[Any] = [None] * len(group["candidates"])
            gold = self.gold(group)
            if gold is not None:
                for pos in positions:
                    candidate = group["candidates"][pos]
                    if extractor(candidate["text"]) is None:
                        stats["candidates/no_answer_found"] += 1
                    reason = self.verdict(candidate, gold, group["prompt"])
                    if reason is not None:
                        stats[f"candidates/{reason}"] += 1
                    scores[pos] = 1.0 if reason is None else 0.0
            out.append(scores)
        return out

    def choose(self, group: dict[str, Any], usable: list[int], scores: list[Any], stats: Counter) -> Choice:
        if self.gold(group) is None:
            return "no_answer"
        reason = self.usable_or_reason(group, usable)
        if reason:
            return reason
        correct = [p for p in usable if scores[p] == 1.0]
        wrong = [p for p in usable if scores[p] == 0.0]
        if not wrong:
            return "all_correct"
        if not correct:
            return "none_correct"
        chosen = correct[-1] if self.prefer_latest_correct else correct[0]
        rejected = wrong[0] if self.prefer_earliest_incorrect else wrong[-1]
        return chosen, rejected

    def __repr__(self) -> str:
        return (
            f"VerifierSelector(extract={self.extract!r}, skip_truncated={self.skip_truncated}, "
            f"require_stated_answer={self.require_stated_answer}, "
            f"reject_template_echo={self.reject_template_echo}, checker={self.checker!r})"
        )
