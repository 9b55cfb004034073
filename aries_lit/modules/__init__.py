"""LightningModules: the policy, its loss object and (for preference losses) the frozen reference."""

from aries_lit.modules.logprobs import sequence_logprobs
from aries_lit.modules.policy import PolicyModule
from aries_lit.modules.preference import PreferenceModule
from aries_lit.modules.sft import SFTModule

__all__ = ["PolicyModule", "PreferenceModule", "SFTModule", "sequence_logprobs"]
