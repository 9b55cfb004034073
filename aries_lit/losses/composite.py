"""The ARIES objective (arXiv 2502.05605 Eq. 10): a preference loss plus a refinement loss."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from aries_lit.losses.base import (
    ALL_VIEWS,
    LOSSES,
    Loss,
    LossOutput,
    PreferenceLoss,
    RefineLoss,
    ViewLogProbs,
)

__all__ = ["ARIESLoss", "BTARIESLoss"]


def _build(spec: Any, kind: type[Loss], role: str, owner: str) -> Loss:
    if not isinstance(spec, (str, Mapping, Loss)):
        raise TypeError(
            f"{owner}: {role} must be a {kind.__name__}, a loss name or a spec dict, got {spec!r}"
        )
    loss = LOSSES.build(spec)
    if not isinstance(loss, kind):
        raise TypeError(f"{owner}: {role} must be a {kind.__name__}, got {type(loss).__name__} from {spec!r}")
    return loss


@LOSSES.register("aries")
class ARIESLoss(Loss):
    """ARIES (arXiv 2502.05605 Eq. 10): ``L = (1 - alpha) * L_pref + alpha * L_refine``.

    ``preference`` is any :class:`PreferenceLoss` (DPO by default; the paper: "any RLHF
    algorithm's loss can replace the DPO term"), ``refine`` any :class:`RefineLoss` (refine-MSE,
    Eq. 9, by default; BT_refine gives :class:`BTARIESLoss`). Both may be given as objects, registry
    names or ``{"class_path": ..., "init_args": {...}}`` specs; they are stored built. Paper setting:
    ``alpha = 0.8``. ``alpha = 1`` is the paper's "w/o DPO" ablation: the preference part is then
    not computed and its views are not required; ``alpha = 0`` likewise drops the refinement part.

    Shapes: the union of both parts' views (``[B]`` each, see :meth:`required_views`); loss ``[]``;
    metrics: both parts' ``[B]`` metrics plus the scalar parts ``loss/pref`` and ``loss/refine``
    (those computed).
    """

    views = ALL_VIEWS

    def __init__(
        self,
        preference: PreferenceLoss | str = "dpo",
        refine: RefineLoss | str = "refine_mse",
        alpha: float = 0.8,
    ) -> None:
        name = getattr(type(self), "registry_name", type(self).__name__)
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
            raise ValueError(
                f"{name}: alpha (the weight of the refinement loss) must be in [0, 1], got {alpha!r}"
            )
        self.preference = _build(preference, PreferenceLoss, "preference", name)
        self.refine = _build(refine, RefineLoss, "refine", name)
        self.alpha = alpha

    def _parts(self) -> list[tuple[str, float, Loss]]:
        parts: list[tuple[str, float, Loss]] = []
        if self.alpha < 1:
            parts.append(("pref", 1.0 - self.alpha, self.preference))
        if self.alpha > 0:
            parts.append(("refine", self.alpha, self.refine))
        return parts

    def required_views(self) -> tuple[str, ...]:
        needed = {v for _, _, part in self._parts() for v in part.required_views()}
        return tuple(v for v in ALL_VIEWS if v in needed)

    def requires_reference(self) -> bool:
        return any(part.requires_reference() for _, _, part in self._parts())

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        total: Tensor | None = None
        metrics: dict[str, Tensor] = {}
        for key, weight, part in self._parts():
            out = part(logps)
            metrics.update(out.metrics)
            metrics[f"loss/{key}"] = out.loss.detach().float()
            term = out.loss if weight == 1.0 else weight * out.loss
            total = term if total is None else total + term
        assert total is not None  # alpha in [0, 1] always leaves one part
        return LossOutput(total, metrics)


@LOSSES.register("bt_aries")
class BTARIESLoss(ARIESLoss):
    """BT_ARIES (arXiv 2502.05605 Appendix C): ``L = (1 - alpha) * L_pref + alpha * L_BT_refine``.

    :class:`ARIESLoss` with BT_refine (``bt_refine``, paper ``b_r = 0.05``) as the refinement part.
    Shapes as :class:`ARIESLoss`.
    """

    def __init__(
        self,
        preference: PreferenceLoss | str = "dpo",
        refine: RefineLoss | str = "bt_refine",
        alpha: float = 0.8,
    ) -> None:
        super().__init__(preference=preference, refine=refine, alpha=alpha)
