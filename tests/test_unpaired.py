"""KTO on unpaired data: the ``unpaired`` selector's records, the record checker, the unpaired data
module and collator, the selector -> data module round trip, the module's refusals and the weight
advice. (TRL agreement: tests/test_losses_trl.py; a fit from config: tests/test_fit_cli.py.)"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from aries_lit.core.errors import DataValidationError, FileContentError
from aries_lit.data import UnpairedCollator, UnpairedDataModule
from aries_lit.losses import LossOutput, UnpairedLogProbs, UnpairedLoss
from aries_lit.losses.kto import kto_weight_advice
from aries_lit.models import load_tokenizer
from aries_lit.selectors import SELECTORS, UnpairedSelector


def _groups():
    return [
        {  # 2 right, 1 wrong, 1 truncated (left out: the verifier's skip_truncated)
            "id": "a",
            "prompt": "What is 2 + 2?",
            "answer": "4",
            "candidates": [
                {"text": "The answer is 5."},
                {"text": "The answer is 4."},
                {"text": "The answer is 4", "finish_reason": "length"},
                {"text": "2 + 2 = 4. The answer is 4."},
            ],
        },
        {  # chat prompt: completions as one assistant message
            "id": "b",
            "prompt": [{"role": "user", "content": "1 + 1?"}],
            "answer": "2",
            "candidates": [{"text": "The answer is 3."}, {"text": "The answer is 2."}],
        },
        {"id": "c", "prompt": "1 + 1?", "candidates": [{"text": "2"}, {"text": "3"}]},  # no gold
        {
            "id": "d",
            "prompt": "3 + 3?",
            "answer": "6",
            "candidates": [{"text": "6", "finish_reason": "length"}],
        },
        {"id": "e", "prompt": "3 + 3?", "answer": "6", "candidates": []},
    ]


def test_unpaired_selector_labels_every_scored_candidate_and_counts_skips():
    sel = SELECTORS.build({"class_path": "unpaired", "init_args": {"scorer": "verifier"}})
    assert isinstance(sel, UnpairedSelector) and sel.name == "unpaired" and sel.threshold == 1.0
    result = sel.select(_groups())
    assert [r["id"] for r in result.pairs] == ["a#0", "a#1", "a#3", "b#0", "b#1"]
    assert [r["label"] for r in result.pairs] == [False, True, True, False, True]
    assert [r["score"] for r in result.pairs] == [0.0, 1.0, 1.0, 0.0, 1.0]
    first, chat = result.pairs[0], result.pairs[4]
    assert first["prompt"] == "What is 2 + 2?" and first["completion"] == "The answer is 5."
    assert first["prompt_id"] == "a" and first["index"] == 0 and first["answer"] == "4"
    assert chat["completion"] == [{"role": "assistant", "content": "The answer is 2."}]
    stats = result.stats
    assert stats["groups"] == 5 and stats["pairs"] == 5
    assert stats["unpaired/desirable"] == 3 and stats["unpaired/undesirable"] == 2
    assert stats["unpaired/prompts"] == 2
    assert (
        stats["skipped/no_answer"] == 1 and stats["skipped/truncated"] == 1 and stats["skipped/too_few"] == 1
    )
    assert stats["candidates/truncated"] == 2
    assert result.summary().startswith("unpaired: 5 groups -> 5 records; skipped 3")
    audit = result.audit
    assert audit["records"] == 5 and audit["desirable"]["examples"] == 3
    assert audit["desirable"]["states_gold"] == 3 and audit["undesirable"]["states_gold"] == 0
    assert "desirable: finished 3/3" in result.audit_summary()
    assert result.scoring["candidates"] == 5


def test_unpaired_selector_threshold_scorers_and_bad_settings():
    group = {
        "id": "g",
        "prompt": "Answer in lowercase, without commas.",
        "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"],
        "kwargs": [{}, {}],
        "candidates": [{"text": "hello there"}, {"text": "hello, there"}, {"text": "Hello, There"}],
    }
    strict = UnpairedSelector(scorer="graded").select([group])
    assert [r["score"] for r in strict.pairs] == [1.0, 0.5, 0.0]
    assert [r["label"] for r in strict.pairs] == [True, False, False]
    half = UnpairedSelector(scorer="graded", threshold=0.5).select([group])
    assert [r["label"] for r in half.pairs] == [True, True, False]
    no_constraints = UnpairedSelector(scorer="graded").select([{**group, "instruction_id_list": []}])
    assert no_constraints.pairs == [] and no_constraints.stats["skipped/no_instructions"] == 1
    with pytest.raises(ValueError, match="scoring selector"):
        UnpairedSelector(scorer="group")
    with pytest.raises(ValueError, match="scoring selector"):
        SELECTORS.build({"class_path": "group", "init_args": {"scorer": "unpaired"}})
    with pytest.raises(ValueError, match="threshold"):
        UnpairedSelector(threshold=float("nan"))


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


GOOD = {"id": "q1", "prompt": "What is 2 + 2?", "completion": "4", "label": True}
BAD = {"prompt": [{"role": "user", "content": "2 + 3?"}], "completion": "6", "label": False}  # no id


@pytest.mark.parametrize(
    "bad,field,reason",
    [
        ({"prompt": None}, "prompt", "missing_field"),
        ({"prompt": 3}, "prompt", "wrong_type"),
        ({"prompt": [{"role": "robot", "content": "hi"}]}, "prompt", "unknown_role"),
        ({"completion": "  "}, "completion", "empty_response"),
        ({"completion": 7}, "completion", "wrong_type"),
        ({"completion": [{"role": "user", "content": "4"}]}, "completion", "wrong_type"),
        (
            {"completion": [{"role": "assistant", "content": "4"}, {"role": "assistant", "content": "5"}]},
            "completion",
            "wrong_type",
        ),
        ({"label": 1}, "label", "wrong_type"),
        ({"label": "true"}, "label", "wrong_type"),
        ({"id": ["x"]}, "id", "wrong_type"),
    ],
)
def test_bad_unpaired_records_name_the_file_record_and_field(tiny_model_dir, tmp_path, bad, field, reason):
    path = _write(tmp_path / "u.jsonl", [GOOD, BAD, {**GOOD, "id": "q3", **bad}])
    tok = load_tokenizer(str(tiny_model_dir))
    dm = UnpairedDataModule(path)
    dm.configure(tok)
    with pytest.raises(DataValidationError) as err:
        dm.setup()
    assert err.value.field == field and err.value.record == 3 and err.value.reason == reason
    line = str(err.value)
    assert line.startswith(f"{path}, record 3, field '{field}': ") and "\n" not in line
    skipping = UnpairedDataModule(path, on_error="skip")
    skipping.configure(tok)
    skipping.setup()
    assert len(skipping.train_data) == 2 and skipping.stats[f"train/skipped_invalid/{reason}"] == 1


def test_a_missing_field_is_named(tmp_path):
    from aries_lit.data.unpaired import check_unpaired_record

    for key in ("prompt", "completion", "label"):
        record = {k: v for k, v in GOOD.items() if k != key}
        with pytest.raises(DataValidationError, match=f"record 5, field '{key}': missing field"):
            check_unpaired_record("u.jsonl", 5, record)


def test_unpaired_datamodule_tokenizes_and_collates_one_row_per_example(tiny_model_dir, tmp_path):
    tok = load_tokenizer(str(tiny_model_dir))
    chat = {**BAD, "completion": [{"role": "assistant", "content": "five"}], "label": True}
    path = _write(tmp_path / "u.jsonl", [GOOD, BAD, chat])
    dm = UnpairedDataModule(path, max_length=64, max_context_length=48, batch_size=3)
    dm.configure(tok)
    dm.setup()
    assert dm.stats["train/examples"] == 3
    assert dm.stats["train/desirable"] == 2 and dm.stats["train/undesirable"] == 1
    rows = [dm.train_data[i] for i in range(3)]
    assert [r["id"] for r in rows] == ["q1", "u-2", "u-3"]  # a record without id: <file stem>-<number>
    batch = UnpairedCollator(tok.pad_token_id)(rows)
    n, t = batch["input_ids"].shape
    assert n == 3 and t % 8 == 0 and batch["batch_size"] == 3 and batch["views"] == ["completion"]
    assert batch["attention_mask"].shape == batch["loss_mask"].shape == (3, t)
    assert batch["labels"].dtype == torch.bool and batch["labels"].tolist() == [True, False, True]
    assert batch["ids"] == ["q1", "u-2", "u-3"]
    for i, row in enumerate(rows):
        ctx, completion = row["ctx"], row["completion"]
        assert batch["loss_mask"][i].sum() == len(completion)
        assert batch["input_ids"][i, : len(ctx) + len(completion)].tolist() == ctx + completion
    assert tok.decode(rows[2]["completion"]).startswith("five")
    assert tok.decode(rows[0]["completion"]).endswith(("<|im_end|>", "<|eot_id|>", tok.eos_token or ""))
    # the same rendering and truncation as a group's completion (one direct view)
    from aries_lit.data.groups import tokenize_completions

    ctx, (ids,) = tokenize_completions(tok, GOOD["prompt"], ["4"], 64, 48, dm.stats, "x")
    assert (ctx, ids) == (rows[0]["ctx"], rows[0]["completion"])


def test_truncation_is_counted(tiny_model_dir, tmp_path):
    long = {**GOOD, "prompt": "word " * 200, "completion": "answer " * 200}
    dm = UnpairedDataModule(_write(tmp_path / "u.jsonl", [long, BAD]), max_length=64, max_context_length=32)
    dm.configure(load_tokenizer(str(tiny_model_dir)))
    dm.setup()
    row = dm.train_data[0]
    assert len(row["ctx"]) == 32 and len(row["ctx"]) + len(row["completion"]) == 64
    assert dm.stats["train/truncated/context"] == 1 and dm.stats["train/truncated/completion"] == 1


def test_a_one_label_train_set_is_refused_unless_allowed(tiny_model_dir, tmp_path):
    tok = load_tokenizer(str(tiny_model_dir))
    path = _write(tmp_path / "u.jsonl", [GOOD, {**GOOD, "id": "q2"}])
    dm = UnpairedDataModule(path)
    dm.configure(tok)
    with pytest.raises(FileContentError) as err:
        dm.setup()
    line = str(err.value)
    assert line.startswith(f"{path}: all 2 training examples are labelled desirable, none undesirable")
    assert "allow_one_label" in line and "\n" not in line
    allowed = UnpairedDataModule(path, allow_one_label=True, val=path)
    allowed.configure(tok)
    allowed.setup()
    assert allowed.stats["train/desirable"] == 2 and allowed.stats["train/undesirable"] == 0
    assert allowed.stats["val/examples"] == 2
    nothing = UnpairedDataModule(path, limit=0)
    nothing.configure(tok)
    with pytest.raises(FileContentError, match="no usable unpaired record"):
        nothing.setup()


def test_selector_records_are_what_the_data_module_reads(tiny_model_dir, tmp_path):
    """``unpaired`` selector -> JSONL -> UnpairedDataModule: every record, its id, label and text."""
    result = UnpairedSelector(scorer="verifier").select(_groups())
    path = _write(tmp_path / "unpaired.jsonl", result.pairs)
    tok = load_tokenizer(str(tiny_model_dir))
    dm = UnpairedDataModule(path, shuffle=False)
    dm.configure(tok)
    dm.setup()
    assert [dm.train_data[i]["id"] for i in range(len(dm.train_data))] == [r["id"] for r in result.pairs]
    assert [dm.train_data[i]["label"] for i in range(len(dm.train_data))] == [
        r["label"] for r in result.pairs
    ]
    assert dm.stats["train/desirable"] == result.stats["unpaired/desirable"]
    assert dm.stats["train/undesirable"] == result.stats["unpaired/undesirable"]
    for i, record in enumerate(result.pairs):
        text = (
            record["completion"]
            if isinstance(record["completion"], str)
            else record["completion"][0]["content"]
        )
        assert tok.decode(dm.train_data[i]["completion"]).startswith(text)


class _UnpairedOnly(UnpairedLoss):
    """An unpaired-only loss (no views): the mean negative log-prob of desirable completions."""

    needs_reference = False

    def unpaired(self, logps: UnpairedLogProbs) -> LossOutput:
        return LossOutput(-logps.policy[logps.labels].mean())


def test_modules_refuse_the_wrong_kind_of_loss_or_data(tiny_model_dir, tmp_path):
    from aries_lit.modules import PreferenceModule, UnpairedPolicyModule

    with pytest.raises(ValueError, match="PreferenceModule") as err:
        UnpairedPolicyModule(str(tiny_model_dir), loss="dpo")
    assert "DPOLoss is not one" in str(err.value)
    with pytest.raises(ValueError, match="GroupPolicyModule"):
        UnpairedPolicyModule(str(tiny_model_dir), loss="grpo")
    with pytest.raises(ValueError, match="UnpairedPolicyModule"):
        PreferenceModule(str(tiny_model_dir), loss=_UnpairedOnly())
    assert isinstance(UnpairedPolicyModule(str(tiny_model_dir), loss=_UnpairedOnly()).loss, _UnpairedOnly)
    paired = PreferenceModule(str(tiny_model_dir), loss="kto")  # KTO on pairs refuses nothing new
    assert UnpairedPolicyModule(str(tiny_model_dir)).hparams["loss"].startswith("KTOLoss(")
    dm = UnpairedDataModule(_write(tmp_path / "u.jsonl", [GOOD, BAD]))
    dm.trainer = SimpleNamespace(lightning_module=paired)
    with pytest.raises(ValueError, match="use model.class_path aries_lit.modules.UnpairedPolicyModule"):
        dm.setup()


def test_unpaired_module_step_feeds_the_loss_labels_and_reference(tiny_model_dir, tmp_path):
    """One step of the module by hand: the loss sees the rows' summed log-probs under policy and
    reference (policy = reference at the start, so every log-ratio and z0 is 0) and the labels."""
    from aries_lit.modules import UnpairedPolicyModule

    module = UnpairedPolicyModule(str(tiny_model_dir), loss={"class_path": "kto", "init_args": {"beta": 0.5}})
    module.configure_model()
    dm = UnpairedDataModule(_write(tmp_path / "u.jsonl", [GOOD, BAD, {**GOOD, "id": "q3"}]), shuffle=False)
    dm.configure(module.tokenizer)
    dm.setup()
    batch = dm.collator()([dm.train_data[i] for i in range(3)])
    seen = {}
    kto_unpaired = module.loss.unpaired

    def spy(logps):
        seen["logps"] = logps
        return kto_unpaired(logps)

    module.loss.unpaired = spy
    module.log = lambda *a, **k: None
    loss = module._step(batch, "train")
    logps = seen["logps"]
    assert logps.labels.tolist() == [True, False, True] and logps.policy.shape == (3,)
    torch.testing.assert_close(logps.policy, logps.reference)
    assert float(loss.detach()) == pytest.approx(0.5)  # 1 - sigma(0) for every example
    assert loss.requires_grad


def test_kto_weight_advice_follows_eq_8():
    assert kto_weight_advice(31, 33, 1.1, 1.0) is None  # 1.1 * 31 / 33 = 1.03
    assert kto_weight_advice(40, 30, 1.0, 1.0) is None  # 4/3
    low = kto_weight_advice(31, 33, 1.0, 1.0)
    assert "= 0.939" in low and "desirable_weight in [1.06, 1.42]" in low
    assert "= 2" in kto_weight_advice(20, 10, 1.0, 1.0)
    assert "no undesirable example" in kto_weight_advice(5, 0, 1.0, 1.0)


def test_aries_lit_select_writes_unpaired_records(tmp_path, capsys):
    """``aries-lit select --selector '{class_path: unpaired, init_args: {scorer: verifier}}'``: the
    records file and ``selection_stats.json`` (``pairs`` = records, the label counts, the audit)."""
    from aries_lit.cli import main
    from aries_lit.generators.store import write_manifest

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"id": "a", "prompt": "What is 2 + 2?", "answer": "4"},
                {"id": "b", "prompt": "3 + 4?", "answer": "7"},
            ]
        )
    )
    cands = tmp_path / "cands"
    cands.mkdir()
    texts = {"a": ["The answer is 5.", "The answer is 4.", "The answer is 4."], "b": ["7", "8", "7"]}
    rows = [{"id": pid, "index": i, "text": t} for pid, group in texts.items() for i, t in enumerate(group)]
    (cands / "candidates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_manifest(cands, {"num_candidates": 3, "num_prompts": 2, "status": "done"})
    out = tmp_path / "sel" / "unpaired.jsonl"
    spec = json.dumps({"class_path": "file", "init_args": {"path": str(prompts), "answer_field": "answer"}})
    selector = "{class_path: unpaired, init_args: {scorer: verifier}}"
    main(["select", "--candidates", str(cands), "--prompts", spec, "--selector", selector, "--out", str(out)])
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["id"], r["label"]) for r in records] == [
        ("a#0", False), ("a#1", True), ("a#2", True), ("b#0", True), ("b#1", False), ("b#2", True),
    ]  # fmt: skip
    stats = json.loads((out.parent / "selection_stats.json").read_text())
    assert stats["pairs"] == 6 and stats["unpaired/desirable"] == 4 and stats["unpaired/undesirable"] == 2
    assert stats["audit"]["records"] == 6 and stats["audit"]["undesirable"]["examples"] == 2
    assert stats["selector"].startswith("UnpairedSelector(scorer=VerifierSelector(")
    printed = capsys.readouterr().out
    assert "unpaired: 2 groups -> 6 records" in printed and "audit: desirable: finished 4/4" in printed
