"""Refinement with oracle feedback (``oracle_feedback``): each refinement prompt names the
instructions the previous answer breaks.

This is *not* self-refinement (``SR``): the feedback comes from the same IFEval checkers
(:mod:`aries_lit.instructions`) that score the answers, so the generator knows what the selector
will reward. Use it to collect training data on prompts with checkable instructions (the
``instruction_following`` prompt source); never report its chains as SR. Candidates it makes
carry ``"feedback": "oracle"`` (refinements) and its manifest settings ``"feedback": "oracle"``.
"""

from __future__ import annotations

from typing import Any

from aries_lit.core.chat import chat_context, prompt_text
from aries_lit.generators.backends.base import Backend, Completion
from aries_lit.generators.base import GENERATORS
from aries_lit.generators.sequential_refinement import SequentialRefinement
from aries_lit.generators.store import CandidateStore
from aries_lit.instructions import Instruction, describe, follows
from aries_lit.prompts.feedback import FEEDBACK_TEMPLATE, feedback_refinement_prompt
from aries_lit.prompts.instruction_following import record_instructions

#: The mark written to every candidate (and the manifest settings) this generator refines.
ORACLE = "oracle"


@GENERATORS.register("oracle_feedback")
class OracleFeedbackRefinement(SequentialRefinement):
    """A direct answer, then refinements whose prompt lists the instructions the previous answer breaks.

    Turn 0 answers ``chat(x)``; turn ``n`` answers the feedback template
    (:func:`aries_lit.prompts.feedback.feedback_refinement_prompt`; ``feedback_template``, default
    :data:`~aries_lit.prompts.feedback.FEEDBACK_TEMPLATE`, with ``{question}``,
    ``{example_response}`` and ``{broken}``) filled with the question, ``y_{n-1}`` and the checker
    descriptions (:func:`aries_lit.instructions.describe`) of the constraints ``y_{n-1}`` fails
    (:func:`aries_lit.instructions.follows`, strict unless ``loose``). When ``y_{n-1}`` meets them
    all the list says so, or, with ``stop_when_all_pass``, the chain stops: the remaining turns
    repeat ``y_{n-1}`` without generating (``"stopped": true``, 0 tokens), so every prompt still
    has ``num_candidates`` candidates and rule selection sees ``y_N == y_k``. A truncated answer
    never stops the chain. Prompts need ``instruction_id_list`` and ``kwargs``. The feedback
    template is recorded as the generation's refinement template (the selectors' template-echo
    check reads it). Other arguments: those of :class:`~aries_lit.generators.base.Generator`.
    """

    def __init__(
        self,
        num_candidates: int = 4,
        backend: str | dict[str, Any] | Backend = "transformers",
        temperature: float = 0.7,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        chunk_size: int | None = 256,
        feedback_template: str | None = None,
        stop_when_all_pass: bool = False,
        loose: bool = False,
    ) -> None:
        text = FEEDBACK_TEMPLATE if feedback_template is None else feedback_template
        feedback_refinement_prompt("q", "a", [], text)  # a template without its fields fails here
        super().__init__(
            num_candidates=num_candidates,
            backend=backend,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            template=text,
            chunk_size=chunk_size,
        )
        self.stop_when_all_pass = bool(stop_when_all_pass)
        self.loose = bool(loose)

    def config(self, model: Any) -> dict[str, Any]:
        return {
            **super().config(model),
            "feedback": ORACLE,
            "stop_when_all_pass": self.stop_when_all_pass,
            "loose": self.loose,
        }

    def _instructions(self, record: dict[str, Any]) -> list[Instruction]:
        instructions = record_instructions(record)
        if not instructions:
            raise ValueError(
                f"prompt '{record['id']}' has no instruction_id_list: generator oracle_feedback needs "
                "prompts with checkable instructions (e.g. prompts: instruction_following)"
            )
        return instructions

    def broken(self, record: dict[str, Any], answer: str) -> list[Instruction]:
        """The instructions of ``record`` that ``answer`` does not follow."""
        question = prompt_text(record["prompt"])
        return [i for i in self._instructions(record) if not follows(i, question, answer, loose=self.loose)]

    def refinement_prompt(self, record: dict[str, Any], previous_text: str) -> str:
        question = prompt_text(record["prompt"])
        previous = self.template.extract(previous_text)
        broken = [describe(i, question) for i in self.broken(record, previous)]
        return feedback_refinement_prompt(question, previous, broken, self.template.text)

    def context(self, tokenizer: Any, record: dict[str, Any], index: int, store: CandidateStore) -> str:
        if index == 0:
            self._instructions(record)  # refuse prompts without instructions before generating
            return chat_context(tokenizer, record["prompt"])
        return super().context(tokenizer, record, index, store)

    def carry_over(self, record: dict[str, Any], index: int, store: CandidateStore) -> dict[str, Any] | None:
        if not self.stop_when_all_pass or index == 0:
            return None
        previous = store.get(record["id"], index - 1)
        if previous is None or previous.get("finish_reason") == "length":
            return None
        if previous.get("stopped") or not self.broken(record, previous["text"]):
            return {
                "id": record["id"],
                "text": previous["text"],
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "finish_reason": previous.get("finish_reason", "stop"),
                "feedback": ORACLE,
                "stopped": True,
            }
        return None

    def candidate_fields(self, completion: Completion, index: int) -> dict[str, Any]:
        fields = super().candidate_fields(completion, index)
        return {**fields, "feedback": ORACLE} if index > 0 else fields
