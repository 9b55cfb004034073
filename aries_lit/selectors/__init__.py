"""Selectors: turn prompt groups with candidate answers into preference pairs.

Registered short names (``SELECTORS.build("rule")``, or ``class_path`` to user code):

- ``rule``: ARIES rule selection, last refinement chosen, direct answer rejected.
- ``reward_model``: a sequence-classification reward model; best chosen, worst rejected.
- ``llm_judge``: the Self-Rewarding LLM-as-a-judge baseline (5-point additive rubric).
- ``verifier``: a correct answer chosen, an incorrect one rejected (gold answers).
- ``graded``: the fraction of a prompt's IFEval constraints met; best chosen, worst rejected.
- ``group``: every scored candidate of a prompt with its reward (GRPO / RLOO groups; a ``scorer``).
- ``unpaired``: every scored candidate as one labelled example (KTO's unpaired data; a ``scorer``).
- ``reference``: the prompt's reference answer chosen, an incorrect candidate rejected (offline data).

Formats are described in :mod:`aries_lit.selectors.base`; answer extraction for
verifiable tasks lives in :mod:`aries_lit.answers.extraction`; template-echo detection and the
pair-quality audit of every selection in :mod:`aries_lit.selectors.quality`.
"""

from aries_lit.selectors.base import SELECTORS, ScoredSelector, SelectionResult, Selector
from aries_lit.selectors.graded import GradedSelector
from aries_lit.selectors.group import GroupSelector
from aries_lit.selectors.llm_judge import SELF_REWARDING_JUDGE_PROMPT, LLMJudgeSelector, parse_judge_score
from aries_lit.selectors.reference import ReferenceSelector
from aries_lit.selectors.reward_model import RewardModelSelector
from aries_lit.selectors.rule import RuleSelector
from aries_lit.selectors.unpaired import UnpairedSelector
from aries_lit.selectors.verifier import VerifierSelector

__all__ = [
    "SELECTORS",
    "SELF_REWARDING_JUDGE_PROMPT",
    "GradedSelector",
    "GroupSelector",
    "LLMJudgeSelector",
    "ReferenceSelector",
    "RewardModelSelector",
    "RuleSelector",
    "ScoredSelector",
    "SelectionResult",
    "Selector",
    "UnpairedSelector",
    "VerifierSelector",
    "parse_judge_score",
]
