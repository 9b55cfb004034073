"""LightningModules: the policy with its loss object and (for preference losses) the frozen
reference (on pairs, on groups of scored completions, on unpaired labelled completions), and the
reward model; all share :class:`TrainingModule`, the base ``aries-lit fit`` takes."""

from aries_lit.modules.base import TrainingModule
from aries_lit.modules.group import GroupPolicyModule
from aries_lit.modules.logprobs import sequence_logprobs
from aries_lit.modules.policy import PolicyModule
from aries_lit.modules.preference import PreferenceModule
from aries_lit.modules.reward import RewardModule
from aries_lit.modules.sft import SFTModule
from aries_lit.modules.unpaired import UnpairedPolicyModule

__all__ = [
    "GroupPolicyModule",
    "PolicyModule",
    "PreferenceModule",
    "RewardModule",
    "SFTModule",
    "TrainingModule",
    "UnpairedPolicyModule",
    "sequence_logprobs",
]
