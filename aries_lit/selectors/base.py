"""The selector contract: prompt groups with candidate answers in, preference pairs out.

A *prompt group* is one prompt with its generated candidates::

    {"id": "gsm8k-17", "prompt": "..." | [chat messages], "answer": "72" | None,
     "candidates": [{"index": 0, "text": "...", "finish_reason": "stop", "completion_tokens": 93}, ...]}

For sequential self-refinement, candidate ``index`` 0 is ``y1`` (the direct answer) and
``N-1`` the last refinement; for parallel sampling it is the sample number.

A selector turns each group into at most one preference pair in TRL's interchange format
plus provenance::

    {"id", "prompt", "chosen", "rejected", "chosen_index", "rejected_index",
     "scores": [float | None per candidate, by position], "selector": name, ["answer"]}

and counts what it did in :attr:`SelectionResult.stats` (``groups``, ``pairs``,
``skipped/<reason>`` per group dropped, ``candidates/<reason>`` per candidate ignored), so
a run can report e.g. "1000 groups -> 812 pairs; skipped 120 tie, 68 truncated". Every
selection also gets a pair-quality audit, :attr:`SelectionResult.audit` (how many chosen and
rejected answers finished, echo the refinement template, state the gold answer; see
:func:`aries_lit.selectors.quality.audit_pairs`).

Subclasses implement :meth:`Selector.score` (optional: scores per candidate, batched
over all groups) and :meth:`Selector.choose` (which two candidates form the pair). Score
based selectors (reward model, LLM judge, user scorers) derive from
:class:`ScoredSelector`, which picks the highest-scored candidate as chosen and the
lowest as rejected. Register a selector with ``@SELECTORS.register("name")``.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aries_lit.core.registry import Registry
from aries_lit.selectors.quality import TemplateEchoDetector, audit_pairs, audit_summary, echo_detector

__all__ = ["SELECTORS", "Choice", "ScoredSelector", "SelectionResult", "Selector", "scoring_record"]

#: What :meth:`Selector.choose` returns: positions ``(chosen, rejected)`` or a skip reason.
Choice = tuple[int, int] | str


@dataclass
class SelectionResult:
    """The pairs a selector made and the counts of what it did.

    ``stats`` keys: ``groups`` (groups seen), ``pairs`` (pairs made), ``skipped/<reason>``
    (one per group without a pair: ``tie``, ``truncated``, ``identical``, ``too_few``,
    ``unparseable``, ``small_margin``, ``all_correct``, ``none_correct``, ``no_answer``),
    ``candidates/<reason>`` (one per candidate left out: ``truncated``, ``unparseable``, ...).
    ``audit``: the pair-quality audit of :func:`aries_lit.selectors.quality.audit_pairs`.
    """

    pairs: list[dict[str, Any]]
    stats: Counter = field(default_factory=Counter)
    selector: str = ""
    audit: dict[str, Any] = field(default_factory=dict)
    #: what scoring cost (see :func:`scoring_record`); empty for a selector that scores nothing
    scoring: dict[str, Any] = field(default_factory=dict)
    #: what :meth:`summary` calls the records (``stats["pairs"]`` counts them either way):
    #: ``pairs``, or ``records`` for the unpaired selector's one record per candidate
    unit: str = "pairs"

    def scoring_summary(self) -> str:
        """One readable line of :attr:`scoring` (empty when nothing was scored)."""
        s = self.scoring
        if not s:
            return ""
        hits = f", {s['cache_hits']} cache hits" if s.get("cache_hits") else ""
        return (
            f"scoring: {s['candidates']} candidates{hits} in {s['seconds']:.1f} s "
            f"({s['candidates_per_s']:.1f} candidates/s, {s['pairs_per_s']:.2f} pairs/s)"
        )

    def audit_summary(self) -> str:
        """One readable line of the audit (``audit: chosen: finished 7/7, ...``)."""
        return audit_summary(self.audit)

    def skipped(self) -> int:
        """Groups that gave no pair."""
        return sum(v for k, v in self.stats.items() if k.startswith("skipped/"))

    def summary(self) -> str:
        """One readable line, e.g. ``rule: 10 groups -> 7 pairs; skipped 3 (tie 2, truncated 1)``."""
        stats = self.stats
        head = f"{self.selector or 'selector'}: {stats['groups']} groups -> {stats['pairs']} {self.unit}"
        skipped = sorted(
            (k.split("/", 1)[1], v) for k, v in self.stats.items() if k.startswith("skipped/") and v
        )
        if skipped:
            head += f"; skipped {self.skipped()} (" + ", ".join(f"{k} {v}" for k, v in skipped) + ")"
        ignored = sorted(
            (k.split("/", 1)[1], v) for k, v in self.stats.items() if k.startswith("candidates/") and v
        )
        if ignored:
            head += "; candidates " + ", ".join(f"{k} {v}" for k, v in ignored)
        other = sorted(
            (k, v)
            for k, v in self.stats.items()
            if v
            and k not in ("groups", "pairs")
            and not k.startswith(("skipped/", "candidates/", "scoring/"))
        )
        if other:
            head += "; " + ", ".join(f"{k} {v}" for k, v in other)
        return head


def scoring_record(candidates: int, pairs: int, seconds: float, cache_hits: int = 0) -> dict[str, Any]:
    """What scoring cost: candidates scored, pairs made, seconds spent in :meth:`Selector.score`,
    and the rates (``selection_stats.json``'s ``"scoring"``; timings vary from run to run, so they
    stay out of the counts in ``stats``)."""
    rate = (lambda n: round(n / seconds, 3)) if seconds > 0 else (lambda n: 0.0)
    return {
        "candidates": candidates,
        "cache_hits": int(cache_hits),
        "pairs": pairs,
        "seconds": round(seconds, 3),
        "candidates_per_s": rate(candidates),
        "pairs_per_s": rate(pairs),
    }


class Selector:
    """Base class: turns prompt groups into preference pairs.

    ``skip_truncated``: candidates cut off at the token limit (``finish_reason ==
    "length"``) take no part in selection (counted as ``candidates/truncated``); a group
    left without the candidates it needs is skipped as ``skipped/truncated``.

    Template echo (:mod:`aries_lit.selectors.quality`) is judged against the built-in
    refinement templates plus :attr:`extra_echo_templates` (``aries-lit select`` adds the
    template recorded in the generation folder's manifest).
    """

    registry_name: ClassVar[str]
    #: The ``candidates/<reason>`` counts that mean "this candidate could not be chosen",
    #: reported in the audit's ``candidate_rejections``.
    rejection_reasons: ClassVar[tuple[str, ...]] = ("truncated",)

    def __init__(self, skip_truncated: bool = True) -> None:
        self.skip_truncated = skip_truncated
        self.extra_echo_templates: list[str] = []

    def add_echo_templates(self, templates: list[str]) -> None:
        """Also treat these refinement-template texts as scaffolding that answers must not echo."""
        extra = getattr(self, "extra_echo_templates", [])
        self.extra_echo_templates = [*extra, *(t for t in templates if t not in extra)]

    @property
    def echo_detector(self) -> TemplateEchoDetector:
        """The template-echo detector for the built-in templates and :attr:`extra_echo_templates`."""
        return echo_detector(getattr(self, "extra_echo_templates", []))

    @property
    def name(self) -> str:
        """The registered short name (or the class name of an unregistered selector)."""
        return self.__class__.__dict__.get("registry_name") or type(self).__name__

    def provenance(self) -> dict[str, Any]:
        """What to record about the models that made the selection (``selection_stats.json``), e.g.
        ``{"reward_model": <resolved path>}``; ``evaluate`` warns when its judge selected a checkpoint's
        training data. Nothing by default."""
        return {}

    # -- the two hooks ------------------------------------------------------------------

    def score(self, groups: list[dict[str, Any]], usable: list[list[int]], stats: Counter) -> list[list[Any]]:
        """Scores per candidate (by position) of every group; ``None`` where not scored.

        ``usable[g]`` are the positions of group ``g`` that may be scored (truncated
        candidates removed when ``skip_truncated``). The default scores nothing.
        """
        return [[None] * len(g["candidates"]) for g in groups]

    def choose(self, group: dict[str, Any], usable: list[int], scores: list[Any], stats: Counter) -> Choice:
        """``(chosen_position, rejected_position)`` for one group, or the reason it gives no pair."""
        raise NotImplementedError

    # -- the driver -----------------------------------------------------------------------

    def select(self, groups: Iterable[dict[str, Any]]) -> SelectionResult:
        """Make at most one preference pair per group; see the module docstring for formats."""
        groups = [self._check_group(g, i) for i, g in enumerate(groups)]
        stats: Counter = Counter(groups=len(groups), pairs=0)
        usable = [self._usable(g, stats) for g in groups]
        t0 = time.perf_counter()
        all_scores = self.score(groups, usable, stats) if groups else []
        seconds = time.perf_counter() - t0
        if len(all_scores) != len(groups):
            raise RuntimeError(
                f"{self.name}.score returned {len(all_scores)} score lists for {len(groups)} groups"
            )
        pairs, made = [], []
        for g, (group, positions, scores) in enumerate(zip(groups, usable, all_scores)):
            choice = self.choose(group, positions, scores, stats)
            if isinstance(choice, str):
                stats[f"skipped/{choice}"] += 1
                continue
            chosen, rejected = choice
            candidates = group["candidates"]
            if chosen == rejected:
                stats["skipped/too_few"] += 1
                continue
            if candidates[chosen]["text"].strip() == candidates[rejected]["text"].strip():
                stats["skipped/identical"] += 1
                continue
            pairs.append(self._record(group, chosen, rejected, scores))
            made.append((g, chosen, rejected))
            stats["pairs"] += 1
        audit = audit_pairs(groups, made, stats, self.rejection_reasons, self.echo_detector)
        scored = sum(s is not None for scores in all_scores for s in scores)
        result = SelectionResult(pairs=pairs, stats=stats, selector=self.name, audit=audit)
        if scored:
            result.scoring = scoring_record(
                scored, stats["pairs"], seconds, stats.get("scoring/cache_hits", 0)
            )
        return result

    def __call__(self, groups: Iterable[dict[str, Any]]) -> SelectionResult:
        return self.select(groups)

    # -- helpers for subclasses -------------------------------------------------------------

    def truncated(self, candidate: dict[str, Any]) -> bool:
        """Whether ``candidate`` stopped at the token limit."""
        return candidate.get("finish_reason") == "length"

    def usable_or_reason(self, group: dict[str, Any], usable: list[int], needed: int = 2) -> str | None:
        """The skip reason when fewer than ``needed`` candidates are usable, else ``None``."""
        if len(usable) >= needed:
            return None
        return "truncated" if len(group["candidates"]) >= needed else "too_few"

    def _usable(self, group: dict[str, Any], stats: Counter) -> list[int]:
        positions = []
        for pos, cand in enumerate(group["candidates"]):
            if self.skip_truncated and self.truncated(cand):
                stats["candidates/truncated"] += 1
            else:
                positions.append(pos)
        return positions

    def _record(self, group: dict[str, Any], chosen: int, rejected: int, scores: list[Any]) -> dict[str, Any]:
        cands = group["candidates"]
        record = {
            "id": group["id"],
            "prompt": copy.deepcopy(group["prompt"]),
            "chosen": cands[chosen]["text"],
            "rejected": cands[rejected]["text"],
            "chosen_index": cands[chosen]["index"],
            "rejected_index": cands[rejected]["index"],
            "scores": [None if s is None else float(s) for s in scores],
            "selector": self.name,
        }
        if group.get("answer") is not None:
            record["answer"] = group["answer"]
        return record

    @staticmethod
    def _check_group(group: Any, i: int) -> dict[str, Any]:
        """Validate one group; returns a shallow copy with candidates sorted by ``index``."""
        where = f"prompt group {i}"
        if not isinstance(group, dict):
            raise TypeError(f"{where}: expected a dict, got {type(group).__name__}")
        where += f" (id={group.get('id')!r})"
        for key in ("id", "prompt", "candidates"):
            if key not in group:
                raise ValueError(f"{where}: missing field '{key}'")
        if not isinstance(group["prompt"], (str, list)):
            raise ValueError(f"{where}: field 'prompt' must be a string or a list of chat messages")
        if not isinstance(group["candidates"], list):
            raise ValueError(f"{where}: field 'candidates' must be a list")
        candidates = []
        for j, cand in enumerate(group["candidates"]):
            if not isinstance(cand, dict) or not isinstance(cand.get("text"), str):
                raise ValueError(f"{where}: candidates[{j}] needs a string field 'text'")
            if "index" not in cand:
                cand = {**cand, "index": j}
            elif not isinstance(cand["index"], int):
                raise ValueError(f"{where}: candidates[{j}].index must be an int, got {cand['index']!r}")
            candidates.append(cand)
        candidates.sort(key=lambda c: c["index"])
        return {**group, "candidates": candidates}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(skip_truncated={self.skip_truncated})"


class ScoredSelector(Selector):
    """Chosen = highest score, rejected = lowest, among the usable scored candidates.

    Ties on the best (worst) score go to the latest (earliest) candidate, which for
    sequential refinement prefers the later refinement as chosen and the direct answer as
    rejected. A group whose best and worst scores are equal is skipped as ``tie``; one
    whose margin ``best - worst <= min_margin`` (with ``min_margin > 0``) as
    ``small_margin``. A group with fewer than two scored candidates is skipped as
    ``unparseable`` when scoring failed (``score`` returned ``None`` for a usable
    candidate), else as ``truncated``/``too_few``.
    """

    rejection_reasons: ClassVar[tuple[str, ...]] = ("truncated", "unparseable")

    def __init__(self, min_margin: float = 0.0, skip_truncated: bool = True) -> None:
        super().__init__(skip_truncated=skip_truncated)
        if min_margin < 0:
            raise ValueError(f"min_margin must be >= 0, got {min_margin}")
        self.min_margin = float(min_margin)

    def choose(self, group: dict[str, Any], usable: list[int], scores: list[Any], stats: Counter) -> Choice:
        reason = self.usable_or_reason(group, usable)
        if reason:
            return reason
        scored = [p for p in usable if scores[p] is not None]
        if len(scored) < 2:
            return "unparseable"
        best = max(scored, key=lambda p: (scores[p], p))
        worst = min(scored, key=lambda p: (scores[p], p))
        margin = scores[best] - scores[worst]
        if margin == 0:
            return "tie"
        if margin <= self.min_margin:
            return "small_margin"
        return best, worst


SELECTORS: Registry[Selector] = Registry("selectors", Selector)
