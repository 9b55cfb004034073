"""LLM-as-a-judge selection: the Self-Rewarding baseline (Yuan et al. 2024, arXiv 2401.10020).

The policy grades each of its own candidates with the additive 5-point rubric prompt of
Self-Rewarding Language Models (Figure 2 of the paper); the highest-graded candidate is
chosen and the lowest rejected, ties dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from aries_lit.core.chat import prompt_text
from aries_lit.selectors.base import SELECTORS, ScoredSelector

__all__ = ["SELF_REWARDING_JUDGE_PROMPT", "LLMJudgeSelector", "parse_judge_score"]

#: The LLM-as-a-Judge prompt of Self-Rewarding Language Models (Yuan et al. 2024, Figure 2),
#: with ``{prompt}`` and ``{response}`` fields.
SELF_REWARDING_JUDGE_PROMPT = """\
Review the user's question and the corresponding response using the additive 5-point scoring system \
described below. Points are accumulated based on the satisfaction of each criterion:
- Add 1 point if the response is relevant and provides some information related to the user's inquiry, \
even if it is incomplete or contains some irrelevant content.
- Add another point if the response addresses a substantial portion of the user's question, but does \
not completely resolve the query or provide a direct answer.
- Award a third point if the response answers the basic elements of the user's question in a useful \
way, regardless of whether it seems to have been written by an AI Assistant or if it has elements \
typically found in blogs or search results.
- Grant a fourth point if the response is clearly written from an AI Assistant's perspective, \
addressing the user's question directly and comprehensively, and is well-organized and helpful, even \
if there is slight room for improvement in clarity, conciseness or focus.
- Bestow a fifth point for a response that is impeccably tailored to the user's question by an AI \
Assistant, without extraneous information, reflecting expert knowledge, and demonstrating a \
high-quality, engaging, and insightful answer.

User: {prompt}
<response>{response}</response>

After examining the user's instruction and the response:
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Score: <total points>"

Remember to assess from the AI Assistant perspective, utilizing web search knowledge as necessary. To \
evaluate the response in alignment with this additive scoring model, we'll systematically attribute \
points based on the outlined criteria."""

_WORDS = {"zero": 0.0, "one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0}
_VALUE = r"(-?\d+(?:\.\d+)?|(?:zero|one|two|three|four|five)\b)"
_OUT_OF = r"(?:\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?))?"
# "Score: 4", "score: 4/5", "**Score:** 3.5", "Total score = 4", "Score - 4 points", "Score: **4**".
_SCORE_RE = re.compile(
    r"\bscore\b(?:[\s*_:=]|-(?=\s))*(?:is\s*)?[\s*_]*" + _VALUE + r"\**" + _OUT_OF, re.IGNORECASE
)
# Fallback without the word "score": "4 points", "4/5", "4 out of 5".
_POINTS_RE = re.compile(
    r"(?<![\w.])" + _VALUE + r"\**\s*(?:points?\b" + _OUT_OF + r"|(?:/|out\s+of)\s*(\d+(?:\.\d+)?))",
    re.IGNORECASE,
)


def _value(number: str, out_of: str | None) -> float | None:
    value = _WORDS.get(number.lower())
    if value is None:
        value = float(number)
    if out_of is not None and float(out_of) != 5.0:
        return None
    return value if 0.0 <= value <= 5.0 else None


def parse_judge_score(text: str | None) -> float | None:
    """The 0..5 grade in a judge's answer, or ``None`` when there is none.

    The last ``Score: <n>`` mention wins (``"Score: 4"``, ``"score: 4/5"``,
    ``"**Score:** 3.5"``, ``"Score: four"``); without one, the last ``"<n> points"`` /
    ``"<n>/5"`` / ``"<n> out of 5"``. A winning value outside 0..5, or out of a scale
    other than 5 (``"8/10"``), gives ``None``, as does text with no grade.
    """
    if not text:
        return None
    for pattern in (_SCORE_RE, _POINTS_RE):
        matches = list(pattern.finditer(text))
        if matches:
            last = matches[-1]
            out_of = next((g for g in last.groups()[1:] if g is not None), None)
            return _value(last.group(1), out_of)
    return None


@SELECTORS.register("llm_judge")
class LLMJudgeSelector(ScoredSelector):
    """Grades each candidate with an LLM judge (by default the policy itself) and picks best/worst.

    ``model``: the judge (for Self-Rewarding, the current policy). ``backend``: a backend
    name (``"transformers"``, ``"vllm"``), a spec dict for ``aries_lit.generators.BACKENDS``
    (``{"class_path": "vllm", "init_args": {"tensor_parallel_size": 2}}``; ``model`` is filled
    in), or an already built backend object (used as is and not closed). Each candidate is graded
    ``num_samples`` times (the paper averages 3 samples; with ``temperature == 0`` one is
    enough) and the parseable grades averaged; a candidate with none counts as
    ``candidates/unparseable`` and takes no part. ``prompt_template`` replaces the
    Self-Rewarding rubric (it needs ``{prompt}`` and ``{response}``); ``progress`` shows the
    backend's progress bar.
    Judgements are kept on ``self.last_judgements`` (one list of texts per group and candidate).
    """

    def __init__(
        self,
        model: str | None = None,
        backend: Any = "transformers",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        min_margin: float = 0.0,
        num_samples: int = 1,
        seed: int = 0,
        prompt_template: str = SELF_REWARDING_JUDGE_PROMPT,
        progress: bool = False,
        skip_truncated: bool = True,
    ) -> None:
        super().__init__(min_margin=min_margin, skip_truncated=skip_truncated)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        missing = [f for f in ("{prompt}", "{response}") if f not in prompt_template]
        if missing:
            raise ValueError(f"judge prompt_template lacks the field(s) {', '.join(missing)}")
        if (
            model is None
            and isinstance(backend, (str, dict))
            and not (isinstance(backend, dict) and "model" in backend)
        ):
            raise ValueError("llm_judge needs `model` (the judge model) unless `backend` is a built backend")
        self.model = model
        self.backend = backend
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.prompt_template = prompt_template
        self.progress = progress
        self.last_judgements: list[list[list[str]]] = []

    def judge_prompt(self, prompt: str | list[dict[str, Any]], response: str) -> str:
        """The rubric filled with one (prompt, response)."""
        return self.prompt_template.replace("{prompt}", prompt_text(prompt)).replace("{response}", response)

    def _backend(self) -> tuple[Any, bool]:
        """The backend to use and whether this selector owns it (and must close it)."""
        if not isinstance(self.backend, (str, dict)):
            return self.backend, False
        from aries_lit.generators import BACKENDS

        spec = {"class_path": self.backend} if isinstance(self.backend, str) else dict(self.backend)
        if self.model is not None:
            spec.setdefault("model", self.model)
        backend = BACKENDS.build(spec)
        backend.progress = self.progress
        return backend, True

    def score(self, groups: list[dict[str, Any]], usable: list[list[int]], stats: Counter) -> list[list[Any]]:
        from aries_lit.core.chat import chat_context
        from aries_lit.generators.backends.base import SamplingSettings

        where = [(g, pos) for g, positions in enumerate(usable) if len(positions) >= 2 for pos in positions]
        out: list[list[Any]] = [[None] * len(group["candidates"]) for group in groups]
        self.last_judgements = [[[] for _ in group["candidates"]] for group in groups]
        if not where:
            return out
        backend, owned = self._backend()
        try:
            contexts = []
            for g, pos in where:
                text = self.judge_prompt(groups[g]["prompt"], groups[g]["candidates"][pos]["text"])
                contexts.extend([chat_context(backend.tokenizer, text)] * self.num_samples)
            settings = SamplingSettings(
                max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed
            )
            completions = backend.generate(contexts, settings)
        finally:
            if owned:
                backend.close()
        if len(completions) != len(contexts):
            raise RuntimeError(
                f"judge backend returned {len(completions)} completions for {len(contexts)} contexts"
            )
        k = self.num_samples
        for n, (g, pos) in enumerate(where):
            texts = [c.text for c in completions[n * k : (n + 1) * k]]
            self.last_judgements[g][pos] = texts
            grades = [v for v in map(parse_judge_score, texts) if v is not None]
            stats["judge/unparseable_grades"] += len(texts) - len(grades)
            if grades:
                out[g][pos] = sum(grades) / len(grades)
            else:
                stats["candidates/unparseable"] += 1
        stats["candidates/scored"] += len(where)
        return out

    def __repr__(self) -> str:
        backend = self.backend if isinstance(self.backend, (str, dict)) else type(self.backend).__name__
        return (
            f"LLMJudgeSelector(model={self.model!r}, backend={backend!r}, temperature={self.temperature}, "
            f"num_samples={self.num_samples}, min_margin={self.min_margin})"
        )
