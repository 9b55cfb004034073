"""Whether a free-text answer reaches its gold answer: the one place where the verifier selector
and evaluation decide it, with a ``checker``:

* ``"builtin"`` (the default): the extraction cascade of :mod:`aries_lit.answers.extraction`
  (:func:`~aries_lit.answers.extraction.extract_answer`) and
  :func:`~aries_lit.answers.extraction.answers_match`;
* ``"math_verify"``: Hugging Face's ``math-verify`` package (``pip install math-verify``):
  ``verify(parse(gold), parse(text))``, symbolic comparison through SymPy; imported only when
  chosen.

:data:`CHECKERS` lists them; docs/answer_checking.md compares them on real outputs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from aries_lit.answers.extraction import answers_match, extract_answer

__all__ = ["CHECKERS", "is_correct", "validate_checker"]

#: Answer checkers accepted by :func:`is_correct` (and the ``checker`` option of the verifier
#: selector and of evaluation).
CHECKERS: tuple[str, ...] = ("builtin", "math_verify")


def validate_checker(checker: str) -> str:
    """``checker`` when it is one of :data:`CHECKERS`; a ``ValueError`` naming them otherwise."""
    if checker not in CHECKERS:
        raise ValueError(f"unknown answer checker {checker!r}; allowed: {', '.join(CHECKERS)}")
    return checker


def is_correct(
    answer_text: str | None,
    gold: str | int | float | None,
    checker: str = "builtin",
    extract: Callable[[str], str | None] | None = None,
) -> bool:
    """Whether the free-text answer ``answer_text`` reaches the ``gold`` answer.

    ``checker="builtin"``: ``answers_match(extract(answer_text), gold)`` with ``extract``
    defaulting to :func:`extract_answer`. ``checker="math_verify"``: the ``math-verify`` package,
    ``verify(parse(gold), parse(answer_text))`` (gold first; it finds ``\\boxed{}``, ``#### n``,
    LaTeX and plain numbers itself, so ``extract`` is not used). ``gold`` should already be
    reduced by :func:`gold_answer`. ``None`` text or gold is never correct.
    """
    validate_checker(checker)
    if answer_text is None or gold is None:
        return False
    if checker == "builtin":
        return answers_match((extract or extract_answer)(str(answer_text)), gold)
    return _math_verify_match(str(answer_text), str(gold))


def _math_verify_match(text: str, gold: str) -> bool:
    try:
        from math_verify import parse, verify
    except ImportError as err:
        raise ImportError(
            "checker 'math_verify' needs the math-verify package: pip install math-verify"
        ) from err
    # math-verify bounds its SymPy work with signal.alarm, which only the main thread may use.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    gold_parsed = parse(gold, parsing_timeout=timeout)
    if not gold_parsed:
        return False
    return bool(verify(gold_parsed, parse(text, parsing_timeout=timeout), timeout_seconds=timeout))
