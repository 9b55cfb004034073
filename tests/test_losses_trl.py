"""Every loss that TRL 1.16 has, computed by TRL's own code and by ours on the same log-probs.

The DPO loss types run TRL's ``DPOTrainer._compute_loss`` on a stand-in trainer (the config fields
it reads) and a stand-in model whose fused-head output carries given per-token log-probs; the
reference log-probs go in as precomputed (``ref_chosen_logps``/``ref_rejected_logps``). ORPO and CPO
call ``ORPOTrainer.odds_ratio_loss`` and ``CPOTrainer.cpo_loss`` (``trl.experimental``); their NLL
term TRL computes from logits, so it is compared separately (ours against the per-token mean).
TRL 1.16's ``bco_pair`` keeps no running mean, so there is no state to compare.
KTO runs TRL's ``KTOTrainer._compute_loss`` the same way (see the KTO section below), and GRPO /
Dr. GRPO / RLOO run ``GRPOTrainer._compute_loss`` and ``RLOOTrainer._compute_loss`` (the GRPO section).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from aries_lit.losses import DIRECT_CHOSEN, DIRECT_REJECTED, LOSSES, SFT, ViewLogProbs

trl = pytest.importorskip("trl", reason="the TRL agreement tests need trl (pip install trl==1.16.0)")
from trl.trainer.dpo_trainer import DPOTrainer  # noqa: E402

TOL = dict(rel=1e-6, abs=1e-6)
B, T = 6, 12


def build(spec: dict):
    """Our loss from ``{"name": short_name, **init_args}``."""
    spec = dict(spec)
    return LOSSES.build({"class_path": spec.pop("name"), "init_args": spec})


def make_batch(seed: int, scale: float = 1.0) -> dict:
    """Per-token policy log-probs ``[2B, T-1]`` (chosen rows first), masks and reference sums."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T - 3, (2 * B,), generator=g)
    completion_mask = torch.zeros(2 * B, T, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        start = int(torch.randint(1, T - n + 1, (1,), generator=g))  # position 0 is always prompt
        completion_mask[i, start : start + n] = 1
    shift = completion_mask[:, 1:].to(torch.float64)
    per_token = -torch.rand(2 * B, T - 1, generator=g, dtype=torch.float64) * 2 * scale * shift
    ref = per_token.sum(1) + torch.randn(2 * B, generator=g, dtype=torch.float64) * scale
    return {"per_token": per_token, "completion_mask": completion_mask, "ref": ref}


def ours_inputs(batch: dict) -> ViewLogProbs:
    sums = batch["per_token"].sum(1)
    n = batch["completion_mask"][:, 1:].sum(1)
    return ViewLogProbs(
        policy={DIRECT_CHOSEN: sums[:B], DIRECT_REJECTED: sums[B:]},
        reference={DIRECT_CHOSEN: batch["ref"][:B], DIRECT_REJECTED: batch["ref"][B:]},
        num_tokens={DIRECT_CHOSEN: n[:B], DIRECT_REJECTED: n[B:]},
    )


def trl_loss(batch: dict, loss_types: list[str], weights: list[float] | None = None, **cfg) -> float:
    """TRL 1.16's DPO loss of ``batch``: ``DPOTrainer._compute_loss`` on stand-in trainer and model."""
    per_token = batch["per_token"]
    outputs = SimpleNamespace(
        log_probs=per_token,
        entropy=torch.zeros_like(per_token),
        mean_logits=torch.zeros_like(per_token),
        is_top1=torch.zeros_like(per_token, dtype=torch.bool),
        aux_loss=None,
    )
    ident = lambda x: x  # noqa: E731 - single-process gather
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=ident, gather=ident),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        f_alpha_divergence_coef=0.5,
        loss_types=loss_types,
        loss_weights=weights or [1.0] * len(loss_types),
        beta=cfg.get("beta", 0.1),
        label_smoothing=cfg.get("label_smoothing", 0.0),
        use_weighting=False,
        args=SimpleNamespace(discopop_tau=cfg.get("discopop_tau", 0.05), gradient_checkpointing_kwargs=None),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    cm = batch["completion_mask"]
    inputs = {
        "input_ids": torch.zeros_like(cm),
        "attention_mask": torch.ones_like(cm),
        "completion_mask": cm,
        "ref_chosen_logps": batch["ref"][:B],
        "ref_rejected_logps": batch["ref"][B:],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = DPOTrainer._compute_loss(trainer, lambda **kw: outputs, inputs, return_outputs=False)
    return float(loss)


# (TRL loss_type, TRL config fields, our registry spec)
DPO_CASES = [
    ("sigmoid", {"beta": 0.1}, {"name": "dpo", "beta": 0.1}),
    ("hinge", {"beta": 0.3}, {"name": "hinge", "beta": 0.3}),
    ("ipo", {"beta": 0.2}, {"name": "ipo", "beta": 0.2}),
    ("exo_pair", {"beta": 0.1, "label_smoothing": 1e-3}, {"name": "exo_pair", "beta": 0.1}),
    ("nca_pair", {"beta": 0.1}, {"name": "nca_pair", "beta": 0.1}),
    ("robust", {"beta": 0.1, "label_smoothing": 0.2}, {"name": "robust", "label_smoothing": 0.2}),
    ("bco_pair", {"beta": 0.2}, {"name": "bco_pair", "beta": 0.2}),
    ("sppo_hard", {"beta": 0.5}, {"name": "sppo_hard", "beta": 0.5}),
    ("aot", {"beta": 0.1, "label_smoothing": 0.1}, {"name": "aot", "label_smoothing": 0.1}),
    ("aot_unpaired", {"beta": 0.1, "label_smoothing": 0.1}, {"name": "aot_unpaired", "label_smoothing": 0.1}),
    ("apo_zero", {"beta": 0.1}, {"name": "apo_zero", "beta": 0.1}),
    ("apo_down", {"beta": 0.1}, {"name": "apo_down", "beta": 0.1}),
    ("discopop", {"beta": 0.1, "discopop_tau": 0.05}, {"name": "discopop", "beta": 0.1, "tau": 0.05}),
    ("sigmoid_norm", {"beta": 0.5}, {"name": "sigmoid_norm", "beta": 0.5}),
]


def test_the_cases_cover_every_trl_loss_type():
    """Every ``loss_type`` TRL 1.16 accepts is compared here (``sft`` below), none missed."""
    import inspect

    source = inspect.getsource(DPOTrainer._compute_loss)
    trl_types = set(__import__("re").findall(r'loss_type == "(\w+)"', source))
    assert trl_types == {c[0] for c in DPO_CASES} | {"sft"}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("loss_type,cfg,spec", DPO_CASES, ids=[c[0] for c in DPO_CASES])
def test_dpo_loss_types_agree_with_trl(loss_type, cfg, spec, seed):
    batch = make_batch(seed, scale=3.0)
    ours = float(build(spec)(ours_inputs(batch)).loss)
    assert ours == pytest.approx(trl_loss(batch, [loss_type], **cfg), **TOL)


def test_trl_sft_loss_type_is_our_token_mean_sft():
    batch = make_batch(3)
    assert float(SFT()(ours_inputs(batch)).loss) == pytest.approx(trl_loss(batch, ["sft"]), **TOL)


@pytest.mark.parametrize(
    "name,loss_type", [("dpo", "sigmoid"), ("ipo", "ipo"), ("robust", "robust"), ("apo_zero", "apo_zero")]
)
def test_rpo_alpha_is_trls_sft_term(name, loss_type):
    """``rpo_alpha`` = TRL's ``loss_type=[<loss>, "sft"], loss_weights=[1, rpo_alpha]`` (RPO)."""
    batch = make_batch(4, scale=2.0)
    extra = {"label_smoothing": 0.1} if name == "robust" else {}
    ours = build({"name": name, "beta": 0.2, "rpo_alpha": 0.7, **extra})(ours_inputs(batch))
    plain = build({"name": name, "beta": 0.2, **extra})(ours_inputs(batch))
    expected = trl_loss(batch, [loss_type, "sft"], [1.0, 0.7], beta=0.2, **extra)
    assert float(ours.loss) == pytest.approx(expected, **TOL)
    assert float(ours.loss) != pytest.approx(float(plain.loss), **TOL)


def _stand_in(**fields) -> SimpleNamespace:
    return SimpleNamespace(accelerator=SimpleNamespace(device=torch.device("cpu")), **fields)


def test_orpo_agrees_with_trl_odds_ratio_loss():
    orpo = pytest.importorskip("trl.experimental.orpo.orpo_trainer", reason="TRL's ORPO trainer is needed")
    batch = make_batch(5)
    logps = ours_inputs(batch)
    out = build({"name": "orpo", "beta": 0.25})(logps)
    avg_w = logps.policy[DIRECT_CHOSEN] / logps.num_tokens[DIRECT_CHOSEN]
    avg_l = logps.policy[DIRECT_REJECTED] / logps.num_tokens[DIRECT_REJECTED]
    losses, *_ = orpo.ORPOTrainer.odds_ratio_loss(_stand_in(beta=0.25), avg_w, avg_l)
    nll = -logps.policy[DIRECT_CHOSEN].sum() / logps.num_tokens[DIRECT_CHOSEN].sum()
    assert float(out.metrics["loss/nll"]) == pytest.approx(float(nll), **TOL)
    assert float(out.loss) == pytest.approx(float(nll - losses.mean()), **TOL)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_cpo_agrees_with_trl_cpo_loss(ls):
    cpo = pytest.importorskip("trl.experimental.cpo.cpo_trainer", reason="TRL's CPO trainer is needed")
    batch = make_batch(6, scale=0.3)
    logps = ours_inputs(batch)
    fields = dict(alpha=0.0, beta=0.2, loss_type="sigmoid", label_smoothing=ls, simpo_gamma=0.5)
    losses, *_ = cpo.CPOTrainer.cpo_loss(
        _stand_in(**fields), logps.policy[DIRECT_CHOSEN], logps.policy[DIRECT_REJECTED]
    )
    ours = build({"name": "cpo", "beta": 0.2, "cpo_alpha": 0.0, "label_smoothing": ls})(logps)
    assert float(ours.loss) == pytest.approx(float(losses.mean()), **TOL)
    with_nll = build({"name": "cpo", "beta": 0.2, "cpo_alpha": 1.5, "label_smoothing": ls})(logps)
    nll = -logps.policy[DIRECT_CHOSEN].sum() / logps.num_tokens[DIRECT_CHOSEN].sum()
    assert float(with_nll.loss) == pytest.approx(float(losses.mean() + 1.5 * nll), **TOL)


def test_simpo_agrees_with_trl_cpo_simpo_loss():
    cpo = pytest.importorskip("trl.experimental.cpo.cpo_trainer", reason="TRL's CPO trainer is needed")
    logps = ours_inputs(make_batch(8))
    avg_w = logps.policy[DIRECT_CHOSEN] / logps.num_tokens[DIRECT_CHOSEN]
    avg_l = logps.policy[DIRECT_REJECTED] / logps.num_tokens[DIRECT_REJECTED]
    fields = dict(alpha=0.0, beta=2.0, loss_type="simpo", label_smoothing=0.0, simpo_gamma=0.5)
    losses, *_ = cpo.CPOTrainer.cpo_loss(_stand_in(**fields), avg_w, avg_l)
    ours = build({"name": "simpo", "beta": 2.0, "gamma": 0.5})(logps)
    assert float(ours.loss) == pytest.approx(float(losses.mean()), **TOL)


# --------------------------------------------------------------------------- KTO (TRL's KTOTrainer)
#
# A batch of B pairs is TRL's unpaired batch of 2B rows (B chosen rows labelled True, then B rejected
# rows labelled False). ``KTOTrainer._compute_loss`` runs on a stand-in trainer and a stand-in model
# that returns the given per-token log-probs for the completion rows and for the KL rows (the
# mismatched (prompt, completion) sequences TRL builds), references precomputed (``ref_logps``,
# ``ref_KL_logps``). TRL's ``kl`` is a pure function of the KL rows' log-probs, so setting the KL rows
# to the completion rows gives TRL the estimate ``kto`` documents; any other KL rows compare
# :func:`aries_lit.losses.kto.kto_losses` on TRL's own estimate.


def trl_kto(batch: dict, kl_batch: dict | None = None, labels=None, **cfg) -> tuple[torch.Tensor, dict]:
    """TRL 1.16's KTO loss of ``batch`` (rows: chosen then rejected) and its logged metrics.

    ``kl_batch`` (same layout) gives the KL rows; ``None`` makes them the completion rows.
    """
    from trl.trainer.kto_trainer import KTOTrainer

    kl_batch = batch if kl_batch is None else kl_batch
    per_token, kl_per_token = batch["per_token"], kl_batch["per_token"]
    n = per_token.shape[0]

    def model(input_ids, **kw):
        lp = kl_per_token if bool((input_ids == 1).all()) else per_token
        zeros = torch.zeros_like(lp)
        return SimpleNamespace(log_probs=lp, entropy=zeros, mean_logits=zeros, aux_loss=None)

    ident = lambda x: x  # noqa: E731 - single-process gather
    loss_type = cfg.get("loss_type", "kto")
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=ident),
        aux_loss_enabled=False,
        precompute_ref_logps=True,
        calculate_KL=loss_type != "apo_zero_unpaired",
        loss_type=loss_type,
        beta=cfg.get("beta", 0.1),
        desirable_weight=cfg.get("desirable_weight", 1.0),
        undesirable_weight=cfg.get("undesirable_weight", 1.0),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    trainer._compute_kl_logps = lambda m, b: KTOTrainer._compute_kl_logps(trainer, m, b)  # TRL's own
    cm, kl_cm = batch["completion_mask"], kl_batch["completion_mask"]
    inputs = {
        "input_ids": torch.zeros_like(cm),
        "attention_mask": torch.ones_like(cm),
        "completion_mask": cm,
        "KL_input_ids": torch.ones_like(kl_cm),
        "KL_attention_mask": torch.ones_like(kl_cm),
        "KL_completion_mask": kl_cm,
        "label": torch.tensor([True] * (n // 2) + [False] * (n // 2)) if labels is None else labels,
        "ref_logps": batch["ref"],
        "ref_KL_logps": kl_batch["ref"],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = KTOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)
    return loss, {k: v[-1] for k, v in trainer._metrics["train"].items()}


KTO_CASES = [
    {"beta": 0.1},
    {"beta": 0.5, "desirable_weight": 1.33, "undesirable_weight": 0.7},
    {"beta": 0.2, "loss_type": "apo_zero_unpaired"},
    {"beta": 0.3, "desirable_weight": 0.8, "undesirable_weight": 2.0, "loss_type": "apo_zero_unpaired"},
]


def test_kto_cases_cover_every_trl_kto_loss_type():
    import inspect

    from trl.trainer.kto_trainer import KTOTrainer

    source = inspect.getsource(KTOTrainer._compute_loss)
    trl_types = set(__import__("re").findall(r'loss_type == "(\w+)"', source))
    assert trl_types == {c.get("loss_type", "kto") for c in KTO_CASES}


@pytest.mark.parametrize("seed,ref_shift", [(0, 0.0), (1, -1.5), (2, 1.5)])
@pytest.mark.parametrize("cfg", KTO_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_kto_agrees_with_trl(cfg, seed, ref_shift):
    """Loss, its gradient (per example, hence every per-example loss term and the detached KL) and
    the metrics TRL logs (``kl``, mean ``rewards/*``, ``logps/*``), on the same log-probs.
    ``ref_shift`` < 0 makes the KL estimate clearly positive, > 0 makes it clamp at 0."""
    batch = make_batch(seed, scale=2.0)
    batch["ref"] = batch["ref"] + ref_shift
    batch["per_token"].requires_grad_(True)
    expected, trl_metrics = trl_kto(batch, **cfg)
    (trl_grad,) = torch.autograd.grad(expected, batch["per_token"])

    logps = ours_inputs(batch)
    out = build({"name": "kto", **cfg})(logps)
    (our_grad,) = torch.autograd.grad(out.loss, batch["per_token"])
    if cfg.get("loss_type", "kto") == "kto" and ref_shift < 0:
        assert trl_metrics["kl"] > 1.0
    if ref_shift > 0:
        assert trl_metrics["kl"] == 0.0
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()), **TOL)
    torch.testing.assert_close(our_grad, trl_grad, rtol=1e-6, atol=1e-9)
    assert float(out.metrics["kto/kl"]) == pytest.approx(trl_metrics["kl"], **TOL)
    for ours, theirs in [
        ("rewards/chosen", "rewards/chosen"),
        ("rewards/rejected", "rewards/rejected"),
        ("logps/direct/chosen", "logps/chosen"),
        ("logps/direct/rejected", "logps/rejected"),
    ]:
        assert float(out.metrics[ours].mean()) == pytest.approx(trl_metrics[theirs], **TOL), ours
    assert float(out.metrics["rewards/margin"].mean()) == pytest.approx(trl_metrics["rewards/margins"], **TOL)


def test_kto_per_example_rewards_agree_with_trl():
    """TRL logs only batch means; a one-pair batch each gives its per-example rewards (which do not
    depend on the KL estimate)."""
    batch = make_batch(7, scale=2.0)
    out = build({"name": "kto", "beta": 0.3})(ours_inputs(batch))
    for b in range(B):
        rows = [b, B + b]
        one = {k: batch[k][rows] for k in ("per_token", "completion_mask", "ref")}
        _, metrics = trl_kto(one, beta=0.3)
        assert float(out.metrics["rewards/chosen"][b]) == pytest.approx(metrics["rewards/chosen"], **TOL)
        assert float(out.metrics["rewards/rejected"][b]) == pytest.approx(metrics["rewards/rejected"], **TOL)


def test_kto_losses_on_trls_mismatched_kl_estimate():
    """With TRL's own KL rows (completions rotated by one, scored under other prompts), the loss
    terms (:func:`kto_losses`) on TRL's estimate (:func:`kl_estimate`) give TRL's loss."""
    from aries_lit.losses.kto import kl_estimate, kto_losses

    batch = make_batch(3, scale=2.0)
    kl_batch = make_batch(13, scale=2.0)  # different completions/log-probs: the mismatched rows
    kl_batch["ref"] = kl_batch["ref"] - 3.0  # a positive KL, so the clamp does not hide it
    cfg = {"beta": 0.2, "desirable_weight": 1.2, "undesirable_weight": 0.9}
    expected, metrics = trl_kto(batch, kl_batch, **cfg)
    kl = kl_estimate(kl_batch["per_token"].sum(1) - kl_batch["ref"])
    assert float(kl) > 0 and float(kl) == pytest.approx(metrics["kl"], **TOL)
    lr = batch["per_token"].sum(1) - batch["ref"]
    chosen, rejected = kto_losses(lr[:B], lr[B:], kl, **cfg)
    assert float(torch.cat((chosen, rejected)).mean()) == pytest.approx(float(expected), **TOL)


#: unpaired label patterns of the 2B rows (B = 6): 7 desirable and 5 undesirable, interleaved; all
#: desirable; all undesirable (TRL's empty-tensor branches)
UNPAIRED_LABELS = {
    "mixed-7-5": [True, False, True, True, False, True, False, True, True, False, True, False],
    "all-desirable": [True] * (2 * B),
    "all-undesirable": [False] * (2 * B),
}


@pytest.mark.parametrize("labels", list(UNPAIRED_LABELS), ids=list(UNPAIRED_LABELS))
@pytest.mark.parametrize("seed,ref_shift", [(4, -1.5), (5, 1.5)])
@pytest.mark.parametrize("cfg", KTO_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_unpaired_kto_agrees_with_trl(cfg, seed, ref_shift, labels):
    """KTO on an unpaired batch (:meth:`KTOLoss.unpaired`): ``KTOTrainer._compute_loss`` on the same
    rows and labels (KL rows = the completion rows, as in the paired case), unequal numbers of
    desirable and undesirable examples or only one kind: loss, gradient, ``kl`` and the logged means."""
    from aries_lit.losses import UnpairedLogProbs

    batch = make_batch(seed, scale=2.0)
    batch["ref"] = batch["ref"] + ref_shift
    batch["per_token"].requires_grad_(True)
    label = torch.tensor(UNPAIRED_LABELS[labels])
    expected, trl_metrics = trl_kto(batch, labels=label, **cfg)
    (trl_grad,) = torch.autograd.grad(expected, batch["per_token"])

    logps = UnpairedLogProbs(policy=batch["per_token"].sum(1), labels=label, reference=batch["ref"])
    out = LOSSES.build({"class_path": "kto", "init_args": cfg}).unpaired(logps)
    (our_grad,) = torch.autograd.grad(out.loss, batch["per_token"])
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()), **TOL)
    torch.testing.assert_close(our_grad, trl_grad, rtol=1e-6, atol=1e-9)
    assert float(out.metrics["kto/kl"]) == pytest.approx(trl_metrics["kl"], **TOL)
    if cfg.get("loss_type", "kto") == "kto" and ref_shift < 0:
        assert trl_metrics["kl"] > 1.0
    for side in ("chosen", "rejected"):
        for kind in ("rewards", "logps"):
            ours = out.metrics[f"{kind}/{side}"]
            if f"{kind}/{side}" in trl_metrics:
                assert float(ours.mean()) == pytest.approx(trl_metrics[f"{kind}/{side}"], **TOL)
            else:  # TRL logs nothing for a side the batch lacks; ours is empty
                assert ours.numel() == 0
    assert out.metrics["kto/desirable"].tolist() == label.float().tolist()


# --------------------------------------------------------------------------- GRPO / Dr. GRPO / RLOO
# ``GRPOTrainer._compute_loss`` and ``RLOOTrainer._compute_loss`` run on stand-in trainers whose
# ``_get_per_token_logps_and_entropies`` returns the same per-token log-probs we give our loss (a leaf
# tensor, so the gradients are compared too); advantages, old and reference log-probs go in as the
# inputs TRL's ``_generate_and_score_completions`` would have made. That method is not a pure
# function (it generates and calls reward functions), so its advantage lines are compared below as a
# transcription that calls TRL's own ``nanstd``.
def group_batch(seed: int, sizes=(4, 4, 4), T_: int = 9) -> dict:
    """``N = sum(sizes)`` completions: per-token policy, reference and old log-probs ``[N, T]``, a
    completion mask (at least one token each), rewards with ties inside a group, group index."""
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    lengths = torch.randint(1, T_ + 1, (n,), generator=g)
    mask = (torch.arange(T_).unsqueeze(0) < lengths.unsqueeze(1)).to(torch.float64)
    policy = -torch.rand(n, T_, generator=g, dtype=torch.float64) * 3
    ref = policy + torch.randn(n, T_, generator=g, dtype=torch.float64) * 0.3
    old = policy + torch.randn(n, T_, generator=g, dtype=torch.float64) * 0.3
    rewards = torch.randint(0, 3, (n,), generator=g).to(torch.float64) / 2
    group_index = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return dict(policy=policy, ref=ref, old=old, mask=mask, rewards=rewards, group_index=group_index)


def trl_grpo_advantages(rewards: torch.Tensor, num_generations: int, scale_rewards: str) -> torch.Tensor:
    """TRL 1.16 ``GRPOTrainer._generate_and_score_completions``'s advantage lines (one reward function,
    ``multi_objective_aggregation="sum_then_normalize"``), with TRL's ``nanstd``."""
    from trl.trainer.utils import nanstd

    mean_grouped = torch.nanmean(rewards.view(-1, num_generations), dim=1).repeat_interleave(num_generations)
    if scale_rewards in ("group", "none"):
        std = nanstd(rewards.view(-1, num_generations), dim=1).repeat_interleave(num_generations)
    else:
        std = nanstd(rewards).expand_as(rewards)
    adv = rewards - mean_grouped
    if scale_rewards != "none":
        adv = adv / (std + 1e-4)
    return torch.nan_to_num(adv, nan=0.0)


def trl_rloo_advantages(rewards, num_generations, normalize, beta=0.0, old=None, ref=None, mask=None):
    """TRL 1.16 ``RLOOTrainer._generate_and_score_completions``'s KL-in-reward and advantage lines."""
    from trl.trainer.utils import nanstd

    if beta != 0.0:
        rewards = rewards - beta * ((old - ref) * mask).sum(-1)
    grouped = rewards.view(-1, num_generations)
    counts = (~torch.isnan(grouped)).sum(dim=1, keepdim=True)
    baselines = ((torch.nansum(grouped, dim=1, keepdim=True) - grouped) / (counts - 1)).view(-1)
    adv = rewards - baselines
    if normalize:
        adv = (adv - torch.nanmean(adv)) / (nanstd(adv) + 1e-4)
    return torch.nan_to_num(adv, nan=0.0)


def _trl_trainer(per_token: torch.Tensor, **fields) -> SimpleNamespace:
    ident = lambda x, **kw: x  # noqa: E731 - single process
    return SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **kw: (per_token, torch.zeros_like(per_token), None),
        model=SimpleNamespace(training=True),
        accelerator=SimpleNamespace(device=torch.device("cpu"), gather=ident, reduce=ident, num_processes=1),
        aux_loss_enabled=False,
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        use_vllm=False,
        current_gradient_accumulation_steps=1,
        _entropy_bonus_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        **fields,
    )


def _trl_inputs(batch: dict, advantages: torch.Tensor, old: torch.Tensor | None) -> dict:
    n, t = batch["mask"].shape
    inputs = {
        "prompt_ids": torch.zeros(n, 2, dtype=torch.long),
        "prompt_mask": torch.ones(n, 2, dtype=torch.long),
        "completion_ids": torch.zeros(n, t, dtype=torch.long),
        "completion_mask": batch["mask"],
        "advantages": advantages,
        "ref_per_token_logps": batch["ref"],
    }
    if old is not None:
        inputs["old_per_token_logps"] = old
    return inputs


def _ours(batch: dict, old: torch.Tensor | None, **spec):
    from aries_lit.losses import GroupLogProbs

    policy = batch["policy"].clone().requires_grad_(True)
    logps = GroupLogProbs(policy, batch["mask"], batch["rewards"], batch["group_index"], batch["ref"], old)
    out = build({"name": "grpo", **spec})(logps)
    out.loss.backward()
    return out, policy.grad


GRPO_CASES = [  # (TRL loss_type, scale_rewards, beta, with old log-probs)
    ("grpo", "group", 0.0, False),
    ("grpo", "group", 0.04, False),
    ("grpo", "group", 0.1, True),
    ("grpo", "batch", 0.04, True),
    ("dr_grpo", "none", 0.0, False),
    ("dr_grpo", "none", 0.04, True),
    ("dr_grpo", "group", 0.04, True),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("loss_type,scale,beta,with_old", GRPO_CASES, ids=lambda v: str(v))
def test_grpo_agrees_with_trl(loss_type, scale, beta, with_old, seed):
    """Loss, its gradient w.r.t. every per-token log-prob, ``kl`` and the clip ratio, against
    ``GRPOTrainer._compute_loss`` (token-level ratio; ``old`` given: the clip acts)."""
    from trl.trainer.grpo_trainer import GRPOTrainer

    batch = group_batch(seed)
    old = batch["old"] if with_old else None
    adv = trl_grpo_advantages(batch["rewards"], 4, scale)
    per_token = batch["policy"].clone().requires_grad_(True)
    trainer = _trl_trainer(
        per_token,
        beta=beta,
        loss_type=loss_type,
        epsilon_low=0.2,
        epsilon_high=0.28,
        max_completion_length=16,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None),
    )
    expected = GRPOTrainer._compute_loss(trainer, None, _trl_inputs(batch, adv, old))
    expected.backward()
    spec = dict(variant=loss_type, beta=beta, epsilon=0.2, epsilon_high=0.28, scale_rewards=scale)
    out, grad = _ours(batch, old, max_completion_length=16, **spec)
    assert float(out.loss) == pytest.approx(float(expected), **TOL)
    torch.testing.assert_close(grad, per_token.grad, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out.metrics["advantages"], adv.float(), rtol=1e-6, atol=1e-6)
    if beta:
        assert float(out.metrics["kl"]) == pytest.approx(trainer._metrics["train"]["kl"][0], **TOL)
    region = float((out.metrics["clip_ratio/region"] * batch["mask"].sum(-1)).sum() / batch["mask"].sum())
    assert region == pytest.approx(trainer._metrics["train"]["clip_ratio/region_mean"][0], **TOL)
    if with_old:
        assert region > 0  # the case exercises the clip


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("beta,with_old", [(0.0, False), (0.0, True), (0.05, False), (0.05, True)])
def test_rloo_agrees_with_trl(normalize, beta, with_old):
    """Loss and gradient against ``RLOOTrainer._compute_loss`` (sequence-level ratio), with TRL's
    leave-one-out advantages of rewards that carry its KL penalty ``beta * sum_t (old - ref)``."""
    from trl.trainer.rloo_trainer import RLOOTrainer

    batch = group_batch(3)
    old = batch["old"] if with_old else None
    old_tokens = batch["old"] if with_old else batch["policy"]
    adv = trl_rloo_advantages(batch["rewards"], 4, normalize, beta, old_tokens, batch["ref"], batch["mask"])
    per_token = batch["policy"].clone().requires_grad_(True)
    trainer = _trl_trainer(per_token, epsilon_low=0.2, epsilon_high=0.2)
    inputs = _trl_inputs(batch, adv, None)
    inputs["old_logps"] = (old_tokens * batch["mask"]).sum(1)
    expected = RLOOTrainer._compute_loss(trainer, None, inputs)
    expected.backward()
    scale = "batch" if normalize else "none"
    out, grad = _ours(batch, old, variant="rloo", beta=beta, epsilon=0.2, scale_rewards=scale)
    assert float(out.loss) == pytest.approx(float(expected), **TOL)
    torch.testing.assert_close(grad, per_token.grad, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out.metrics["advantages"], adv.float(), rtol=1e-6, atol=1e-6)
    region = float(out.metrics["clip_ratio/region"].mean())
    assert region == pytest.approx(trainer._metrics["train"]["clip_ratio/region_mean"][0], **TOL)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_function_matches_trls(scale):
    """Our pure ``group_advantages`` on equal-size groups against the TRL transcription above."""
    from aries_lit.losses.group import group_advantages

    batch = group_batch(5, sizes=(3, 3, 3))
    ours = group_advantages(batch["rewards"], batch["group_index"], "grpo", scale)
    torch.testing.assert_close(ours, trl_grpo_advantages(batch["rewards"], 3, scale), rtol=1e-6, atol=1e-9)
