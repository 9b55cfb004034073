"""Loss objects: each equals an independent re-implementation of its equation, the gradients move a
tiny real model the right way, and every loss resolves through the registry."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from aries_lit.core.registry import RegistryError
from aries_lit.losses import (
    ALL_VIEWS,
    ARIESSFT,
    DIRECT_CHOSEN,
    DIRECT_REJECTED,
    LOSSES,
    REFINE_L_CHOSEN,
    REFINE_L_REJECTED,
    REFINE_W_CHOSEN,
    REFINE_W_REJECTED,
    SFT,
    ARIESLoss,
    BTARIESLoss,
    BTRefineLoss,
    DPOLoss,
    HingeLoss,
    IPOLoss,
    KTOLoss,
    Loss,
    LossOutput,
    PreferenceLoss,
    RefineLoss,
    RefineMSELoss,
    SimPOLoss,
    ViewLogProbs,
)

BATCH_SIZES = (1, 3, 8)
TOL = dict(rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- helpers


def random_logps(batch: int, seed: int = 0, reference: bool = True) -> ViewLogProbs:
    """Random summed log-probs for the six views (float64), with response lengths."""
    g = torch.Generator().manual_seed(seed)
    policy = {v: -torch.rand(batch, generator=g, dtype=torch.float64) * 30 for v in ALL_VIEWS}
    ref = (
        {v: -torch.rand(batch, generator=g, dtype=torch.float64) * 30 for v in ALL_VIEWS}
        if reference
        else None
    )
    lengths = {}
    for response in ("chosen", "rejected"):  # a response has one length whatever its context
        n = torch.randint(1, 12, (batch,), generator=g)
        for v in ALL_VIEWS:
            if v.endswith(response):
                lengths[v] = n
    return ViewLogProbs(policy=policy, reference=ref, num_tokens=lengths)


def col(logps: ViewLogProbs, view: str, which: str = "policy") -> list[float]:
    src = {"policy": logps.policy, "reference": logps.reference, "n": logps.num_tokens}[which]
    return [float(x) for x in src[view]]


def lr(logps: ViewLogProbs, view: str) -> list[float]:
    return [p - r for p, r in zip(col(logps, view), col(logps, view, "reference"))]


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


# independent re-implementations of the equations, per example in plain Python


def ref_sft(logps: ViewLogProbs, view: str, reduction: str) -> float:
    lp = col(logps, view)
    if reduction == "token_mean":
        return -sum(lp) / sum(col(logps, view, "n"))
    return -mean(lp)


def ref_dpo(logps: ViewLogProbs, beta: float, ls: float = 0.0) -> float:
    out = []
    for w, l_ in zip(lr(logps, DIRECT_CHOSEN), lr(logps, DIRECT_REJECTED)):
        u = beta * w - beta * l_  # u(x, y_l, y_w) of Eq. 3
        out.append(-(1 - ls) * log_sigmoid(u) - ls * log_sigmoid(-u))
    return mean(out)


def ref_ipo(logps: ViewLogProbs, beta: float) -> float:
    out = []
    for w, l_, nw, nl in zip(
        lr(logps, DIRECT_CHOSEN),
        lr(logps, DIRECT_REJECTED),
        col(logps, DIRECT_CHOSEN, "n"),
        col(logps, DIRECT_REJECTED, "n"),
    ):
        out.append((w / nw - l_ / nl - 1 / (2 * beta)) ** 2)
    return mean(out)


def ref_hinge(logps: ViewLogProbs, beta: float) -> float:
    return mean(
        [max(0.0, 1 - beta * (w - l_)) for w, l_ in zip(lr(logps, DIRECT_CHOSEN), lr(logps, DIRECT_REJECTED))]
    )


def ref_simpo(logps: ViewLogProbs, beta: float, gamma: float) -> float:
    out = []
    for w, l_, nw, nl in zip(
        col(logps, DIRECT_CHOSEN),
        col(logps, DIRECT_REJECTED),
        col(logps, DIRECT_CHOSEN, "n"),
        col(logps, DIRECT_REJECTED, "n"),
    ):
        out.append(-log_sigmoid(beta * (w / nw - l_ / nl) - gamma))
    return mean(out)


def ref_v(logps: ViewLogProbs, beta: float) -> tuple[list[float], list[float]]:
    """Eq. 7: v(x, y1, y2) = b_r [lr(y2 | x, y1, z) - lr(y1 | x, y1, z)]."""
    v_lw = [beta * (a - b) for a, b in zip(lr(logps, REFINE_L_CHOSEN), lr(logps, REFINE_L_REJECTED))]
    v_wl = [beta * (a - b) for a, b in zip(lr(logps, REFINE_W_REJECTED), lr(logps, REFINE_W_CHOSEN))]
    return v_lw, v_wl


def ref_refine_mse(logps: ViewLogProbs, beta: float) -> float:
    v_lw, v_wl = ref_v(logps, beta)
    return mean([(0.5 - v) ** 2 for v in v_lw]) + mean([(0.5 + v) ** 2 for v in v_wl])


def ref_bt_refine(logps: ViewLogProbs, beta: float) -> float:
    first = [
        -log_sigmoid(beta * a - beta * b)
        for a, b in zip(lr(logps, REFINE_L_CHOSEN), lr(logps, REFINE_L_REJECTED))
    ]
    second = [
        -log_sigmoid(beta * a - beta * b)
        for a, b in zip(lr(logps, REFINE_W_CHOSEN), lr(logps, REFINE_W_REJECTED))
    ]
    return mean(first) + mean(second)


def assert_close(actual: torch.Tensor, expected: float) -> None:
    assert actual.shape == ()
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), **TOL)


def assert_metrics_ok(out: LossOutput, batch: int) -> None:
    assert out.metrics, "a loss reports metrics"
    for name, value in out.metrics.items():
        assert not value.requires_grad, name
        assert value.shape in ((batch,), ()), (name, value.shape)


# --------------------------------------------------------------------------- equations


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("reduction", ["token_mean", "sequence_sum"])
def test_sft_matches_eq2(batch, reduction):
    logps = random_logps(batch, seed=batch)
    out = SFT(reduction=reduction)(logps)
    assert_close(out.loss, ref_sft(logps, DIRECT_CHOSEN, reduction))
    assert_metrics_ok(out, batch)
    assert SFT().required_views() == (DIRECT_CHOSEN,) and not SFT().requires_reference()
    # needs neither the reference nor the other views
    only = ViewLogProbs(policy={DIRECT_CHOSEN: logps.policy[DIRECT_CHOSEN]}, num_tokens=logps.num_tokens)
    assert_close(SFT(reduction=reduction)(only).loss, ref_sft(logps, DIRECT_CHOSEN, reduction))


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("reduction", ["token_mean", "sequence_sum"])
def test_aries_sft_matches_eq4(batch, reduction):
    logps = random_logps(batch, seed=10 + batch)
    out = ARIESSFT(reduction=reduction)(logps)
    expected = ref_sft(logps, DIRECT_CHOSEN, reduction) + ref_sft(logps, REFINE_L_CHOSEN, reduction)
    assert_close(out.loss, expected)
    assert_metrics_ok(out, batch)
    assert ARIESSFT().required_views() == (DIRECT_CHOSEN, REFINE_L_CHOSEN)
    if reduction == "sequence_sum":  # the literal Eq. 4: -E[log pi(y_w|x) + log pi(y_w|x,y_l,z)]
        literal = -mean([a + b for a, b in zip(col(logps, DIRECT_CHOSEN), col(logps, REFINE_L_CHOSEN))])
        assert_close(out.loss, literal)


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("beta", [0.01, 0.1, 0.5])
@pytest.mark.parametrize("ls", [0.0, 0.1, 0.3])
def test_dpo_matches_eq3(batch, beta, ls):
    logps = random_logps(batch, seed=batch + int(100 * beta))
    out = DPOLoss(beta=beta, label_smoothing=ls)(logps)
    assert_close(out.loss, ref_dpo(logps, beta, ls))
    assert_metrics_ok(out, batch)
    rewards_w = [beta * x for x in lr(logps, DIRECT_CHOSEN)]
    rewards_l = [beta * x for x in lr(logps, DIRECT_REJECTED)]
    torch.testing.assert_close(
        out.metrics["rewards/chosen"].double(), torch.tensor(rewards_w, dtype=torch.float64)
    )
    margins = torch.tensor([a - b for a, b in zip(rewards_w, rewards_l)], dtype=torch.float64)
    torch.testing.assert_close(out.metrics["rewards/margin"].double(), margins, rtol=1e-5, atol=1e-5)
    assert torch.equal(out.metrics["rewards/accuracy"], (margins > 0).float())


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("beta", [0.05, 0.1, 1.0])
def test_ipo_hinge_match_their_papers(batch, beta):
    logps = random_logps(batch, seed=20 + batch)
    assert_close(IPOLoss(beta=beta)(logps).loss, ref_ipo(logps, beta))
    assert_close(HingeLoss(beta=beta)(logps).loss, ref_hinge(logps, beta))
    assert_metrics_ok(IPOLoss(beta=beta)(logps), batch)
    assert_metrics_ok(HingeLoss(beta=beta)(logps), batch)


def test_hinge_is_zero_past_the_margin():
    logps = random_logps(4, seed=3)
    logps.policy[DIRECT_CHOSEN] = logps.reference[DIRECT_CHOSEN] + 20.0
    logps.policy[DIRECT_REJECTED] = logps.reference[DIRECT_REJECTED] - 20.0
    assert HingeLoss(beta=0.1)(logps).loss.item() == 0.0


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize(("beta", "gamma"), [(2.0, 0.5), (1.0, 0.0), (10.0, 3.0)])
def test_simpo_matches_its_paper_without_reference(batch, beta, gamma):
    logps = random_logps(batch, seed=30 + batch, reference=False)
    loss = SimPOLoss(beta=beta, gamma=gamma)
    assert not loss.requires_reference()
    out = loss(logps)
    assert_close(out.loss, ref_simpo(logps, beta, gamma))
    assert_metrics_ok(out, batch)
    avg_w = [beta * a / n for a, n in zip(col(logps, DIRECT_CHOSEN), col(logps, DIRECT_CHOSEN, "n"))]
    torch.testing.assert_close(
        out.metrics["rewards/chosen"].double(), torch.tensor(avg_w, dtype=torch.float64)
    )


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("beta", [0.01, 0.05, 0.2])
def test_refine_mse_matches_eq9(batch, beta):
    logps = random_logps(batch, seed=40 + batch)
    out = RefineMSELoss(beta=beta)(logps)
    assert_close(out.loss, ref_refine_mse(logps, beta))
    assert_metrics_ok(out, batch)
    v_lw, v_wl = ref_v(logps, beta)
    torch.testing.assert_close(
        out.metrics["refine/v_l_to_w"].double(), torch.tensor(v_lw, dtype=torch.float64)
    )
    torch.testing.assert_close(
        out.metrics["refine/v_w_to_l"].double(), torch.tensor(v_wl, dtype=torch.float64)
    )
    acc = [float(a > 0 and b < 0) for a, b in zip(v_lw, v_wl)]
    assert out.metrics["refine/accuracy"].tolist() == acc


def test_refine_mse_is_zero_at_its_targets():
    logps = random_logps(5, seed=7)
    beta = 0.05
    # v(x, y_l, y_w) = +1/2 and v(x, y_w, y_l) = -1/2 exactly
    logps.policy[REFINE_L_CHOSEN] = logps.reference[REFINE_L_CHOSEN] + 0.5 / beta
    logps.policy[REFINE_L_REJECTED] = logps.reference[REFINE_L_REJECTED].clone()
    logps.policy[REFINE_W_CHOSEN] = logps.reference[REFINE_W_CHOSEN] + 0.5 / beta
    logps.policy[REFINE_W_REJECTED] = logps.reference[REFINE_W_REJECTED].clone()
    out = RefineMSELoss(beta=beta)(logps)
    assert out.loss.item() == pytest.approx(0.0, abs=1e-12)
    assert out.metrics["refine/accuracy"].tolist() == [1.0] * 5


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("beta", [0.01, 0.05, 0.2])
def test_bt_refine_matches_its_definition(batch, beta):
    logps = random_logps(batch, seed=50 + batch)
    out = BTRefineLoss(beta=beta)(logps)
    assert_close(out.loss, ref_bt_refine(logps, beta))
    assert_metrics_ok(out, batch)
    assert set(out.metrics) == set(RefineMSELoss()(logps).metrics)


def test_bt_refine_sign():
    """Policy prefers y_w in both refinement contexts more than the reference does -> below 2 log 2."""
    logps = random_logps(6, seed=11)
    for ctx in ("refine_l", "refine_w"):
        logps.policy[f"{ctx}/chosen"] = logps.reference[f"{ctx}/chosen"] + 5.0
        logps.policy[f"{ctx}/rejected"] = logps.reference[f"{ctx}/rejected"] - 5.0
    loss = BTRefineLoss(beta=0.05)
    good = loss(logps).loss.item()
    assert good < 2 * math.log(2)
    assert loss(logps).metrics["refine/accuracy"].tolist() == [1.0] * 6
    # at policy == reference it is exactly 2 log 2
    same = ViewLogProbs(policy=dict(logps.reference), reference=logps.reference)
    assert loss(same).loss.item() == pytest.approx(2 * math.log(2))
    # swapping chosen and rejected (policy and reference alike) raises it
    swap = {"chosen": "rejected", "rejected": "chosen"}

    def swapped(d):
        return {f"{v.split('/')[0]}/{swap[v.split('/')[1]]}": t for v, t in d.items()}

    flipped = ViewLogProbs(policy=swapped(logps.policy), reference=swapped(logps.reference))
    assert loss(flipped).loss.item() > 2 * math.log(2) > good


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.8, 1.0])
@pytest.mark.parametrize(("beta", "beta_r"), [(0.1, 0.05), (0.5, 0.01)])
def test_aries_matches_eq10(batch, alpha, beta, beta_r):
    logps = random_logps(batch, seed=60 + batch)
    loss = ARIESLoss(preference=DPOLoss(beta=beta), refine=RefineMSELoss(beta=beta_r), alpha=alpha)
    out = loss(logps)
    expected = (1 - alpha) * ref_dpo(logps, beta) + alpha * ref_refine_mse(logps, beta_r)
    assert_close(out.loss, expected)
    assert_metrics_ok(out, batch)
    assert loss.requires_reference()


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.8, 1.0])
def test_bt_aries_matches_appendix_c(alpha):
    logps = random_logps(5, seed=70)
    loss = BTARIESLoss(alpha=alpha)
    assert isinstance(loss.refine, BTRefineLoss) and loss.refine.beta == 0.05
    assert isinstance(loss.preference, DPOLoss) and loss.preference.beta == 0.1
    expected = (1 - alpha) * ref_dpo(logps, 0.1) + alpha * ref_bt_refine(logps, 0.05)
    assert_close(loss(logps).loss, expected)
    assert isinstance(LOSSES.build("bt_aries"), BTARIESLoss)


def test_aries_defaults_are_the_papers():
    loss = LOSSES.build("aries")
    assert isinstance(loss.preference, DPOLoss) and loss.preference.beta == 0.1
    assert isinstance(loss.refine, RefineMSELoss) and loss.refine.beta == 0.05
    assert loss.alpha == 0.8
    assert loss.required_views() == ALL_VIEWS
    logps = random_logps(4, seed=1)
    metrics = loss(logps).metrics
    for name in (
        "rewards/margin",
        "refine/v_l_to_w",
        "refine/v_w_to_l",
        "refine/accuracy",
        "loss/pref",
        "loss/refine",
    ):
        assert name in metrics
    parts = 0.2 * metrics["loss/pref"] + 0.8 * metrics["loss/refine"]
    torch.testing.assert_close(parts, loss(logps).loss.detach().float())


def test_aries_alpha_1_skips_the_preference_part():
    """alpha = 1 (the paper's "w/o DPO"): the direct views are neither required nor read."""
    full = random_logps(4, seed=2)
    refine_views = (REFINE_L_CHOSEN, REFINE_L_REJECTED, REFINE_W_CHOSEN, REFINE_W_REJECTED)
    logps = ViewLogProbs(
        policy={v: full.policy[v] for v in refine_views},
        reference={v: full.reference[v] for v in refine_views},
    )
    loss = ARIESLoss(alpha=1.0)
    assert loss.required_views() == refine_views
    out = loss(logps)
    assert_close(out.loss, ref_refine_mse(full, 0.05))
    assert "loss/pref" not in out.metrics and "rewards/margin" not in out.metrics
    assert "loss/refine" in out.metrics


def test_aries_alpha_0_skips_the_refine_part():
    full = random_logps(4, seed=3, reference=False)
    direct = (DIRECT_CHOSEN, DIRECT_REJECTED)
    logps = ViewLogProbs(
        policy={v: full.policy[v] for v in direct}, num_tokens={v: full.num_tokens[v] for v in direct}
    )
    loss = ARIESLoss(preference="simpo", alpha=0.0)
    assert loss.required_views() == direct
    assert not loss.requires_reference()  # SimPO is reference-free and the refine part is off
    out = loss(logps)
    assert_close(out.loss, ref_simpo(full, 2.0, 0.5))
    assert "loss/refine" not in out.metrics and "refine/accuracy" not in out.metrics
    assert ARIESLoss(preference="simpo", alpha=0.5).requires_reference()


def test_aries_accepts_any_preference_loss():
    logps = random_logps(3, seed=4)
    loss = ARIESLoss(preference={"class_path": "ipo", "beta": 0.2}, refine="bt_refine", alpha=0.4)
    assert_close(loss(logps).loss, 0.6 * ref_ipo(logps, 0.2) + 0.4 * ref_bt_refine(logps, 0.05))
    loss = ARIESLoss(preference=HingeLoss(beta=0.3), alpha=0.5)
    assert_close(loss(logps).loss, 0.5 * ref_hinge(logps, 0.3) + 0.5 * ref_refine_mse(logps, 0.05))


PAPER_LOSSES = (
    "sft",
    "aries_sft",
    "dpo",
    "ipo",
    "hinge",
    "simpo",
    "refine_mse",
    "bt_refine",
    "aries",
    "bt_aries",
)


@pytest.mark.parametrize("name", PAPER_LOSSES)
def test_losses_are_differentiable(name):
    logps = random_logps(3, seed=5)
    for v in ALL_VIEWS:
        logps.policy[v].requires_grad_(True)
    loss = LOSSES.build(name)
    out = loss(logps)
    assert out.loss.shape == () and out.loss.requires_grad
    grads = torch.autograd.grad(out.loss, [logps.policy[v] for v in loss.required_views()])
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads), name


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: DPOLoss(beta=0.0), "beta"),
        (lambda: DPOLoss(beta=-1.0), "beta"),
        (lambda: DPOLoss(label_smoothing=0.5), "label_smoothing"),
        (lambda: DPOLoss(label_smoothing=-0.1), "label_smoothing"),
        (lambda: IPOLoss(beta=0.0), "beta"),
        (lambda: HingeLoss(beta=float("nan")), "beta"),
        (lambda: SimPOLoss(beta=0.0), "beta"),
        (lambda: SimPOLoss(gamma=-1.0), "gamma"),
        (lambda: RefineMSELoss(beta=0.0), "beta"),
        (lambda: BTRefineLoss(beta=-0.05), "beta"),
        (lambda: SFT(reduction="mean"), "reduction"),
        (lambda: ARIESSFT(reduction="sum"), "reduction"),
        (lambda: ARIESLoss(alpha=1.5), "alpha"),
        (lambda: ARIESLoss(alpha=-0.1), "alpha"),
        (lambda: BTARIESLoss(alpha=2), "alpha"),
    ],
)
def test_bad_arguments_raise_clear_errors(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: DPOLoss(beta=0.0), "dpo: beta must be a finite number > 0, got 0.0"),
        (lambda: HingeLoss(beta=float("inf")), "hinge: beta must be a finite number > 0, got inf"),
        (
            lambda: RefineMSELoss(beta=-1),
            "refine_mse: beta (the paper's b_r) must be a finite number > 0, got -1",
        ),
        (
            lambda: BTRefineLoss(beta="0.1"),
            "bt_refine: beta (the paper's b_r) must be a finite number > 0, got '0.1'",
        ),
    ],
)
def test_one_beta_check_keeps_each_loss_family_message(factory, message):
    with pytest.raises(ValueError) as err:
        factory()
    assert str(err.value) == message


def test_aries_parts_must_be_of_the_right_kind():
    with pytest.raises(TypeError, match="refine must be a RefineLoss"):
        ARIESLoss(refine="dpo")
    with pytest.raises(TypeError, match="preference must be a PreferenceLoss"):
        ARIESLoss(preference=RefineMSELoss())
    with pytest.raises(RegistryError, match=r"unknown \w+ 'nope'; known: .*dpo"):
        ARIESLoss(preference="nope")


def test_missing_inputs_raise_clear_errors():
    logps = random_logps(2, seed=6)
    with pytest.raises(KeyError, match="refine_l/chosen"):
        RefineMSELoss()(
            ViewLogProbs(policy={DIRECT_CHOSEN: logps.policy[DIRECT_CHOSEN]}, reference=logps.reference)
        )
    with pytest.raises(KeyError, match="reference"):
        DPOLoss()(ViewLogProbs(policy=logps.policy))
    with pytest.raises(KeyError, match="num_tokens"):
        SFT()(ViewLogProbs(policy=logps.policy))
    with pytest.raises(KeyError, match="num_tokens"):
        IPOLoss()(ViewLogProbs(policy=logps.policy, reference=logps.reference))
    bad = ViewLogProbs(policy={**logps.policy, DIRECT_CHOSEN: torch.zeros(2, 3)}, reference=logps.reference)
    with pytest.raises(ValueError, match=r"\[B\]"):
        DPOLoss()(bad)
    # sequence_sum is the literal equation and needs no token counts
    SFT(reduction="sequence_sum")(ViewLogProbs(policy=logps.policy))


# --------------------------------------------------------------------------- registry


class ScaledDPO(DPOLoss):
    """A user-defined loss: DPO times a constant (registered below from this test module)."""

    def __init__(self, beta: float = 0.1, scale: float = 2.0) -> None:
        super().__init__(beta=beta)
        self.scale = scale

    def __call__(self, logps: ViewLogProbs) -> LossOutput:
        out = super().__call__(logps)
        return LossOutput(self.scale * out.loss, out.metrics)


if "test_scaled_dpo" not in LOSSES:
    LOSSES.register("test_scaled_dpo")(ScaledDPO)


@pytest.mark.parametrize(
    ("name", "cls", "kind"),
    [
        ("sft", SFT, Loss),
        ("aries_sft", ARIESSFT, Loss),
        ("dpo", DPOLoss, PreferenceLoss),
        ("ipo", IPOLoss, PreferenceLoss),
        ("hinge", HingeLoss, PreferenceLoss),
        ("simpo", SimPOLoss, PreferenceLoss),
        ("refine_mse", RefineMSELoss, RefineLoss),
        ("bt_refine", BTRefineLoss, RefineLoss),
        ("aries", ARIESLoss, Loss),
        ("bt_aries", BTARIESLoss, ARIESLoss),
    ],
)
def test_every_name_resolves(name, cls, kind):
    assert LOSSES.get(name) is cls
    assert issubclass(cls, kind)
    assert cls.__doc__ and ("Eq." in cls.__doc__ or "Appendix" in cls.__doc__ or "et al." in cls.__doc__)
    assert cls.__doc__ and "Shapes" in cls.__doc__
    loss = LOSSES.build(name)
    assert isinstance(loss, cls)
    assert set(loss.required_views()) <= set(ALL_VIEWS)
    repr(loss)


def test_dotted_class_path():
    assert LOSSES.get("aries_lit.losses.preference.DPOLoss") is DPOLoss
    loss = LOSSES.build({"class_path": "aries_lit.losses.RefineMSELoss", "init_args": {"beta": 0.01}})
    assert isinstance(loss, RefineMSELoss) and loss.beta == 0.01
    assert LOSSES.get(f"{ScaledDPO.__module__}.ScaledDPO") is ScaledDPO


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(RegistryError) as err:
        LOSSES.get("dop")
    message = str(err.value)
    assert "dop" in message
    for name in (
        "sft",
        "aries_sft",
        "dpo",
        "ipo",
        "hinge",
        "simpo",
        "refine_mse",
        "bt_refine",
        "aries",
        "bt_aries",
    ):
        assert name in message


def test_user_defined_loss_builds_through_the_registry():
    loss = LOSSES.build({"class_path": "test_scaled_dpo", "beta": 0.3})
    assert isinstance(loss, ScaledDPO) and loss.beta == 0.3 and loss.scale == 2.0
    logps = random_logps(4, seed=8)
    assert_close(loss(logps).loss, 2.0 * ref_dpo(logps, 0.3))
    aries = ARIESLoss(preference="test_scaled_dpo", alpha=0.5)
    assert_close(aries(logps).loss, 0.5 * 2.0 * ref_dpo(logps, 0.1) + 0.5 * ref_refine_mse(logps, 0.05))


def test_constructors_are_introspectable_by_jsonargparse():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--loss", type=Loss)
    cfg = parser.parse_args(
        ["--loss", '{"class_path": "aries_lit.losses.DPOLoss", "init_args": {"beta": 0.2}}']
    )
    loss = parser.instantiate(cfg).loss
    assert isinstance(loss, DPOLoss) and loss.beta == 0.2 and loss.label_smoothing == 0.0

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(ARIESLoss, "loss")
    cfg = parser.parse_args(["--loss.alpha", "1.0", "--loss.refine", "bt_refine"])
    loss = parser.instantiate(cfg).loss
    assert isinstance(loss.refine, BTRefineLoss) and loss.alpha == 1.0


# ------------------------------------------------------------- gradient direction on a tiny model


QUESTION, CHOSEN, REJECTED = "What is 2+3?", "5", "7"


def response_logp(model, tokenizer, context: str, response: str) -> torch.Tensor:
    """Summed log pi(response | context), by a separate forward of context + response."""
    ctx_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    resp_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx_ids + resp_ids])
    logits = model(input_ids=ids).logits[0, :-1].float()
    token_logps = logits.log_softmax(-1).gather(-1, ids[0, 1:, None])[:, 0]
    return token_logps[len(ctx_ids) - 1 :].sum()


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from aries_lit.models import load_causal_lm, load_tokenizer
    from aries_lit.prompts.templates import RefinementTemplate, chat_context

    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir))
    template = RefinementTemplate.from_spec("paper")
    contexts = {
        "direct": chat_context(tokenizer, QUESTION),
        "refine_l": chat_context(tokenizer, template.fill(QUESTION, REJECTED)),
        "refine_w": chat_context(tokenizer, template.fill(QUESTION, CHOSEN)),
    }
    # one thread: a 64-wide model gains nothing from more, and loses a lot on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield model, tokenizer, contexts
    torch.set_num_threads(threads)


def all_views(model, tokenizer, contexts, views: tuple[str, ...] = ALL_VIEWS) -> dict[str, torch.Tensor]:
    """``{view: [1]}`` summed log-probs of the pair's views, one forward each."""
    out = {}
    for view in views:
        ctx, resp = view.split("/")
        response = CHOSEN if resp == "chosen" else REJECTED
        out[view] = response_logp(model, tokenizer, contexts[ctx], response)[None]
    return out


def train(tiny, loss: Loss, steps: int = 10, lr: float = 3e-3) -> tuple[ViewLogProbs, ViewLogProbs]:
    """A few AdamW steps of ``loss`` on the one pair; returns (log-probs before, log-probs after)."""
    base, tokenizer, contexts = tiny
    torch.manual_seed(0)
    policy = copy.deepcopy(base).train()
    reference = copy.deepcopy(base).eval().requires_grad_(False)
    with torch.no_grad():
        ref = all_views(reference, tokenizer, contexts)
    lengths = {r: len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in (CHOSEN, REJECTED)}
    n = {v: torch.tensor([lengths[CHOSEN if v.endswith("chosen") else REJECTED]]) for v in ALL_VIEWS}
    opt = torch.optim.AdamW(policy.parameters(), lr=lr)
    with torch.no_grad():
        before = ViewLogProbs(all_views(policy, tokenizer, contexts), ref, n)
    for _ in range(steps):
        out = loss(ViewLogProbs(all_views(policy, tokenizer, contexts, loss.required_views()), ref, n))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    with torch.no_grad():
        after = ViewLogProbs(all_views(policy, tokenizer, contexts), ref, n)
    return before, after


def test_dpo_grows_the_implicit_reward_margin(tiny):
    before, after = train(tiny, DPOLoss(beta=0.1))
    margin = lambda lp: (lp.log_ratio(DIRECT_CHOSEN) - lp.log_ratio(DIRECT_REJECTED)).item()  # noqa: E731
    assert margin(before) == pytest.approx(0.0, abs=1e-5)
    assert margin(after) > margin(before) + 1.0


def test_refine_mse_moves_v_toward_its_targets(tiny):
    beta = 0.05
    before, after = train(tiny, RefineMSELoss(beta=beta))
    v = lambda lp: ref_v(lp, beta)  # noqa: E731
    (lw0,), (wl0,) = v(before)
    (lw1,), (wl1,) = v(after)
    assert abs(0.5 - lw1) < abs(0.5 - lw0) - 0.05
    assert abs(-0.5 - wl1) < abs(-0.5 - wl0) - 0.05
    assert lw1 > 0 > wl1


def test_bt_refine_prefers_the_chosen_answer_in_both_contexts(tiny):
    before, after = train(tiny, BTRefineLoss(beta=0.05))
    for ctx in ("refine_l", "refine_w"):
        margin = lambda lp: (lp.log_ratio(f"{ctx}/chosen") - lp.log_ratio(f"{ctx}/rejected")).item()  # noqa: E731,B023
        assert margin(after) > margin(before) + 0.5, ctx
        assert margin(after) > 0, ctx


def test_aries_sft_raises_both_likelihoods(tiny):
    before, after = train(tiny, ARIESSFT(reduction="token_mean"))
    for view in (DIRECT_CHOSEN, REFINE_L_CHOSEN):
        assert after.policy[view].item() > before.policy[view].item() + 0.5, view


# --------------------------------------------------------------------------- TRL's other losses, ORPO, CPO

NEW_PAIRWISE = (
    "robust",
    "exo_pair",
    "nca_pair",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
)


@pytest.mark.parametrize("name", [*NEW_PAIRWISE, "orpo", "cpo", "kto"])
def test_new_losses_fill_aries_preference_slot(name):
    """Each is a PreferenceLoss: inside ``aries`` it gives (1 - alpha) * itself + alpha * refine-MSE."""
    logps = random_logps(5, seed=11)
    alone = LOSSES.build(name)
    assert isinstance(alone, PreferenceLoss)
    aries = ARIESLoss(preference=name, alpha=0.8)
    expected = 0.2 * alone(logps).loss + 0.8 * RefineMSELoss()(logps).loss
    torch.testing.assert_close(aries(logps).loss, expected, **TOL)
    assert aries.requires_reference()  # refine-MSE needs it
    assert ARIESLoss(preference=name, alpha=0.0).requires_reference() == (name not in ("orpo", "cpo"))


@pytest.mark.parametrize("name", ["orpo", "cpo"])
def test_reference_free_losses_run_without_reference(name):
    loss = LOSSES.build(name)
    assert not loss.requires_reference()
    out = loss(random_logps(4, seed=2, reference=False))
    assert torch.isfinite(out.loss) and "loss/nll" in out.metrics


def test_orpo_matches_its_equation():
    logps = random_logps(6, seed=5)
    beta = 0.3
    terms = []
    for w, l_, nw, nl in zip(
        col(logps, DIRECT_CHOSEN),
        col(logps, DIRECT_REJECTED),
        col(logps, DIRECT_CHOSEN, "n"),
        col(logps, DIRECT_REJECTED, "n"),
    ):
        aw, al = w / nw, l_ / nl
        odds = (aw - math.log1p(-math.exp(aw))) - (al - math.log1p(-math.exp(al)))
        terms.append(log_sigmoid(odds))
    nll = -sum(col(logps, DIRECT_CHOSEN)) / sum(col(logps, DIRECT_CHOSEN, "n"))
    assert float(
        LOSSES.build({"class_path": "orpo", "init_args": {"beta": beta}})(logps).loss
    ) == pytest.approx(nll - beta * mean(terms), rel=1e-9)


@pytest.mark.parametrize("name", ["dpo", "ipo", "hinge", "simpo", *NEW_PAIRWISE])
def test_rpo_alpha_adds_the_chosen_token_nll(name):
    logps = random_logps(5, seed=7)
    plain = LOSSES.build(name)(logps).loss
    rpo = LOSSES.build({"class_path": name, "init_args": {"rpo_alpha": 0.5}})(logps)
    nll = -sum(col(logps, DIRECT_CHOSEN)) / sum(col(logps, DIRECT_CHOSEN, "n"))
    assert float(rpo.loss) == pytest.approx(float(plain) + 0.5 * nll, rel=1e-9)
    assert float(rpo.metrics["loss/nll"]) == pytest.approx(nll, rel=1e-6)


@pytest.mark.parametrize(
    "name,args,message",
    [
        ("robust", {"beta": -1.0}, "robust: beta must be"),
        ("robust", {"label_smoothing": 0.5}, "label_smoothing must be in [0, 0.5)"),
        ("exo_pair", {"label_smoothing": 0.0}, "label_smoothing must be in (0, 0.5)"),
        ("discopop", {"tau": 0.0}, "discopop: tau must be"),
        ("sppo_hard", {"rpo_alpha": -0.1}, "sppo_hard: rpo_alpha must be"),
        ("dpo", {"rpo_alpha": float("nan")}, "dpo: rpo_alpha must be"),
        ("orpo", {"beta": 0.0}, "orpo: beta must be"),
        ("cpo", {"cpo_alpha": -1.0}, "cpo: cpo_alpha must be"),
        ("kto", {"beta": -0.1}, "kto: beta must be a finite number > 0"),
        ("kto", {"beta": 0.0}, "kto: beta must be a finite number > 0"),
        ("kto", {"desirable_weight": 0.0}, "kto: desirable_weight must be a finite number > 0"),
        ("kto", {"undesirable_weight": -1.0}, "kto: undesirable_weight must be a finite number > 0"),
        ("kto", {"undesirable_weight": float("inf")}, "kto: undesirable_weight must be"),
        ("kto", {"loss_type": "kto_pair"}, "kto: loss_type must be one of kto, apo_zero_unpaired"),
    ],
)
def test_new_losses_reject_bad_hyper_parameters(name, args, message):
    with pytest.raises(ValueError) as err:
        LOSSES.build({"class_path": name, "init_args": args})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- KTO


def _kto_by_hand(
    logps: ViewLogProbs, beta: float, wd: float, wu: float, loss_type: str
) -> tuple[float, float]:
    """KTO on pairs from scalars: (loss, z0)."""
    lr_w = [p - r for p, r in zip(col(logps, DIRECT_CHOSEN), col(logps, DIRECT_CHOSEN, "reference"))]
    lr_l = [p - r for p, r in zip(col(logps, DIRECT_REJECTED), col(logps, DIRECT_REJECTED, "reference"))]
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    if loss_type == "kto":
        z0 = max(0.0, mean(lr_w + lr_l))
        terms = [wd * (1 - sig(beta * (r - z0))) for r in lr_w] + [
            wu * (1 - sig(beta * (z0 - r))) for r in lr_l
        ]
    else:
        z0 = 0.0
        terms = [wd * (1 - sig(beta * r)) for r in lr_w] + [wu * sig(beta * r) for r in lr_l]
    return mean(terms), z0


@pytest.mark.parametrize("loss_type", ["kto", "apo_zero_unpaired"])
@pytest.mark.parametrize("shift", [0.0, 3.0, -3.0])
def test_kto_matches_its_equation(loss_type, shift):
    logps = random_logps(7, seed=21)
    for v in (DIRECT_CHOSEN, DIRECT_REJECTED):  # shift the reference: z0 > 0 (shift < 0) or clamped
        logps.reference[v] = logps.reference[v] + shift
    args = {"beta": 0.2, "desirable_weight": 1.3, "undesirable_weight": 0.8, "loss_type": loss_type}
    out = LOSSES.build({"class_path": "kto", "init_args": args})(logps)
    loss, z0 = _kto_by_hand(logps, 0.2, 1.3, 0.8, loss_type)
    assert float(out.loss) == pytest.approx(loss, rel=1e-9)
    assert float(out.metrics["kto/kl"]) == pytest.approx(z0, rel=1e-6, abs=1e-12)  # metrics are float32
    if loss_type == "kto" and shift != 0.0:
        assert (z0 > 0) == (shift < 0)  # both sides of the clamp are exercised
    lr_w = logps.log_ratio(DIRECT_CHOSEN)
    torch.testing.assert_close(out.metrics["rewards/chosen"], (0.2 * lr_w).float())
    assert out.metrics["rewards/accuracy"].shape == (7,)


def test_kto_kl_estimate_is_detached():
    """``z0`` carries no gradient: d loss / d log pi(y_w^b|x^b) is w_d beta s (1 - s) / 2B, with
    ``s = sigma(beta (lr_w - z0))``, exactly (paper and TRL: no backpropagation through z0)."""
    logps = random_logps(4, seed=3)
    logps.reference[DIRECT_CHOSEN] = logps.reference[DIRECT_CHOSEN] - 5.0  # z0 > 0
    policy = logps.policy[DIRECT_CHOSEN].requires_grad_(True)
    out = KTOLoss(beta=0.1, desirable_weight=1.5)(logps)
    z0 = out.metrics["kto/kl"].double()
    assert float(z0) > 0
    (grad,) = torch.autograd.grad(out.loss, policy)
    s = torch.sigmoid(0.1 * (logps.log_ratio(DIRECT_CHOSEN).detach() - z0))
    torch.testing.assert_close(grad, -1.5 * 0.1 * s * (1 - s) / 8, **TOL)


def test_kto_in_aries_preference_slot():
    """``aries`` with KTO as L_pref (Eq. 10): (1 - alpha) KTO + alpha refine-MSE, KTO's metrics kept,
    every ARIES view required, the reference needed."""
    logps = random_logps(5, seed=9)
    aries = LOSSES.build(
        {
            "class_path": "aries",
            "init_args": {"preference": {"class_path": "kto", "init_args": {"beta": 0.2}}, "alpha": 0.8},
        }
    )
    assert isinstance(aries.preference, KTOLoss) and aries.preference.beta == 0.2
    out = aries(logps)
    kto = KTOLoss(beta=0.2)(logps)
    torch.testing.assert_close(out.loss, 0.2 * kto.loss + 0.8 * RefineMSELoss()(logps).loss, **TOL)
    torch.testing.assert_close(out.metrics["kto/kl"], kto.metrics["kto/kl"])
    assert set(aries.required_views()) == set(ALL_VIEWS) and aries.requires_reference()
    assert KTOLoss().required_views() == (DIRECT_CHOSEN, DIRECT_REJECTED)
