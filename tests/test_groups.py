"""Group data for GRPO / RLOO: the ``group`` selector's records, the group data module and collator,
per-token log-probs, and the module's refusal of mismatched losses."""

from __future__ import annotations

import json

import pytest
import torch

from aries_lit.core.errors import DataValidationError
from aries_lit.data import GroupCollator, GroupDataModule
from aries_lit.models import load_causal_lm, load_tokenizer
from aries_lit.modules.logprobs import sequence_logprobs, token_logprobs
from aries_lit.selectors import SELECTORS, GroupSelector


def _groups():
    return [
        {  # 2 right, 1 wrong, 1 truncated
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
        {
            "id": "b",
            "prompt": "1 + 1?",
            "answer": "2",
            "candidates": [{"text": "2"}, {"text": "The answer is 2."}],
        },
        {"id": "c", "prompt": "1 + 1?", "candidates": [{"text": "2"}, {"text": "3"}]},  # no gold
        {"id": "d", "prompt": "3 + 3?", "answer": "6", "candidates": [{"text": "6"}]},  # too few
    ]


def test_group_selector_keeps_every_scored_candidate_and_counts_skips():
    sel = SELECTORS.build({"class_path": "group", "init_args": {"scorer": "verifier"}})
    assert isinstance(sel, GroupSelector) and sel.name == "group"
    result = sel.select(_groups())
    (record,) = result.pairs
    assert record["completions"] == ["The answer is 5.", "The answer is 4.", "2 + 2 = 4. The answer is 4."]
    assert record["rewards"] == [0.0, 1.0, 1.0] and record["indices"] == [0, 1, 3]
    # also a TRL pair: the latest best and the earliest worst
    assert record["chosen"] == "2 + 2 = 4. The answer is 4." and record["rejected"] == "The answer is 5."
    stats = result.stats
    assert stats["groups"] == 4 and stats["pairs"] == 1 and stats["group/completions"] == 3
    assert stats["skipped/equal_rewards"] == 1  # "b": both right
    assert stats["skipped/no_answer"] == 1 and stats["skipped/too_few"] == 1
    assert stats["candidates/truncated"] == 1


def test_group_selector_with_a_graded_scorer_and_bad_settings():
    group = {
        "id": "g",
        "prompt": "Answer in lowercase.",
        "instruction_id_list": ["change_case:english_lowercase"],
        "kwargs": [{}],
        "candidates": [{"text": "hello there"}, {"text": "Hello There"}],
    }
    result = GroupSelector(scorer="graded").select([group])
    assert result.pairs[0]["rewards"] == [1.0, 0.0]  # the fraction of constraints met
    with pytest.raises(ValueError, match="min_size"):
        GroupSelector(min_size=1)
    with pytest.raises(ValueError, match="scoring selector"):
        GroupSelector(scorer="group")


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


GOOD = {"id": "q1", "prompt": "What is 2 + 2?", "completions": ["4", "5", "four"], "rewards": [1.0, 0.0, 1]}


def test_group_datamodule_tokenizes_and_collates_one_row_per_completion(tiny_model_dir, tmp_path):
    tok = load_tokenizer(str(tiny_model_dir))
    second = {
        "id": "q2",
        "prompt": [{"role": "user", "content": "Hi"}],
        "completions": ["a", "b"],
        "rewards": [0, 1],
    }
    dm = GroupDataModule(_write(tmp_path / "g.jsonl", [GOOD, second]), max_length=64, max_context_length=48)
    dm.configure(tok)
    dm.setup()
    assert dm.stats["train/groups"] == 2 and dm.stats["train/completions"] == 5
    batch = GroupCollator(tok.pad_token_id)([dm.train_data[0], dm.train_data[1]])
    assert batch["input_ids"].shape[0] == 5 and batch["batch_size"] == 2
    assert batch["group_index"].tolist() == [0, 0, 0, 1, 1]
    assert batch["rewards"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    row = dm.train_data[0]
    ctx, first = row["ctx"], row["completions"][0]
    assert batch["loss_mask"][0].sum() == len(first)
    assert batch["input_ids"][0, : len(ctx) + len(first)].tolist() == ctx + first
    assert tok.decode(first).endswith(("<|im_end|>", "<|eot_id|>", tok.eos_token or ""))


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"completions": []}, "completions"),
        ({"rewards": [1.0]}, "rewards"),
        ({"rewards": [1.0, float("nan"), 0.0]}, "rewards"),
        ({"prompt": 3}, "prompt"),
    ],
)
def test_bad_group_records_name_the_file_record_and_field(tiny_model_dir, tmp_path, bad, field):
    path = _write(tmp_path / "g.jsonl", [GOOD, {**GOOD, "id": "q2", **bad}])
    dm = GroupDataModule(path)
    dm.configure(load_tokenizer(str(tiny_model_dir)))
    with pytest.raises(DataValidationError) as err:
        dm.setup()
    assert err.value.field == field and str(path) in str(err.value)
    skipping = GroupDataModule(path, on_error="skip")
    skipping.configure(load_tokenizer(str(tiny_model_dir)))
    skipping.setup()
    assert len(skipping.train_data) == 1


def test_token_logprobs_sum_to_sequence_logprobs(tiny_model_dir, tmp_path):
    tok = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir))
    dm = GroupDataModule(_write(tmp_path / "g.jsonl", [GOOD]), max_length=64, max_context_length=48)
    dm.configure(tok)
    dm.setup()
    batch = dm.collator()([dm.train_data[0]])
    args = (batch["input_ids"], batch["attention_mask"], batch["loss_mask"])
    per_token, mask = token_logprobs(model, *args, chunk_size=3)  # chunked like the policy's pass
    sums, counts = sequence_logprobs(model, *args)
    torch.testing.assert_close(per_token.sum(-1), sums, rtol=1e-5, atol=1e-5)
    assert mask.sum(-1).tolist() == counts.tolist()
    assert (per_token[~mask] == 0).all()


def test_modules_refuse_the_wrong_kind_of_loss(tiny_model_dir):
    from aries_lit.modules import GroupPolicyModule, PreferenceModule

    with pytest.raises(ValueError, match="GroupPolicyModule"):
        PreferenceModule(str(tiny_model_dir), loss="grpo")
    with pytest.raises(ValueError, match="pair loss"):
        GroupPolicyModule(str(tiny_model_dir), loss="dpo")
