"""LightningModules: the policy with its loss object and (for preference losses) the frozen
reference; they share :class:`TrainingModule`, the base ``aries-lit fit`` takes."""

from aries_lit.modules.base import TrainingModule
from aries_lit.modules.logprobs import sequence_logprobs
from aries_lit.modules.policy import PolicyModule
from aries_lit.modules.preference import PreferenceModule
from aries_lit.modules.sft import SFTModule

__all__ = [
    "PolicyModule",
    "PreferenceModule",
    "SFTModule",
    "TrainingModule",
    "sequence_logprobs",
]
