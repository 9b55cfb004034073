"""A user-defined generation backend, in the user's own module (no edit of aries_lit).

``calculator`` answers arithmetic questions by rule, with no model: greedy decoding is always
right, sampling slips by one with probability ``slip_rate``, so parallel sampling or refinement
give candidates a verifier can rank. It runs the whole collect path (generate -> select) in
seconds, without weights or a GPU::

    ARIES_LIT_PLUGINS=my_backends PYTHONPATH=examples/custom_backend aries-lit generate \\
        --model calculator --prompts '{class_path: arithmetic, init_args: {count: 8}}' \\
        --generator '{class_path: parallel_sampling, init_args: {num_candidates: 4, backend: calculator}}'
"""

from __future__ import annotations

import random
import re
from typing import Any

from aries_lit.generators import BACKENDS, Backend, Completion, SamplingSettings
from aries_lit.prompts.arithmetic import evaluate

#: an expression of non-negative integers such as ``7 - 3`` or ``12 + 4 * 2``
EXPRESSION = re.compile(r"\d+(?:\s*[-+*]\s*\d+)+")


class PlainChat:
    """What generators ask of a tokenizer: ``apply_chat_template``, rendering ``role: content`` lines."""

    chat_template = "plain"
    eos_token = ""

    def apply_chat_template(
        self, messages: list[dict[str, Any]], add_generation_prompt: bool = True, **_: Any
    ) -> str:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return text + ("assistant:" if add_generation_prompt else "")


def solve(expression: str) -> int:
    """The value of an :data:`EXPRESSION` match (``*`` before ``+``/``-``)."""
    tokens = re.findall(r"\d+|[-+*]", expression)
    return evaluate([int(n) for n in tokens[0::2]], tokens[1::2])


@BACKENDS.register("calculator")
class CalculatorBackend(Backend):
    """Answers the first arithmetic expression of each context as ``"a + b = n. The answer is n."``.

    Args:
        model: unused (a backend is built with the run's model path); any name works.
        slip_rate: when sampling (``temperature > 0``), the chance that ``n`` is off by one.
    """

    def __init__(self, model: str = "calculator", slip_rate: float = 0.5) -> None:
        super().__init__(model)
        if not 0.0 <= slip_rate <= 1.0:
            raise ValueError(f"calculator: slip_rate must be in [0, 1], got {slip_rate!r}")
        self.slip_rate = slip_rate
        self._tokenizer = PlainChat()

    @property
    def tokenizer(self) -> PlainChat:
        return self._tokenizer

    def generate(self, contexts: list[str], settings: SamplingSettings) -> list[Completion]:
        out = []
        for position, context in enumerate(contexts):
            found = EXPRESSION.search(context)
            if found is None:
                text = "I can only answer arithmetic questions."
            else:
                value = solve(found.group(0))
                # the same contexts and seed give the same answers; each position its own sample
                rng = random.Random(f"{settings.seed}|{position}|{context}")
                if not settings.greedy and rng.random() < self.slip_rate:
                    value += rng.choice((-1, 1))
                text = f"{found.group(0)} = {value}. The answer is {value}."
            out.append(Completion(text, len(context.split()), len(text.split()), "stop"))
        return out
