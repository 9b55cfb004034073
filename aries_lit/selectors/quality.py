"""Candidate quality checks shared by the selectors: template echo, and the pair-quality audit.

**Template echo.** A small policy asked to refine its answer with a refinement template
(:mod:`aries_lit.prompts.templates`) often copies the template's scaffolding instead of
answering: ``"Remember that the original QUESTION ... Refined RESPONSE"``. A
:class:`TemplateEchoDetector` is built from the template texts themselves (by default every
template of :data:`~aries_lit.prompts.templates.TEMPLATES`), so it follows them when they
change. A text echoes a template when it has (first hit wins):

- a template **header**: an upper-case label with a colon, such as ``QUESTION:``,
  ``EXAMPLE RESPONSE:``, ``RESPONSE:``, ``ANALYSIS:`` or ``REFINEMENT:``, or a line of at most
  3 words that ends in a template keyword (``"Refined RESPONSE"``, ``"**Improved RESPONSE**"``);
- at least :attr:`~TemplateEchoDetector.keyword_hits` (2) occurrences of the templates'
  upper-case **keywords** (``QUESTION``, ``EXAMPLE``, ``RESPONSE``, ``REFINEMENT``,
  ``ANALYSIS``), e.g. ``"the original QUESTION ... Refined RESPONSE"``; one alone
  (``"Great QUESTION!"``) is not enough, and lower-case "the question" never counts;
- a **verbatim run** of the template's instruction text: :attr:`~TemplateEchoDetector.run_words`
  (8) consecutive words of it, or a whole instruction sentence of at least 5 words
  (``"Please provide a better RESPONSE."``), compared case-insensitively.

Headers, keywords and runs that occur in the prompt itself are not held against an answer.

**Audit.** :func:`audit_pairs` describes the pairs a selector made (see
:meth:`aries_lit.selectors.base.Selector.select`): for the chosen and the rejected answers,
how many finished (``finish_reason`` not ``length``), echo a template, state an answer in an
expected form and state the gold answer (:func:`~aries_lit.answers.extraction.stated_answer`;
these two only over pairs whose prompt has a gold answer), plus the candidates the selector
ruled out by reason and the groups it skipped by reason.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from aries_lit.answers.extraction import answers_match, gold_answer, stated_answer
from aries_lit.core.chat import prompt_text
from aries_lit.prompts.templates import TEMPLATES

__all__ = [
    "TemplateEchoDetector",
    "audit_pairs",
    "audit_summary",
    "audit_unpaired",
    "echo_detector",
    "is_finished",
    "template_echo",
]

_FIELD_RE = re.compile(r"\{question\}|\{example_response\}")
_HEADER_RE = re.compile(r"\b[A-Z]{3,}(?: [A-Z]{3,})*:")
_KEYWORD_RE = re.compile(r"\b[A-Z]{4,}\b")
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE_RE = re.compile(r"[^.!?\n<>]+")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _runs(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class TemplateEchoDetector:
    """Finds refinement-template scaffolding in generated answers (see the module docstring).

    Args:
        templates: the template texts (with their ``{question}`` / ``{example_response}``
            fields); the fields' contents are not part of the scaffolding.
        keyword_hits: how many occurrences of upper-case template keywords make an echo.
        header_words: a line of at most this many words ending in a keyword is a header.
        run_words: how many consecutive template words make an echo.
        min_sentence_words: shorter instruction sentences count only inside a longer run.
    """

    def __init__(
        self,
        templates: Iterable[str],
        keyword_hits: int = 2,
        header_words: int = 3,
        run_words: int = 8,
        min_sentence_words: int = 5,
    ) -> None:
        self.templates = tuple(templates)
        self.keyword_hits = keyword_hits
        self.header_words = header_words
        self.run_words = run_words
        headers: set[str] = set()
        keywords: set[str] = set()
        self._runs: set[tuple[str, ...]] = set()
        self._sentences: set[tuple[str, ...]] = set()
        for template in self.templates:
            for part in _FIELD_RE.split(template):
                headers.update(_HEADER_RE.findall(part))
                keywords.update(_KEYWORD_RE.findall(part))
                self._runs |= _runs(_words(part), run_words)
                for sentence in _SENTENCE_RE.findall(part):
                    words = tuple(_words(sentence))
                    if min_sentence_words <= len(words) < run_words:
                        self._sentences.add(words)
        # Longest first, so "EXAMPLE RESPONSE:" is reported rather than "RESPONSE:".
        self.headers: tuple[str, ...] = tuple(sorted(headers, key=lambda h: (-len(h), h)))
        self.keywords: frozenset[str] = frozenset(keywords)
        self._sentence_lengths = sorted({len(s) for s in self._sentences})

    def find(self, text: str, prompt: str | list[dict[str, Any]] | None = None) -> str | None:
        """Why ``text`` echoes a template (e.g. ``"header 'QUESTION:'"``), or ``None`` if it does not.

        ``prompt`` (the question, a string or chat messages): scaffolding it contains itself
        is not counted.
        """
        if not text:
            return None
        question = prompt_text(prompt) if prompt is not None else ""
        for header in self.headers:
            if header in text and header not in question:
                return f"header {header!r}"
        for line in text.splitlines():
            label = line.strip().strip("*#_:` \t")
            words = label.split()
            if 0 < len(words) <= self.header_words and words[-1] in self.keywords and label not in question:
                return f"header {label!r}"
        hits = Counter(k for k in _KEYWORD_RE.findall(text) if k in self.keywords and k not in question)
        if sum(hits.values()) >= self.keyword_hits:
            return "keywords " + ", ".join(sorted(hits))
        words = _words(text)
        asked = _words(question)
        run = self._first_run(words, asked)
        if run is not None:
            return f"verbatim {' '.join(run)!r}"
        return None

    def __call__(self, text: str, prompt: str | list[dict[str, Any]] | None = None) -> bool:
        """Whether ``text`` echoes a template."""
        return self.find(text, prompt) is not None

    def _first_run(self, words: list[str], asked: list[str]) -> tuple[str, ...] | None:
        """The first template run in ``words`` (in text order) that the question does not hold."""
        asked_runs = _runs(asked, self.run_words)
        for i in range(len(words) - self.run_words + 1):
            run = tuple(words[i : i + self.run_words])
            if run in self._runs and run not in asked_runs:
                return run
        for n in self._sentence_lengths:
            asked_n = _runs(asked, n)
            for i in range(len(words) - n + 1):
                run = tuple(words[i : i + n])
                if run in self._sentences and run not in asked_n:
                    return run
        return None

    def __repr__(self) -> str:
        return f"TemplateEchoDetector({len(self.templates)} templates, headers={list(self.headers)})"


@functools.lru_cache(maxsize=16)
def _cached_detector(templates: tuple[str, ...]) -> TemplateEchoDetector:
    return TemplateEchoDetector(templates)


def echo_detector(extra_templates: Iterable[str] = ()) -> TemplateEchoDetector:
    """The (cached) detector for the built-in templates plus ``extra_templates`` (texts)."""
    texts = tuple(dict.fromkeys([*TEMPLATES.values(), *extra_templates]))
    return _cached_detector(texts)


def template_echo(
    text: str, prompt: str | list[dict[str, Any]] | None = None, extra_templates: Iterable[str] = ()
) -> bool:
    """Whether ``text`` reproduces refinement-template scaffolding (built-in templates + extras)."""
    return echo_detector(extra_templates)(text, prompt)


def is_finished(candidate: dict[str, Any]) -> bool:
    """Whether a candidate ended on its own (its ``finish_reason`` is not ``"length"``)."""
    return candidate.get("finish_reason") != "length"


def _share(count: int | None, total: int) -> float | None:
    return None if count is None or total == 0 else round(count / total, 4)


def _side(
    items: list[tuple[dict[str, Any], dict[str, Any], str | None]], detector: TemplateEchoDetector
) -> dict[str, Any]:
    """Counts and shares for one side (chosen or rejected) of the pairs."""
    total = len(items)
    with_gold = [(c, g, gold) for c, g, gold in items if gold is not None]
    counts: dict[str, int | None] = {
        "finished": sum(is_finished(c) for c, _, _ in items),
        "template_echo": sum(detector(c["text"], g["prompt"]) for c, g, _ in items),
        "states_answer": None,
        "states_gold": None,
    }
    if with_gold:
        stated = [(stated_answer(c["text"]), gold) for c, _, gold in with_gold]
        counts["states_answer"] = sum(s is not None for s, _ in stated)
        counts["states_gold"] = sum(answers_match(s, gold) for s, gold in stated)
    out: dict[str, Any] = {}
    for key, count in counts.items():
        out[key] = count
        out[f"{key}_share"] = _share(count, len(with_gold) if key.startswith("states_") else total)
    return out


def audit_pairs(
    groups: Sequence[dict[str, Any]],
    made: Sequence[tuple[int, int, int]],
    stats: Counter,
    rejection_reasons: Iterable[str] = ("truncated",),
    detector: TemplateEchoDetector | None = None,
) -> dict[str, Any]:
    """The pair-quality audit of a selection (the ``audit`` of ``selection_stats.json``).

    Args:
        groups: the prompt groups (as validated by the selector).
        made: ``(group position, chosen position, rejected position)`` of every pair.
        stats: the selector's counts (``candidates/<reason>``, ``skipped/<reason>``).
        rejection_reasons: the ``candidates/<reason>`` counts that mean "could not be chosen".
        detector: the template-echo detector (default: the built-in templates).

    Returns ``{"pairs", "pairs_with_gold", "chosen": {...}, "rejected": {...},
    "candidate_rejections": {reason: n}, "groups_skipped": {reason: n}}``; each side has
    ``finished``, ``template_echo``, ``states_answer``, ``states_gold`` (counts) and the same
    with ``_share`` (fractions, 4 decimals). ``states_*`` are over the pairs with a gold answer
    and ``None`` when there are none.
    """
    detector = detector or echo_detector()
    chosen, rejected = [], []
    for g, c, r in made:
        group = groups[g]
        gold = gold_answer(group.get("answer"))
        chosen.append((group["candidates"][c], group, gold))
        rejected.append((group["candidates"][r], group, gold))
    return {
        "pairs": len(made),
        "pairs_with_gold": sum(gold is not None for _, _, gold in chosen),
        "chosen": _side(chosen, detector),
        "rejected": _side(rejected, detector),
        "candidate_rejections": {
            reason: int(stats.get(f"candidates/{reason}", 0)) for reason in rejection_reasons
        },
        "groups_skipped": {
            k.split("/", 1)[1]: int(v) for k, v in sorted(stats.items()) if k.startswith("skipped/") and v
        },
    }


def audit_unpaired(
    groups: Sequence[dict[str, Any]],
    desirable: Sequence[tuple[int, int]],
    undesirable: Sequence[tuple[int, int]],
    stats: Counter,
    rejection_reasons: Iterable[str] = ("truncated",),
    detector: TemplateEchoDetector | None = None,
) -> dict[str, Any]:
    """The quality audit of an unpaired selection (one labelled record per candidate).

    ``desirable`` / ``undesirable``: ``(group position, candidate position)`` of every record of
    that label. Returns ``{"records", "desirable": {...}, "undesirable": {...},
    "candidate_rejections", "groups_skipped"}``; each side has ``examples`` and
    ``examples_with_gold`` and the counts and shares of :func:`audit_pairs`'s sides, over its own
    examples.
    """
    detector = detector or echo_detector()
    out: dict[str, Any] = {"records": len(desirable) + len(undesirable)}
    for name, items in (("desirable", desirable), ("undesirable", undesirable)):
        side = [
            (groups[g]["candidates"][p], groups[g], gold_answer(groups[g].get("answer"))) for g, p in items
        ]
        out[name] = {
            "examples": len(side),
            "examples_with_gold": sum(gold is not None for _, _, gold in side),
            **_side(side, detector),
        }
    out["candidate_rejections"] = {
        reason: int(stats.get(f"candidates/{reason}", 0)) for reason in rejection_reasons
    }
    out["groups_skipped"] = {
        k.split("/", 1)[1]: int(v) for k, v in sorted(stats.items()) if k.startswith("skipped/") and v
    }
    return out


def audit_summary(audit: dict[str, Any]) -> str:
    """One readable line of an audit, e.g. ``chosen: finished 15/15, echo 0/15, states gold 15/15; ...``
    (``desirable: ...; undesirable: ...`` for an unpaired one)."""
    unpaired = "desirable" in audit
    if not audit or not audit.get("records" if unpaired else "pairs"):
        return f"audit: no {'records' if unpaired else 'pairs'}"
    parts = []
    for side in ("desirable", "undesirable") if unpaired else ("chosen", "rejected"):
        a = audit[side]
        total = a["examples"] if unpaired else audit["pairs"]
        bits = [f"finished {a['finished']}/{total}", f"template echo {a['template_echo']}/{total}"]
        if a["states_answer"] is not None:
            n = a["examples_with_gold"] if unpaired else audit["pairs_with_gold"]
            bits += [f"states an answer {a['states_answer']}/{n}", f"states the gold {a['states_gold']}/{n}"]
        parts.append(f"{side}: " + ", ".join(bits))
    return "audit: " + "; ".join(parts)
