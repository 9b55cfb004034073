"""The ARIES objective (arXiv 2502.05605 Eq. 10): a preference loss plus a refinement loss.

The preference part is a pairwise :class:`PreferenceLoss` on the direct views of a pair, or a
:class:`~aries_lit.losses.group.GroupLoss` (GRPO, arXiv 2402.03300) on a whole group of scored
completions; the refinement part always reads the refinement views of one ``(y_w, y_l)`` pair, for
a group its best and worst answers (``GroupLogProbs.views``).
"""

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
from aries_lit.losses.group import GroupLogProbs, GroupLoss

__all__ = ["ARIESLoss", "BTARIESLoss", "reads_groups"]


def _build(spec: Any, kind: type[Loss] | tuple[type[Loss], ...], role: str, owner: str) -> Loss:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    what = " or a ".join(k.__name__ for k in kinds)
    if not isinstance(spec, (str, Mapping, Loss)):
        raise TypeError(f"{owner}: {role} must be a {what}, a loss name or a spec dict, got {spec!r}")
    loss = LOSSES.build(spec)
    if not isinstance(loss, kinds):
        raise TypeError(f"{owner}: {role} must be a {what}, got {type(loss).__name__} from {spec!r}")
    return loss


def reads_groups(loss: Loss) -> bool:
    """Whether ``loss`` trains on groups of scored completions (a :class:`GroupLoss`, or ARIES with
    one in its preference slot): only :class:`aries_lit.modules.GroupPolicyModule` trains it."""
    return isinstance(loss, GroupLoss) or (isinstance(loss, ARIESLoss) and loss.group_preference)


@LOSSES.register("aries")
class ARIESLoss(Loss):
    """ARIES (arXiv 2502.05605 Eq. 10): ``L = (1 - alpha) * L_pref + alpha * L_refine``.

    ``preference`` is any :class:`PreferenceLoss` (DPO by default; the paper: "any RLHF
    algorithm's loss can replace the DPO term") or a :class:`GroupLoss` (``grpo``: GRPO, arXiv
    2402.03300, Dr. GRPO or RLOO), ``refine`` any :class:`RefineLoss` (refine-MSE, Eq. 9, by
    default; BT_refine gives :class:`BTARIESLoss`). Both may be given as objects, registry names or
    ``{"class_path": ..., "init_args": {...}}`` specs; they are stored built. Paper setting:
    ``alpha = 0.8``. ``alpha = 1`` is the paper's "w/o DPO" ablation: the preference part is then
    not computed and its views are not required; ``alpha = 0`` likewise drops the refinement part.

    Shapes, pairwise preference: a :class:`ViewLogProbs` with the union of both parts' views
    (``[B]`` each, see :meth:`required_views`). Group preference (ARIES + GRPO): a
    :class:`GroupLogProbs` of ``B`` groups (``[N, T]``, the group term's input) whose ``views`` holds
    the refine part's views, ``[B]`` each, of each group's ``(y_w, y_l)`` (its best and worst
    answers); :meth:`required_views` then lists the refine part's views only. With ``alpha = 1`` the
    group term is not computed and a :class:`ViewLogProbs` of the refine views alone is taken too.
    Loss ``[]``; metrics: both parts' metrics (``[B]``; the group term's ``[N]`` per completion) plus
    the scalar parts ``loss/pref`` and ``loss/refine`` (those computed).
    """

    views = ALL_VIEWS

    def __init__(
        self,
        preference: PreferenceLoss | GroupLoss | str = "dpo",
        refine: RefineLoss | str = "refine_mse",
        alpha: float = 0.8,
    ) -> None:
        name = self._name()
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
            raise ValueError(
                f"{name}: alpha (the weight of the refinement loss) must be in [0, 1], got {alpha!r}"
            )
        self.preference = _build(preference, (PreferenceLoss, GroupLoss), "preference", name)
        self.refine = _build(refine, RefineLoss, "refine", name)
        self.alpha = alpha

    @classmethod
    def _name(cls) -> str:
        return getattr(cls, "registry_name", cls.__name__)

    @property
    def group_preference(self) -> bool:
        """Whether the preference part is a :class:`GroupLoss` (ARIES + GRPO: trained on groups)."""
        return isinstance(self.preference, GroupLoss)

    def parts(self) -> list[tuple[str, float, Loss]]:
        """``(key, weight, loss)`` of the parts computed: ``pref`` unless ``alpha = 1``, ``refine``
        unless ``alpha = 0``."""
        parts: list[tuple[str, float, Loss]] = []
        if self.alpha < 1:
            parts.append(("pref", 1.0 - self.alpha, self.preference))
        if self.alpha > 0:
            parts.append(("refine", self.alpha, self.refine))
        return parts

    def required_views(self) -> tuple[str, ...]:
        needed = {v for _, _, part in self.parts() for v in part.required_views()}
        return tuple(v for v in ALL_VIEWS if v in needed)

    def requires_reference(self) -> bool:
        return any(part.requires_reference() for _, _, part in self.parts())

    def _part_inputs(self, logps: ViewLogProbs | GroupLogProbs) -> dict[str, Any]:
        """What each part reads: the one :class:`ViewLogProbs` for both (pairwise preference), or the
        :class:`GroupLogProbs` for the group term and its ``views`` for the refine term."""
        name = self._name()
        if not self.group_preference:
            if isinstance(logps, GroupLogProbs):
                raise TypeError(f"{name}: a pair preference loss reads ViewLogProbs, not GroupLogProbs")
            return {"pref": logps, "refine": logps}
        if not isinstance(logps, GroupLogProbs):
            if self.alpha < 1:
                raise TypeError(
                    f"{name}: the group preference {type(self.preference).__name__} reads GroupLogProbs "
                    "(per-token log-probs of each group), not ViewLogProbs"
                )
            return {"refine": logps}  # alpha = 1: the refine views alone
        if self.alpha > 0 and logps.views is None:
            raise KeyError(
                f"{name}: the refine term reads GroupLogProbs.views (the refinement views of each "
                "group's best and worst answers), which is None"
            )
        return {"pref": logps, "refine": logps.views}

    def __call__(self, logps: ViewLogProbs | GroupLogProbs) -> LossOutput:  # type: ignore[override]
        inputs = self._part_inputs(logps)
        total: Tensor | None = None
        metrics: dict[str, Tensor] = {}
        for key, weight, part in self.parts():
            out = part(inputs[key])
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
        preference: PreferenceLoss | GroupLoss | str = "dpo",
        refine: RefineLoss | str = "bt_refine",
        alpha: float = 0.8,
    ) -> None:
        super().__init__(preference=preference, refine=refine, alpha=alpha)
