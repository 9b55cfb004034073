"""A small procedural task with verifiable answers: integer arithmetic chains.

``ArithmeticTask`` (prompt source ``arithmetic``) makes items like::

    {"id": "arith-test-0-3", "prompt": "What is 7 - 3? Give the final answer as a number.",
     "answer": "4", "expression": "7 - 3", "solution": "7 - 3 = 4. The answer is 4."}

in the spirit of reasoning-gym's ``chain_sum``: ``num_terms`` operands of ``digits`` digits
(1 digit: 0-9; ``d`` > 1 digits: 10^(d-1) .. 10^d - 1; or 0 .. ``max_operand`` when set)
joined by operators drawn from ``ops`` (``+``, ``-``, ``*``; usual precedence, results may be
negative). Items are a deterministic function of the arguments.

Train, validation and test never share an expression, for any seeds or settings: a SHA-256
hash of the expression's text, read as a number ``h`` in [0, 1), puts it in ``test`` when
``h < test_fraction``, in ``validation`` when ``h < test_fraction + validation_fraction``, and
in ``train`` otherwise, so membership depends on the expression alone (and the test split does
not depend on ``validation_fraction``). Items are drawn i.i.d. from their split's expressions (as in
reasoning-gym), so a small space repeats expressions; ``unique=True`` draws distinct ones and
raises when the split has fewer than ``count``. (2 terms, 1 digit, ``+-`` has 200 expressions
in all, about half of them in test.)

Difficulty: SmolLM2-135M-Instruct answers about 44% of 2-term 1-digit sums correctly, which
leaves room to move in both directions; more terms or digits make it harder.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass
from typing import Any

from aries_lit.prompts.base import PROMPT_SOURCES, PromptSource

DEFAULT_PROMPT = "What is {expression}? Give the final answer as a number."
_MAX_ENUMERATED = 200_000  # spaces up to this size are enumerated; larger ones are sampled
_SUPPORTED_OPS = "+-*"


SPLITS = ("train", "validation", "test")


def expression_split(expression: str, test_fraction: float = 0.5, validation_fraction: float = 0.0) -> str:
    """``"test"``, ``"validation"`` or ``"train"``, from a hash of the expression text alone."""
    digest = hashlib.sha256(expression.encode("utf-8")).digest()
    h = int.from_bytes(digest[:8], "big") / 2**64
    if h < test_fraction:
        return "test"
    return "validation" if h < test_fraction + validation_fraction else "train"


def evaluate(operands: list[int], operators: list[str]) -> int:
    """The value of ``operands[0] op operators[0] operands[1] ...`` with ``*`` before ``+``/``-``."""
    terms, signs = [operands[0]], [1]
    for op, value in zip(operators, operands[1:]):
        if op == "*":
            terms[-1] *= value
        else:
            terms.append(value)
            signs.append(1 if op == "+" else -1)
    return sum(s * t for s, t in zip(signs, terms))


def worked_solution(operands: list[int], operators: list[str]) -> str:
    """A short worked answer, one operation a step (products first), ending in the stated result::

    >>> worked_solution([2, 3, 4], ["+", "*"])
    '3 * 4 = 12, then 2 + 12 = 14. The answer is 14.'
    """
    values, ops, steps = list(operands), list(operators), []
    for wanted in ("*", "+-"):
        i = 0
        while i < len(ops):
            if ops[i] in wanted:
                a, b, op = values[i], values[i + 1], ops[i]
                result = a * b if op == "*" else a + b if op == "+" else a - b
                steps.append(f"{a} {op} {b} = {result}")
                values[i : i + 2] = [result]
                del ops[i]
            else:
                i += 1
    return f"{', then '.join(steps)}. The answer is {values[0]}."


def format_expression(operands: list[int], operators: list[str]) -> str:
    parts = [str(operands[0])]
    for op, value in zip(operators, operands[1:]):
        parts += [op, str(value)]
    return " ".join(parts)


@PROMPT_SOURCES.register("arithmetic")
@dataclass
class ArithmeticTask(PromptSource):
    """Procedural arithmetic chains with exact answers (see the module docstring)."""

    num_terms: int = 2
    digits: int = 1
    max_operand: int | None = None
    ops: str = "+-"
    seed: int = 0
    count: int = 200
    split: str = "test"
    test_fraction: float = 0.5
    validation_fraction: float = 0.0
    unique: bool = False
    prompt_template: str = DEFAULT_PROMPT

    def __post_init__(self) -> None:
        if self.num_terms < 2:
            raise ValueError(f"num_terms must be >= 2; got {self.num_terms}")
        if self.digits < 1:
            raise ValueError(f"digits must be >= 1; got {self.digits}")
        if self.max_operand is not None and self.max_operand < 1:
            raise ValueError(f"max_operand must be >= 1; got {self.max_operand}")
        if not self.ops or set(self.ops) - set(_SUPPORTED_OPS):
            raise ValueError(f"ops must be made of '{_SUPPORTED_OPS}'; got '{self.ops}'")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got '{self.split}'")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1); got {self.test_fraction}")
        if not 0.0 <= self.validation_fraction < 1.0 - self.test_fraction:
            raise ValueError(
                f"validation_fraction must be in [0, 1 - test_fraction); got {self.validation_fraction}"
            )
        if self.split == "validation" and self.validation_fraction == 0.0:
            raise ValueError("split 'validation' needs validation_fraction > 0")
        if self.count < 0:
            raise ValueError(f"count must be >= 0; got {self.count}")
        if "{expression}" not in self.prompt_template:
            raise ValueError("prompt_template needs the field {expression}")

    @property
    def _operand_range(self) -> range:
        if self.max_operand is not None:
            return range(0, self.max_operand + 1)
        low = 0 if self.digits == 1 else 10 ** (self.digits - 1)
        return range(low, 10**self.digits)

    @property
    def _operators(self) -> str:
        return "".join(dict.fromkeys(self.ops))  # dedupe, keep order

    def space_size(self) -> int:
        """How many distinct expressions the settings allow (both splits)."""
        return len(self._operand_range) ** self.num_terms * len(self._operators) ** (self.num_terms - 1)

    def _in_split(self, expression: str) -> bool:
        return expression_split(expression, self.test_fraction, self.validation_fraction) == self.split

    def _pool(self) -> list[tuple[list[int], list[str]]]:
        operand_sets = itertools.product(self._operand_range, repeat=self.num_terms)
        pool = []
        for operands, operators in itertools.product(
            operand_sets, list(itertools.product(self._operators, repeat=self.num_terms - 1))
        ):
            if self._in_split(format_expression(list(operands), list(operators))):
                pool.append((list(operands), list(operators)))
        return pool

    def _draws(self, rng: random.Random) -> list[tuple[list[int], list[str]]]:
        if self.space_size() <= _MAX_ENUMERATED:
            pool = self._pool()
            if not pool:
                raise ValueError(f"the {self.split} split of these settings has no expressions")
            if self.unique:
                if self.count > len(pool):
                    raise ValueError(
                        f"unique=True asks for {self.count} distinct expressions, but the {self.split} split "
                        f"has only {len(pool)}; lower count, add terms or digits, or set unique=False"
                    )
                return rng.sample(pool, self.count)
            return [rng.choice(pool) for _ in range(self.count)]
        draws, seen, attempts = [], set(), 0
        operand_range, operators = self._operand_range, self._operators
        while len(draws) < self.count:  # rejection sampling; the space is large
            attempts += 1
            if attempts > 100 * self.count + 10_000:
                raise ValueError(f"could not draw {self.count} {self.split} expressions; lower count")
            operands = [rng.choice(operand_range) for _ in range(self.num_terms)]
            ops = [rng.choice(operators) for _ in range(self.num_terms - 1)]
            expression = format_expression(operands, ops)
            if not self._in_split(expression) or (self.unique and expression in seen):
                continue
            seen.add(expression)
            draws.append((operands, ops))
        return draws

    def load(self) -> list[dict[str, Any]]:
        rng = random.Random(f"aries_lit.arithmetic:{self.split}:{self.seed}")
        items = []
        for i, (operands, operators) in enumerate(self._draws(rng)):
            expression = format_expression(operands, operators)
            items.append(
                {
                    "id": f"arith-{self.split}-{self.seed}-{i}",
                    "prompt": self.prompt_template.replace("{expression}", expression),
                    "answer": str(evaluate(operands, operators)),
                    "expression": expression,
                    "solution": worked_solution(operands, operators),
                }
            )
        return items


__all__ = [
    "DEFAULT_PROMPT",
    "SPLITS",
    "ArithmeticTask",
    "evaluate",
    "expression_split",
    "format_expression",
    "worked_solution",
]
