"""Preference training (DPO, ARIES Eq. 10, BT_ARIES, IPO, SimPO, ...) against a frozen reference."""

from __future__ import annotations

from aries_lit.modules.policy import PolicyModule


class PreferenceModule(PolicyModule):
    """Policy + frozen reference trained with any preference loss (``aries`` by default).

    Defaults follow the paper's preference stage (Appendix B): AdamW, lr 1e-6, cosine,
    3% warm-up; ``reference`` defaults to the policy's starting weights.
    """

    default_loss = "aries"
