"""GRPO / Dr. GRPO / RLOO (``aries_lit.losses.group``) against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from aries_lit.losses import LOSSES, GroupLogProbs, GRPOLoss
from aries_lit.losses.group import group_advantages, k3_kl

# two groups: [1, 0, 0, 1] and [0.5, 0.25, 0.75]; a third of one completion
REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.25, 0.75, 3.0], dtype=torch.float64)
GROUPS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2])


def test_grpo_advantages_by_hand():
    adv = group_advantages(REWARDS, GROUPS, "grpo", "group")
    s1 = math.sqrt(4 * 0.25 / 3)  # unbiased std of [1, 0, 0, 1]
    s2 = 0.25  # unbiased std of [0.5, 0.25, 0.75]
    expected = [0.5 / (s1 + 1e-4), -0.5 / (s1 + 1e-4), -0.5 / (s1 + 1e-4), 0.5 / (s1 + 1e-4)]
    expected += [0.0, -0.25 / (s2 + 1e-4), 0.25 / (s2 + 1e-4), 0.0]  # a singleton group: 0
    torch.testing.assert_close(adv, torch.tensor(expected, dtype=torch.float64))


def test_dr_grpo_and_rloo_advantages_by_hand():
    dr = group_advantages(REWARDS, GROUPS, "dr_grpo", "none")
    expected_dr = torch.tensor([0.5, -0.5, -0.5, 0.5, 0, -0.25, 0.25, 0], dtype=torch.float64)
    torch.testing.assert_close(dr, expected_dr)
    rloo = group_advantages(REWARDS, GROUPS, "rloo", "none")
    # r_i - mean of the others: 1 - 1/3, 0 - 2/3, ...; 0.5 - 0.5, 0.25 - 0.625, 0.75 - 0.375
    expected = [2 / 3, -2 / 3, -2 / 3, 2 / 3, 0.0, -0.375, 0.375, 0.0]
    torch.testing.assert_close(rloo, torch.tensor(expected, dtype=torch.float64))
    # RLOO's advantage is the mean-baseline one scaled by G / (G - 1)
    torch.testing.assert_close(rloo[:4], dr[:4] * 4 / 3)


def _inputs(policy, mask, rewards, groups, ref=None):
    return GroupLogProbs(policy, mask, rewards, groups, ref)


def test_grpo_gradient_is_minus_advantage_over_length_at_ratio_one():
    """beta = 0, ratio 1: d L / d log pi(y_{i,t}) = -A_i / (N |y_i|) (GRPO), -A_i / (N L_max) (Dr. GRPO),
    -A_i / N for every token (RLOO, no length normalisation)."""
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5], dtype=torch.float64)
    groups = torch.tensor([0, 0, 1, 1])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.float64)
    s = math.sqrt(0.5)  # unbiased std of [1, 0]
    a = [0.5 / (s + 1e-4), -0.5 / (s + 1e-4), 0.0, 0.0]
    for variant, scale, denom in (
        ("grpo", "group", lambda i: 4 * mask[i].sum()),
        ("dr_grpo", "none", lambda i: 4 * 10),
        ("rloo", "none", lambda i: 4),
    ):
        adv = a if variant == "grpo" else ([0.5, -0.5, 0, 0] if variant == "dr_grpo" else [1.0, -1.0, 0, 0])
        policy = torch.full((4, 4), -1.0, dtype=torch.float64, requires_grad=True)
        loss = GRPOLoss(variant=variant, beta=0.0, scale_rewards=scale, max_completion_length=10)
        out = loss(_inputs(policy, mask, rewards, groups))
        out.loss.backward()
        expected = torch.stack([-adv[i] / denom(i) * mask[i] for i in range(4)])
        torch.testing.assert_close(policy.grad, expected, msg=variant)
        value = -sum(adv) / 4 if variant == "rloo" else float(expected.sum())  # ratio 1
        assert float(out.loss.detach()) == pytest.approx(value)


def test_k3_kl_term_by_hand():
    """Equal rewards (advantage 0): the GRPO loss is beta times the per-sequence mean of k3."""
    policy = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], dtype=torch.float64)
    ref = torch.tensor([[-1.5, -2.0], [-0.2, -0.3]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    k3 = lambda p, q: math.exp(q - p) - (q - p) - 1  # noqa: E731
    expected = 0.1 * 0.5 * ((k3(-1.0, -1.5) + k3(-2.0, -2.0)) / 2 + k3(-0.5, -0.2))
    out = GRPOLoss(beta=0.1)(_inputs(policy, mask, torch.tensor([1.0, 1.0]), torch.tensor([0, 0]), ref))
    assert float(out.loss) == pytest.approx(expected, rel=1e-12)
    assert float(k3_kl(policy, ref)[0, 1]) == 0.0
    assert float(out.metrics["kl"]) == pytest.approx((k3(-1.0, -1.5) + k3(-0.5, -0.2)) / 3, rel=1e-6)


def test_old_logps_reference_clips_once_the_policy_moves():
    """``old_logps: reference``: ratio = pi / pi_ref per token; a token whose ratio is past 1 + eps with
    a positive advantage gets no gradient (PPO's clip)."""
    policy = torch.tensor([[0.0, -1.0], [-1.0, -1.0]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]], dtype=torch.float64)  # token (0, 0): ratio e > 1.2
    mask = torch.ones(2, 2, dtype=torch.float64)
    out = GRPOLoss(beta=0.0, old_logps="reference", scale_rewards="none")(
        _inputs(policy, mask, torch.tensor([1.0, 0.0]), torch.tensor([0, 0]), ref)
    )
    out.loss.backward()
    # A = [0.5, -0.5]; unclipped tokens: d/dp of -A * exp(p - q) / (N |y|) = -A / 4 at p = q
    expected = torch.tensor([[0.0, -0.125], [0.125, 0.125]], dtype=torch.float64)
    torch.testing.assert_close(policy.grad, expected)
    assert float(out.metrics["clip_ratio/region"][0]) == 0.5
    with pytest.raises(KeyError, match="old_logps 'reference'"):
        GRPOLoss(old_logps="reference")(_inputs(policy, mask, torch.tensor([1.0, 0.0]), torch.tensor([0, 0])))


def test_reference_needed_only_for_kl_or_reference_ratio():
    assert GRPOLoss(beta=0.04).requires_reference()
    assert not GRPOLoss(beta=0.0).requires_reference()
    assert GRPOLoss(beta=0.0, old_logps="reference").requires_reference()
    assert GRPOLoss().views == ()


def test_registered_with_variant_defaults():
    assert isinstance(LOSSES.build("grpo"), GRPOLoss)
    assert LOSSES.build({"class_path": "grpo", "init_args": {"variant": "dr_grpo"}}).scale_rewards == "none"
    assert LOSSES.build({"class_path": "grpo", "init_args": {"variant": "rloo"}}).scale_rewards == "none"
    assert LOSSES.build("grpo").scale_rewards == "group"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"variant": "ppo"}, "variant must be one of"),
        ({"beta": -1.0}, "beta must be a finite number > 0"),
        ({"epsilon": 0.0}, "epsilon must be"),
        ({"scale_rewards": "token"}, "scale_rewards"),
        ({"variant": "rloo", "scale_rewards": "group"}, "scale_rewards for variant 'rloo'"),
        ({"max_completion_length": 0}, "max_completion_length"),
        ({"old_logps": "collection"}, "old_logps"),
        ({"variant": "rloo", "old_logps": "reference"}, "KL penalty"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GRPOLoss(**kwargs)
