"""Final-answer extraction and comparison for tasks with a known gold answer (GSM8K, MATH-style).

Used by the ``verifier`` selector and by evaluation, so both grade answers the same way.

The extraction cascade of :func:`extract_answer`, first hit wins:

1. ``#### <answer>``: the GSM8K marker (its *first* occurrence: a model that keeps
   generating after its answer often starts a new few-shot question).
2. ``\\boxed{<answer>}`` (or ``\\fbox{...}``): the *last* one, nested braces handled.
3. ``The answer is <answer>`` / ``Answer: <answer>`` / ``final answer = ...``: the *last*
   such phrase, the first number after it in its sentence (the result when that number starts
   an expression: ``"The answer is 7 - 3 = 4"`` gives ``4``).
4. The last number anywhere in the text.

:func:`find_answer` runs the same cascade and also says in which *form* the answer was found
(:class:`Extraction`). A text *states* its answer (:func:`stated_answer`) when the form is one
of :data:`STATED_FORMS`: a ``#### n`` line, a ``\\boxed{n}``, "the answer is n" / ``Answer: n``
with the number right after the phrase, a bare number as the whole text, or a concluding
``= n`` / ``is n`` (the last number follows ``=``, ``is``, ``equals``, ... and at most
:data:`CONCLUSION_TAIL_CHARS` characters follow it). A last number buried in other text
("... it consists of 2 paragraphs") is extracted but not *stated*.

Numbers are normalized by :func:`normalize_number`: currency signs, thousands commas,
percent signs, units, trailing periods and LaTeX decoration are dropped, fractions and
decimals become one canonical exact form (``"3/4"`` and ``"0.75"`` both give ``"0.75"``,
``"2.50"`` gives ``"2.5"``, ``"$1,234.00"`` gives ``"1234"``). :func:`answers_match`
compares two answers numerically (with a tolerance) when both are numbers and as
case-folded text otherwise.

Whether a text answers its gold (the ``builtin`` or ``math_verify`` checker) is decided in
:mod:`aries_lit.answers.checking`.

Example::

    >>> extract_answer("She pays 3 * $4 = $12.\\n#### 12")
    '12'
    >>> extract_answer("So the answer is $\\\\boxed{\\\\frac{3}{4}}$.")
    '0.75'
    >>> answers_match(extract_answer("The total is 1,234 apples."), gold_answer("... #### 1234"))
    True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from aries_lit.prompts.sources import gsm8k_gold

__all__ = [
    "CONCLUSION_TAIL_CHARS",
    "STATED_FORMS",
    "Extraction",
    "answers_match",
    "extract_answer",
    "extract_boxed",
    "extract_last_number",
    "find_answer",
    "gold_answer",
    "normalize_number",
    "parse_number",
    "stated_answer",
]

#: The forms of :class:`Extraction` in which a text states its answer (see :func:`find_answer`).
STATED_FORMS: frozenset[str] = frozenset({"gsm8k", "boxed", "answer_phrase", "bare", "conclusion"})

#: A concluding ``= n`` / ``is n`` counts as stated when at most this many characters (stripped)
#: follow the number, e.g. a closing remark ("I hope this helps!"), not a paragraph of other text.
CONCLUSION_TAIL_CHARS = 200

# A number token: optional sign (not after a word character, so "3-5" is 3 and 5), then
# thousands-grouped digits, plain digits or a leading-dot decimal, an optional fraction
# "/<digits>". A trailing period ("1234.") is not part of the number.
_SIGN = r"(?:(?<![\w)\]}])[-\u2212])?"
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_NUMBER = _SIGN + r"(?:\$\s?)?" + _DIGITS + r"(?:\s?/\s?\d+(?:\.\d+)?)?"
_NUMBER_RE = re.compile(r"(?<![\d.])" + _NUMBER)

_GSM8K_RE = re.compile(r"####\s*([^\n]*)")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS_RE = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|was|would\s+be|will\s+be|should\s+be|:|=)\s*:?",
    re.IGNORECASE,
)
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_FRAC_SHORT_RE = re.compile(r"\\[dt]?frac\s*(\d)(\d)")
_TEXT_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_NOISE_RE = re.compile(r"\\[,;:! ]|\\left|\\right|\\displaystyle|\^\{?\\circ\}?|\\circ|\\%|\\\$")
_UNIT_TAIL_RE = re.compile(r"^\s*(?:%|percent\b|[A-Za-z\u00b0\u20ac\u00a3][\w\u00b0/.\- ]*)?\s*[.!?;:]*\s*$")
_WORD_PUNCT_RE = re.compile(r"[\s.!?;:,'\"`*]+")
_SENTENCE_END_RE = re.compile(r"(?<!\d)\.(?!\d)|\n")
# Markdown / LaTeX decoration that may sit between a phrase and its number: "Answer: **12**".
_DECORATION = r"[\s*_$\\(\[:\"'`]*"
# What may come between "the answer is" and a stated number: decoration and a few filler words.
_PHRASE_GAP_RE = re.compile(
    _DECORATION
    + r"(?:(?:simply|just|therefore|thus|hence|clearly|indeed|exactly|now|then|so|equal\s+to|"
    + r"approximately|about)\s*[,:]?\s+){0,2}"
    + _DECORATION
)
# "<number> <op> <number> ... =": the start of a worked expression whose result follows the "=".
_EXPRESSION_RE = re.compile(
    _DECORATION
    + _NUMBER
    + r"(?:\s*(?:[-+*/\u00d7\u00f7\u2212x]|\\times|\\cdot|\\div)\s*"
    + _NUMBER
    + r")+\s*=\s*"
)
# A concluding statement right before the last number: "... = 4", "... is 4", "equals $4".
_CONCLUSION_RE = re.compile(
    r"(?:=|\b(?:is|are|was|were|equals|equal\s+to|gives|makes|yields|gets?|got|becomes|leaves))"
    r"\s*:?" + _DECORATION + r"$",
    re.IGNORECASE,
)


def parse_number(s: str | int | float | Fraction) -> Fraction | None:
    """The exact value of a string that *is* a number, up to decoration; ``None`` otherwise.

    Accepted decoration: surrounding whitespace and ``$``/``\\$``, thousands commas,
    a trailing period, ``%``, trailing unit words (``"42 apples"``), LaTeX
    ``\\frac{a}{b}``, ``\\text{...}``, ``\\left``/``\\right`` and math-mode dollars.
    Leading words are not accepted (``"x = 5"`` is ``None``; use :func:`extract_answer`
    for free text). Fractions ``"3/4"`` are exact; floats are converted through their
    shortest decimal representation.
    """
    if isinstance(s, Fraction):
        return s
    if isinstance(s, bool):
        return None
    if isinstance(s, int):
        return Fraction(s)
    if isinstance(s, float):
        return Fraction(repr(s)) if math.isfinite(s) else None
    if not isinstance(s, str):
        return None
    text = _unlatex(s).strip()
    text = text.strip("$ \t\n")
    match = _NUMBER_RE.match(text)
    if match is None:
        return None
    if not _UNIT_TAIL_RE.match(text[match.end() :]):
        return None
    return _to_fraction(match.group(0))


def normalize_number(s: str | int | float | Fraction | None) -> str | None:
    """The canonical string of a number, or ``None`` if ``s`` is not a number.

    Integers print without decimals (``"1,234.00"`` -> ``"1234"``), terminating fractions as
    decimals (``"3/4"`` -> ``"0.75"``, ``"2.50"`` -> ``"2.5"``), others as ``p/q``
    (``"2/6"`` -> ``"1/3"``). See :func:`parse_number` for the accepted decoration.
    """
    if s is None:
        return None
    value = parse_number(s)
    return None if value is None else _format(value)


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (nested braces handled), or ``None``."""
    starts = [m.end() for m in _BOXED_RE.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


def extract_last_number(text: str) -> str | None:
    """The canonical form of the last number in ``text``, or ``None`` if it has none."""
    numbers = _numbers(text)
    return _format(numbers[-1]) if numbers else None


@dataclass(frozen=True)
class Extraction:
    """A final answer found by :func:`find_answer` and the form it was found in.

    ``form`` is ``"gsm8k"`` (``#### n``), ``"boxed"``, ``"answer_phrase"`` ("the answer is n",
    the number right after the phrase), ``"answer_phrase_loose"`` (a number later in that
    phrase's sentence: "the answer is short, it has 2 parts"), ``"bare"`` (the whole text is
    the number), ``"conclusion"`` (a closing ``= n`` / ``is n``), ``"last_number"`` (the last
    number, found nowhere special), or ``None`` with ``value`` ``None`` when nothing is found.
    """

    value: str | None
    form: str | None

    @property
    def stated(self) -> bool:
        """Whether the text states its answer in one of the expected forms (:data:`STATED_FORMS`)."""
        return self.value is not None and self.form in STATED_FORMS


def find_answer(text: str | None) -> Extraction:
    """The final answer of a free-text solution and how it was found (the cascade of the module).

    ``find_answer(t).value`` is :func:`extract_answer` ``(t)``; ``.form`` tells whether the
    text *states* that answer (see :class:`Extraction`).
    """
    if not text:
        return Extraction(None, None)
    text = str(text)
    gsm = _GSM8K_RE.search(text)
    if gsm is not None:
        found = _first_number(gsm.group(1))
        if found is not None:
            return Extraction(found, "gsm8k")
    boxed = extract_boxed(text)
    if boxed is not None:
        found = normalize_number(boxed) or _first_number(boxed)
        if found is not None:
            return Extraction(found, "boxed")
    phrases = list(_ANSWER_IS_RE.finditer(text))
    if phrases:
        tail = text[phrases[-1].end() :]
        sentence = _SENTENCE_END_RE.split(tail.strip(), maxsplit=1)[0]
        found = _phrase_answer(sentence)
        if found is not None:
            return found
    plain = _unlatex(text)
    last = None
    for match in _NUMBER_RE.finditer(plain):
        if _to_fraction(match.group(0)) is not None:
            last = match
    if last is not None:
        value = _format(_to_fraction(last.group(0)))
        return Extraction(value, _last_number_form(text, plain, last))
    # No number anywhere: a textual answer (multiple choice, a word).
    if boxed:
        return Extraction(_unlatex(boxed).strip() or None, "boxed")
    if phrases:
        words = _WORD_PUNCT_RE.sub(" ", sentence).strip()
        if words:
            return Extraction(words, "answer_phrase")
    return Extraction(None, None)


def extract_answer(text: str | None) -> str | None:
    """The final answer of a free-text solution, normalized; ``None`` when none is found.

    Cascade (first hit wins): the first ``#### <answer>``, then the last ``\\boxed{}``,
    then the last "the answer is / answer:" phrase, then the last number in the text.
    Numeric answers come back in the canonical form of :func:`normalize_number`
    (``"#### 1,234"`` -> ``"1234"``); a non-numeric boxed or "answer is" answer comes back
    as its stripped text (``"\\boxed{B}"`` -> ``"B"``) when the text holds no number at all.
    :func:`find_answer` also reports the form the answer was found in.
    """
    return find_answer(text).value


def stated_answer(text: str | None) -> str | None:
    """The answer ``text`` *states* in an expected form, or ``None``.

    Expected forms (:data:`STATED_FORMS`): ``#### n``, ``\\boxed{n}``, "the answer is n" /
    ``**Answer:** n`` (the number right after the phrase), a bare number as the whole text,
    or a concluding ``= n`` / ``is n``. A number that merely comes last in unrelated text
    does not count::

        >>> stated_answer("4 - 0 = 4. The final answer is 4.")
        '4'
        >>> stated_answer("4 - 0 is 4. The response consists of 2 paragraphs") is None
        True
    """
    found = find_answer(text)
    return found.value if found.stated else None


def gold_answer(answer: object) -> str | None:
    """A prompt record's gold ``answer`` ready for :func:`answers_match`; ``None`` when it has none.

    A whole GSM8K solution (``... #### 72``) is reduced to its final number the way the ``gsm8k``
    prompt source reads it (:func:`~aries_lit.prompts.sources.gsm8k_gold`: the text after the last
    ``####``), in the canonical form of :func:`normalize_number`; when that text is not a number
    (``#### 72 apples, then ...``), :func:`extract_answer` finds the answer in the solution.
    """
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return None
    gold = str(answer)
    if "####" not in gold:
        return gold.strip()
    try:
        number = normalize_number(gsm8k_gold(gold))
    except ValueError:  # nothing after the last ``####``
        number = None
    return number if number is not None else extract_answer(gold)


def answers_match(
    pred: str | int | float | None,
    gold: str | int | float | None,
    rel_tol: float = 1e-6,
    abs_tol: float = 1e-6,
) -> bool:
    """Whether an extracted answer equals the gold answer.

    Both are normalized with :func:`parse_number`; two numbers match when equal exactly or
    within ``rel_tol``/``abs_tol`` (``math.isclose``), so ``"0.75"``, ``"3/4"`` and
    ``"$0.75"`` all match ``"0.75"``. Otherwise the strings match when equal after
    case-folding and dropping whitespace and trailing punctuation. ``None`` matches nothing.
    ``pred`` should already be an extracted answer (see :func:`extract_answer`).
    """
    if pred is None or gold is None:
        return False
    a, b = parse_number(pred), parse_number(gold)
    if a is not None and b is not None:
        return a == b or math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=abs_tol)
    if a is not None or b is not None:
        return False
    return _canon_text(str(pred)) == _canon_text(str(gold))


# --- helpers ---------------------------------------------------------------------------


def _phrase_answer(sentence: str) -> Extraction | None:
    """The answer in the sentence after "the answer is", or ``None`` when it holds no number."""
    plain = _unlatex(sentence)
    expression = _EXPRESSION_RE.match(plain)
    if expression is not None:
        result = _NUMBER_RE.match(plain, expression.end())
        if result is not None and _to_fraction(result.group(0)) is not None:
            return Extraction(_format(_to_fraction(result.group(0))), "answer_phrase")
    found = _first_number(sentence)
    if found is None:
        return None
    gap = _PHRASE_GAP_RE.match(plain)
    right_after = _NUMBER_RE.match(plain, gap.end()) if gap is not None else None
    stated = right_after is not None and _to_fraction(right_after.group(0)) is not None
    return Extraction(found, "answer_phrase" if stated else "answer_phrase_loose")


def _last_number_form(text: str, plain: str, last: re.Match[str]) -> str:
    """``bare``, ``conclusion`` or ``last_number``: how the last number of ``text`` stands."""
    whole = text.strip().strip("*_` \t\n")
    if parse_number(whole) is not None and len(_numbers(whole)) == 1:
        return "bare"
    before, after = plain[: last.start()], plain[last.end() :]
    if _CONCLUSION_RE.search(before) and len(after.strip()) <= CONCLUSION_TAIL_CHARS:
        return "conclusion"
    return "last_number"


def _unlatex(s: str) -> str:
    s = _FRAC_RE.sub(r"\1/\2", s)
    s = _FRAC_SHORT_RE.sub(r"\1/\2", s)
    s = _TEXT_RE.sub(r" \1", s)
    s = _LATEX_NOISE_RE.sub(lambda m: "%" if m.group(0) == "\\%" else "", s)
    return s.replace("\u2212", "-").replace("{", "").replace("}", "")


def _to_fraction(token: str) -> Fraction | None:
    token = token.replace("$", "").replace(",", "").replace(" ", "").replace("\u2212", "-")
    try:
        if "/" in token:
            num, den = token.split("/", 1)
            den_value = Fraction(den)
            return None if den_value == 0 else Fraction(num) / den_value
        return Fraction(token)
    except (ValueError, ZeroDivisionError):
        return None


def _numbers(text: str) -> list[Fraction]:
    text = _unlatex(text)
    values = (_to_fraction(m.group(0)) for m in _NUMBER_RE.finditer(text))
    return [v for v in values if v is not None]


def _first_number(text: str) -> str | None:
    numbers = _numbers(text)
    return _format(numbers[0]) if numbers else None


def _format(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:  # not a terminating decimal
        return f"{value.numerator}/{value.denominator}"
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole, rest = divmod(value.numerator, value.denominator)
    digits = ""
    while rest:
        rest *= 10
        d, rest = divmod(rest, value.denominator)
        digits += str(d)
    return f"{sign}{whole}.{digits}"


def _canon_text(s: str) -> str:
    return _WORD_PUNCT_RE.sub(" ", _unlatex(s)).strip().casefold()
