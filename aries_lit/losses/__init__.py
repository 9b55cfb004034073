"""Loss objects: SFT, ARIES-SFT, DPO, IPO, hinge, SimPO, every other TRL DPO ``loss_type``, ORPO,
CPO, KTO, GRPO / Dr. GRPO / RLOO (group policy gradient), refine-MSE, BT_refine, ARIES, BT_ARIES,
and the Bradley-Terry reward-model loss.

Every loss is registered in :data:`LOSSES` under a short name (``LOSSES.build("dpo")``) and
follows the call contract of :mod:`aries_lit.losses.base`.
"""

from aries_lit.losses.base import (
    ALL_VIEWS,
    CONTEXTS,
    DIRECT,
    DIRECT_CHOSEN,
    DIRECT_REJECTED,
    LOSSES,
    REFINE_L,
    REFINE_L_CHOSEN,
    REFINE_L_REJECTED,
    REFINE_W,
    REFINE_W_CHOSEN,
    REFINE_W_REJECTED,
    RESPONSES,
    Loss,
    LossOutput,
    PreferenceLoss,
    RefineLoss,
    SFTLoss,
    ViewLogProbs,
    split_view,
)
from aries_lit.losses.composite import ARIESLoss, BTARIESLoss, reads_groups
from aries_lit.losses.group import GroupLogProbs, GroupLoss, GRPOLoss
from aries_lit.losses.kto import KTOLoss
from aries_lit.losses.pairwise_trl import (
    AOTLoss,
    AOTUnpairedLoss,
    APODownLoss,
    APOZeroLoss,
    BCOPairLoss,
    DiscoPOPLoss,
    EXOPairLoss,
    NCAPairLoss,
    PairwiseLoss,
    RobustDPOLoss,
    SigmoidNormLoss,
    SPPOHardLoss,
)
from aries_lit.losses.preference import DPOLoss, HingeLoss, IPOLoss, SimPOLoss
from aries_lit.losses.reference_free import CPOLoss, ORPOLoss
from aries_lit.losses.refine import BTRefineLoss, RefineMSELoss
from aries_lit.losses.reward import BradleyTerryLoss, PairRewards, RewardLoss
from aries_lit.losses.sft import ARIESSFT, SFT

__all__ = [
    "AOTLoss",
    "AOTUnpairedLoss",
    "APODownLoss",
    "APOZeroLoss",
    "BCOPairLoss",
    "DiscoPOPLoss",
    "EXOPairLoss",
    "NCAPairLoss",
    "PairwiseLoss",
    "RobustDPOLoss",
    "SPPOHardLoss",
    "SigmoidNormLoss",
    "CPOLoss",
    "GRPOLoss",
    "GroupLogProbs",
    "GroupLoss",
    "KTOLoss",
    "ORPOLoss",
    "ALL_VIEWS",
    "ARIESLoss",
    "ARIESSFT",
    "BTARIESLoss",
    "BTRefineLoss",
    "BradleyTerryLoss",
    "CONTEXTS",
    "DIRECT",
    "DIRECT_CHOSEN",
    "DIRECT_REJECTED",
    "DPOLoss",
    "HingeLoss",
    "IPOLoss",
    "LOSSES",
    "Loss",
    "LossOutput",
    "PairRewards",
    "PreferenceLoss",
    "REFINE_L",
    "REFINE_L_CHOSEN",
    "REFINE_L_REJECTED",
    "REFINE_W",
    "REFINE_W_CHOSEN",
    "REFINE_W_REJECTED",
    "RESPONSES",
    "RefineLoss",
    "RefineMSELoss",
    "RewardLoss",
    "SFT",
    "SFTLoss",
    "SimPOLoss",
    "ViewLogProbs",
    "reads_groups",
    "split_view",
]
