"""The view vocabulary: the contexts and responses of a preference pair and the six views
``"<context>/<response>"`` built from them (:mod:`aries_lit.data.views` tokenizes them, losses
declare the ones they read). Bottom layer: imports nothing from aries_lit."""

from __future__ import annotations

# Contexts: "direct" = chat(x); "refine_l" = chat(z(x, y_l)); "refine_w" = chat(z(x, y_w)).
DIRECT, REFINE_L, REFINE_W = "direct", "refine_l", "refine_w"
CONTEXTS = (DIRECT, REFINE_L, REFINE_W)
RESPONSES = ("chosen", "rejected")

# The six ARIES views, named "<context>/<response>".
DIRECT_CHOSEN = "direct/chosen"  # x -> y_w
DIRECT_REJECTED = "direct/rejected"  # x -> y_l
REFINE_L_CHOSEN = "refine_l/chosen"  # (x, y_l, z) -> y_w
REFINE_L_REJECTED = "refine_l/rejected"  # (x, y_l, z) -> y_l
REFINE_W_CHOSEN = "refine_w/chosen"  # (x, y_w, z) -> y_w
REFINE_W_REJECTED = "refine_w/rejected"  # (x, y_w, z) -> y_l
ALL_VIEWS = (
    DIRECT_CHOSEN,
    DIRECT_REJECTED,
    REFINE_L_CHOSEN,
    REFINE_L_REJECTED,
    REFINE_W_CHOSEN,
    REFINE_W_REJECTED,
)


def split_view(view: str) -> tuple[str, str]:
    """``"refine_l/chosen"`` -> ``("refine_l", "chosen")``."""
    context, _, response = view.partition("/")
    if context not in CONTEXTS or response not in RESPONSES:
        raise ValueError(f"unknown view '{view}'; views are {', '.join(ALL_VIEWS)}")
    return context, response


__all__ = [
    "ALL_VIEWS",
    "CONTEXTS",
    "DIRECT",
    "DIRECT_CHOSEN",
    "DIRECT_REJECTED",
    "REFINE_L",
    "REFINE_L_CHOSEN",
    "REFINE_L_REJECTED",
    "REFINE_W",
    "REFINE_W_CHOSEN",
    "REFINE_W_REJECTED",
    "RESPONSES",
    "split_view",
]
