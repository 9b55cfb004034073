"""ARIES + GRPO (ARIES Eq. 10 with GRPO, arXiv 2402.03300, as ``L_pref``): the composite on group
inputs, the group data module's refinement views of each group's best/worst answers, the module's
step and its refusals."""

from __future__ import annotations

import json

import pytest
import torch

from aries_lit.core.errors import DataValidationError
from aries_lit.data import GroupDataModule, PreferenceDataModule, ViewTokenizer
from aries_lit.losses import (
    LOSSES,
    REFINE_L,
    REFINE_L_CHOSEN,
    REFINE_L_REJECTED,
    REFINE_W,
    REFINE_W_CHOSEN,
    REFINE_W_REJECTED,
    ARIESLoss,
    BTARIESLoss,
    BTRefineLoss,
    DPOLoss,
    GroupLogProbs,
    GRPOLoss,
    RefineMSELoss,
    ViewLogProbs,
    reads_groups,
)
from aries_lit.models import load_tokenizer
from aries_lit.pipeline.run_template import apply_run_template
from aries_lit.pipeline.specs import StageSpec
from aries_lit.prompts.templates import RefinementTemplate

REFINE_VIEWS = (REFINE_L_CHOSEN, REFINE_L_REJECTED, REFINE_W_CHOSEN, REFINE_W_REJECTED)


def group_inputs(seed: int = 0, groups: int = 3, size: int = 4, tokens: int = 5) -> GroupLogProbs:
    """Random per-token log-probs of ``groups * size`` completions (policy requires grad, float64),
    with the refine views of one pair per group."""
    g = torch.Generator().manual_seed(seed)
    n = groups * size
    policy = (-torch.rand(n, tokens, generator=g, dtype=torch.float64) * 3).requires_grad_()
    mask = torch.arange(tokens).unsqueeze(0) < torch.randint(1, tokens + 1, (n, 1), generator=g)
    reference = policy.detach() + torch.randn(n, tokens, generator=g, dtype=torch.float64) * 0.1
    rewards = torch.randint(0, 2, (n,), generator=g).double()
    views = ViewLogProbs(
        policy={
            v: (-torch.rand(groups, generator=g, dtype=torch.float64) * 30).requires_grad_()
            for v in REFINE_VIEWS
        },
        reference={v: -torch.rand(groups, generator=g, dtype=torch.float64) * 30 for v in REFINE_VIEWS},
    )
    index = torch.arange(n) // size
    return GroupLogProbs(policy, mask, rewards, index, reference, views=views)


def _grads(logps: GroupLogProbs) -> list[torch.Tensor]:
    return [logps.policy.grad, *(logps.views.policy[v].grad for v in REFINE_VIEWS)]


def _zero(logps: GroupLogProbs) -> None:
    for t in [logps.policy, *logps.views.policy.values()]:
        t.grad = None


@pytest.mark.parametrize("cls,refine", [(ARIESLoss, RefineMSELoss), (BTARIESLoss, BTRefineLoss)])
@pytest.mark.parametrize("alpha", [0.8, 0.3])
def test_composite_is_the_weighted_sum_of_grpo_and_refine(cls, refine, alpha):
    logps = group_inputs()
    grpo, ref_loss = GRPOLoss(beta=0.04), refine(beta=0.05)
    loss = cls(preference=grpo, refine=ref_loss, alpha=alpha)
    out = loss(logps)
    out.loss.backward()
    got = [g.clone() for g in _grads(logps)]
    _zero(logps)
    g_out, r_out = grpo(logps), ref_loss(logps.views)
    expected = (1 - alpha) * g_out.loss + alpha * r_out.loss
    expected.backward()
    assert out.loss.shape == ()
    torch.testing.assert_close(out.loss, expected, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, _grads(logps)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert float(out.metrics["loss/pref"]) == pytest.approx(float(g_out.loss))
    assert float(out.metrics["loss/refine"]) == pytest.approx(float(r_out.loss))
    assert out.metrics["advantages"].shape == (12,)  # the group term's, one per completion
    assert out.metrics["refine/v_l_to_w"].shape == (3,)  # the refine term's, one per group
    assert loss.required_views() == REFINE_VIEWS  # the group term reads no view
    assert loss.requires_reference() and reads_groups(loss)


def test_alpha_zero_is_grpo_alone_and_alpha_one_the_refine_term_alone():
    logps = group_inputs(seed=1)
    grpo, refine = GRPOLoss(beta=0.0), RefineMSELoss()
    only_grpo = ARIESLoss(preference=grpo, refine=refine, alpha=0.0)
    assert only_grpo.required_views() == () and not only_grpo.requires_reference()
    no_views = GroupLogProbs(logps.policy, logps.mask, logps.rewards, logps.group_index)
    out = only_grpo(no_views)
    assert float(out.loss) == float(grpo(no_views).loss) and "loss/refine" not in out.metrics
    only_refine = ARIESLoss(preference=grpo, refine=refine, alpha=1.0)
    assert only_refine.required_views() == REFINE_VIEWS and only_refine.requires_reference()
    expected = float(refine(logps.views).loss)
    assert float(only_refine(logps).loss) == expected
    assert float(only_refine(logps.views).loss) == expected  # the group rows need not be computed
    assert "loss/pref" not in only_refine(logps.views).metrics
    # the reference is the union of the computed parts' needs
    assert ARIESLoss(preference=GRPOLoss(beta=0.04), alpha=0.0).requires_reference()
    assert ARIESLoss(preference=GRPOLoss(beta=0.0), alpha=0.5).requires_reference()


def test_wrong_inputs_are_refused_in_one_line():
    logps = group_inputs(seed=2)
    with pytest.raises(TypeError, match="reads GroupLogProbs"):
        ARIESLoss(preference="grpo")(logps.views)
    with pytest.raises(KeyError, match="GroupLogProbs.views"):
        ARIESLoss(preference="grpo")(
            GroupLogProbs(logps.policy, logps.mask, logps.rewards, logps.group_index)
        )
    with pytest.raises(TypeError, match="pair preference loss reads ViewLogProbs"):
        ARIESLoss(preference=DPOLoss())(logps)
    with pytest.raises(TypeError, match="preference must be a PreferenceLoss or a GroupLoss"):
        ARIESLoss(preference=RefineMSELoss())


def test_built_from_names_and_specs():
    loss = LOSSES.build(
        {
            "class_path": "bt_aries",
            "init_args": {
                "preference": {"class_path": "grpo", "init_args": {"variant": "rloo", "beta": 0.0}}
            },
        }
    )
    assert isinstance(loss, BTARIESLoss) and isinstance(loss.preference, GRPOLoss)
    assert loss.preference.variant == "rloo" and isinstance(loss.refine, BTRefineLoss)
    assert loss.group_preference and not ARIESLoss().group_preference and not reads_groups(ARIESLoss())


# --------------------------------------------------------------------------- data


GROUP = {
    "id": "q1",
    "prompt": "What is 2 + 2?",
    "completions": ["It is 5.", "It is 4.", "Four: 4."],
    "rewards": [0.0, 1.0, 1.0],
    "chosen": "Four: 4.",
    "rejected": "It is 5.",
}


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def _dm(tok, path, views=REFINE_VIEWS, **kwargs):
    dm = GroupDataModule(path, max_length=384, max_context_length=320, **kwargs)
    dm.configure(tok, views)
    dm.setup()
    return dm


def test_group_records_give_the_refine_views_of_their_best_and_worst(tiny_model_dir, tmp_path):
    tok = load_tokenizer(str(tiny_model_dir))
    second = {**GROUP, "id": "q2", "prompt": [{"role": "user", "content": "3 + 3?"}]}
    second.update(completions=["6", "7"], rewards=[1.0, 0.0], chosen="6", rejected="7")
    dm = _dm(tok, _write(tmp_path / "g.jsonl", [GROUP, second]), template="short")
    row = dm.train_data[0]
    text = {key: tok.decode(row[key]) for key in row if key.startswith(("ctx.", "resp."))}
    assert set(text) == {f"ctx.{REFINE_L}", f"ctx.{REFINE_W}", "resp.chosen", "resp.rejected"}
    assert "EXAMPLE RESPONSE:\nIt is 5." in text[f"ctx.{REFINE_L}"]  # y_l in the refine context
    assert "EXAMPLE RESPONSE:\nFour: 4." in text[f"ctx.{REFINE_W}"]
    assert text["resp.chosen"].startswith("Four: 4.") and text["resp.rejected"].startswith("It is 5.")
    # the pair records' own tokenizer, on the same record: the same features
    same = ViewTokenizer(tok, REFINE_VIEWS, RefinementTemplate.from_spec("short"), 384, 320)(GROUP)
    assert {k: row[k] for k in same} == same
    assert dm.stats["train/pairs/records"] == 2 and dm.stats["train/groups"] == 2
    batch = dm.collator()([dm.train_data[0], dm.train_data[1]])
    assert batch["input_ids"].shape[0] == 5 and batch["group_index"].tolist() == [0, 0, 0, 1, 1]
    pairs = batch["pair_views"]
    assert pairs["views"] == list(REFINE_VIEWS) and pairs["batch_size"] == 2
    assert pairs["input_ids"].shape[0] == 4  # shared contexts: refine_l, refine_w per group
    rows = _dm(tok, _write(tmp_path / "h.jsonl", [GROUP, second]), shared_context=False).collator()
    assert rows([dm.train_data[0], dm.train_data[1]])["pair_views"]["input_ids"].shape[0] == 8


def test_the_views_match_a_pair_data_module_on_the_same_pair(tiny_model_dir, tmp_path):
    tok = load_tokenizer(str(tiny_model_dir))
    group_row = _dm(tok, _write(tmp_path / "g.jsonl", [GROUP]), template="paper").train_data[0]
    pair = {k: GROUP[k] for k in ("id", "prompt", "chosen", "rejected")}
    pdm = PreferenceDataModule(_write(tmp_path / "p.jsonl", [pair]), max_length=384, max_context_length=320)
    pdm.configure(tok, REFINE_VIEWS)
    pdm.setup()
    pair_row = pdm.train_data[0]
    keys = [k for k in pair_row if k.startswith(("ctx.", "resp."))]
    assert len(keys) == 4 and all(group_row[k] == pair_row[k] for k in keys)


def test_pair_fields_are_required_only_when_the_loss_reads_views(tiny_model_dir, tmp_path):
    tok = load_tokenizer(str(tiny_model_dir))
    bare = {k: v for k, v in GROUP.items() if k not in ("chosen", "rejected")}
    path = _write(tmp_path / "g.jsonl", [bare])
    plain = _dm(tok, path, views=())  # GRPO alone reads no view: no pair fields needed
    assert "pair_views" not in plain.collator()([plain.train_data[0]])
    with pytest.raises(DataValidationError) as err:
        _dm(tok, path)
    assert err.value.field == "chosen" and "best and worst" in str(err.value)


def test_the_run_template_reaches_the_group_data_module():
    stage = {"name": "g", "fit": {"data": {"class_path": "aries_lit.data.GroupDataModule", "init_args": {}}}}
    (filled,), _ = apply_run_template("short", [StageSpec.from_config(stage, "stages[0]")])
    assert filled.fit["data"]["init_args"]["template"] == "short"


# --------------------------------------------------------------------------- module


def test_modules_accept_and_refuse_the_composite(tiny_model_dir):
    from aries_lit.modules import GroupPolicyModule, PreferenceModule

    with pytest.raises(
        ValueError, match="ARIESLoss with preference GRPOLoss.*GroupPolicyModule.*GroupDataModule"
    ):
        PreferenceModule(str(tiny_model_dir), loss=ARIESLoss(preference="grpo"))
    with pytest.raises(
        ValueError, match="preference of BTARIESLoss, DPOLoss, is a pair loss.*PreferenceModule"
    ):
        GroupPolicyModule(str(tiny_model_dir), loss="bt_aries")
    module = GroupPolicyModule(str(tiny_model_dir), loss=ARIESLoss(preference="grpo"))
    assert module.views == REFINE_VIEWS


@pytest.mark.parametrize("alpha", [0.8, 0.0, 1.0])
def test_a_step_is_the_weighted_sum_of_its_parts(tiny_model_dir, tmp_path, alpha, monkeypatch):
    from aries_lit.modules import GroupPolicyModule

    tok = load_tokenizer(str(tiny_model_dir))
    second = {**GROUP, "id": "q2", "rewards": [1.0, 0.0, 0.5], "chosen": "It is 5.", "rejected": "It is 4."}
    loss = ARIESLoss(preference=GRPOLoss(beta=0.04), refine=RefineMSELoss(beta=0.05), alpha=alpha)
    module = GroupPolicyModule(str(tiny_model_dir), loss=loss)
    module.configure_model()
    dm = _dm(tok, _write(tmp_path / "g.jsonl", [GROUP, second]), views=module.views)
    batch = dm.collator()([dm.train_data[0], dm.train_data[1]])
    assert ("pair_views" in batch) == (alpha > 0)
    torch.manual_seed(0)
    group = module.group_logps(batch, True)
    views = module.pair_view_logps(batch, True) if alpha > 0 else None
    expected = torch.zeros(())
    if alpha < 1:
        expected = expected + (1 - alpha) * loss.preference(group).loss
    if alpha > 0:
        assert set(views.policy) == set(REFINE_VIEWS) and views.policy[REFINE_L_CHOSEN].shape == (2,)
        expected = expected + alpha * loss.refine(views).loss
    if alpha == 1:  # the group rows are not run at all

        def no_group(*args):
            raise AssertionError("alpha = 1 ran the group rows")

        monkeypatch.setattr(GroupPolicyModule, "group_logps", no_group)
    got = module._step(batch, "train")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
