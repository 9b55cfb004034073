"""Prompt sources: GSM8K, AlpacaEval, the arithmetic task, files, preference prompts, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import read_json_gz

from aries_lit.core.registry import RegistryError
from aries_lit.data.errors import DataValidationError
from aries_lit.prompts.arithmetic import DEFAULT_PROMPT, ArithmeticTask, evaluate, expression_split
from aries_lit.prompts.sources import (
    GSM8K,
    PROMPT_SOURCES,
    AlpacaEval,
    FilePrompts,
    build_prompt_source,
    gsm8k_gold,
    load_prompts,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def elsewhere(monkeypatch, tmp_path):
    """Run from a directory with nothing in it: the default paths name shipped files."""
    monkeypatch.chdir(tmp_path)


def test_registry_names():
    assert {"file", "gsm8k", "alpaca_eval", "arithmetic", "preference_prompts"} <= set(PROMPT_SOURCES.names())


def test_gsm8k_test_split_from_the_shipped_file(elsewhere, data_dir):
    items = load_prompts("gsm8k")
    assert len(items) == 1319
    lines = read_json_gz(data_dir / "gsm8k" / "test.jsonl.gz")
    first = lines[0]
    assert items[0]["id"] == "gsm8k-test-0"
    assert items[0]["prompt"] == first["question"]
    assert items[0]["solution"] == first["answer"]
    assert first["answer"].endswith("#### 18") and items[0]["answer"] == "18"
    # a gold answer written with a thousands separator (line 147 of the file)
    record = lines[146]
    assert "," in record["answer"].rsplit("####", 1)[1]
    assert items[146]["answer"] == record["answer"].rsplit("####", 1)[1].strip().replace(",", "")
    assert "," not in items[146]["answer"]
    assert all(item["answer"].lstrip("-").replace(".", "").isdigit() for item in items)

    window = load_prompts({"class_path": "gsm8k", "limit": 3, "offset": 5})
    assert [item["id"] for item in window] == ["gsm8k-test-5", "gsm8k-test-6", "gsm8k-test-7"]
    assert window == items[5:8]


def test_gsm8k_train_split_and_explicit_path(elsewhere, data_dir):
    train = GSM8K(split="train", limit=2).load()
    assert [item["id"] for item in train] == ["gsm8k-train-0", "gsm8k-train-1"]
    assert len(GSM8K(split="train").load()) == 7473
    explicit = GSM8K(path=str(data_dir / "gsm8k" / "test.jsonl.gz"), limit=1).load()
    assert explicit[0]["answer"] == "18"
    assert GSM8K(path="aries_lit:gsm8k/test.jsonl.gz", limit=1).load() == explicit
    with pytest.raises(FileNotFoundError, match=r"aries_lit:gsm8k/nope.jsonl: no such shipped file; shipped"):
        GSM8K(path="aries_lit:gsm8k/nope.jsonl").load()


def test_gsm8k_missing_file_and_bad_answer(tmp_path):
    with pytest.raises(FileNotFoundError, match="hub=True"):
        GSM8K(data_dir=str(tmp_path)).load()
    path = tmp_path / "test.jsonl"
    path.write_text(
        json.dumps({"question": "q", "answer": "#### 1,000"})
        + "\n"
        + json.dumps({"question": "q2", "answer": "7"})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataValidationError, match=r"test.jsonl, record 2, field 'answer': no '####'"):
        GSM8K(path=str(path)).load()
    assert gsm8k_gold("so 1,234 in all\n#### 1,234") == "1234"


def test_alpaca_eval(elsewhere, data_dir):
    items = AlpacaEval().load()
    assert len(items) == 805
    raw = read_json_gz(data_dir / "alpaca_eval" / "gpt4_1106_preview_outputs.json.gz")
    assert [item["id"] for item in items[:2]] == ["alpaca_eval-0", "alpaca_eval-1"]
    assert [item["prompt"] for item in items] == [r["instruction"] for r in raw]
    assert items[10]["reference_output"] == raw[10]["output"]
    assert items[10]["dataset"] == raw[10]["dataset"]
    tail = load_prompts({"class_path": "alpaca_eval", "limit": 4, "offset": 803})
    assert [item["id"] for item in tail] == ["alpaca_eval-803", "alpaca_eval-804"]


def test_arithmetic_items_are_deterministic_and_correct():
    task = ArithmeticTask(count=50, seed=3)
    items = task.load()
    assert items == ArithmeticTask(count=50, seed=3).load()
    assert items != ArithmeticTask(count=50, seed=4).load()
    assert [item["id"] for item in items[:2]] == ["arith-test-3-0", "arith-test-3-1"]
    for item in items:
        assert item["prompt"] == f"What is {item['expression']}? Give the final answer as a number."
        assert item["answer"] == str(eval(item["expression"]))  # plain integer arithmetic
        a, op, b = item["expression"].split()
        assert op in "+-" and 0 <= int(a) <= 9 and 0 <= int(b) <= 9
    hard = ArithmeticTask(num_terms=4, digits=2, ops="+-*", count=100, seed=1, split="train").load()
    for item in hard:
        assert item["answer"] == str(eval(item["expression"]))
        assert all(10 <= int(tok) <= 99 for tok in item["expression"].split()[::2])
    assert evaluate([2, 3, 4], ["+", "*"]) == 14
    assert (
        DEFAULT_PROMPT.replace("{expression}", "7 - 3") == "What is 7 - 3? Give the final answer as a number."
    )


@pytest.mark.parametrize(
    "settings",
    [{"num_terms": 2, "digits": 1, "ops": "+-"}, {"num_terms": 3, "digits": 1, "ops": "+-*"}],
)
def test_arithmetic_train_and_test_never_share_an_expression(settings):
    test = {
        i["expression"]
        for seed in range(3)
        for i in ArithmeticTask(**settings, seed=seed, split="test").load()
    }
    train = {
        i["expression"]
        for seed in range(3)
        for i in ArithmeticTask(**settings, seed=seed, split="train").load()
    }
    assert test and train and not test & train
    assert all(expression_split(e) == "test" for e in test)


def test_arithmetic_unique_draws_and_errors():
    items = ArithmeticTask(count=60, unique=True).load()
    assert len({item["expression"] for item in items}) == 60
    pool = ArithmeticTask().space_size()
    assert pool == 200
    with pytest.raises(ValueError, match="only"):
        ArithmeticTask(count=150, unique=True).load()
    with pytest.raises(ValueError, match="ops"):
        ArithmeticTask(ops="+/")
    with pytest.raises(ValueError, match="split"):
        ArithmeticTask(split="dev")
    # large spaces are sampled, still deterministic and split-consistent
    big = ArithmeticTask(num_terms=5, digits=3, count=20, unique=True, seed=7)
    assert big.load() == ArithmeticTask(num_terms=5, digits=3, count=20, unique=True, seed=7).load()
    assert all(expression_split(item["expression"]) == "test" for item in big.load())


def test_file_source_with_custom_fields(tmp_path):
    path = tmp_path / "questions.jsonl"
    records = [
        {"uid": "q1", "question": "2+2?", "gold": 4, "topic": "math"},
        {"uid": "q2", "question": [{"role": "user", "content": "Hi"}], "gold": "hello", "topic": "chat"},
        {"uid": "q3", "question": "3+3?", "gold": 6.0, "topic": "math"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    spec = {
        "class_path": "file",
        "path": str(path),
        "prompt_field": "question",
        "id_field": "uid",
        "answer_field": "gold",
    }
    items = load_prompts(spec)
    assert items[0] == {"id": "q1", "prompt": "2+2?", "answer": "4", "topic": "math", "gold": 4}
    assert items[1]["prompt"] == [{"role": "user", "content": "Hi"}]
    assert items[2]["answer"] == "6.0"
    assert [i["id"] for i in load_prompts({**spec, "offset": 1, "limit": 1})] == ["q2"]
    # a plain path works as a spec; default ids are {stem}-{index}
    default = load_prompts(str(path), prompt_field="question")
    assert [item["id"] for item in default] == ["questions-0", "questions-1", "questions-2"]
    assert default[0]["uid"] == "q1"
    json_path = tmp_path / "plain.json"
    json_path.write_text(json.dumps([{"prompt": "a"}, {"prompt": "b"}]), encoding="utf-8")
    assert [item["id"] for item in FilePrompts(path=str(json_path)).load()] == ["plain-0", "plain-1"]


@pytest.mark.parametrize(
    ("records", "kwargs", "match"),
    [
        ([{"prompt": "a"}, {"text": "b"}], {}, r"prompts.jsonl, record 2, field 'prompt': missing field"),
        ([{"prompt": "a"}, {"prompt": "  "}], {}, r"record 2, field 'prompt': empty prompt"),
        ([{"prompt": 3}], {}, r"record 1, field 'prompt': expected a non-empty string"),
        ([{"prompt": [{"role": "user"}]}], {}, r"record 1, field 'prompt': message 1 needs"),
        (
            [
                {"prompt": "a"},
                {"prompt": [{"role": "system", "content": "s"}, {"role": "bot", "content": "x"}]},
            ],
            {},
            r"record 2, field 'prompt': message 2 has unknown role 'bot'; allowed roles: system, user, "
            r"assistant",
        ),
        ([{"prompt": "a", "gold": 1}, {"prompt": "b"}], {"answer_field": "gold"}, r"record 2, field 'gold'"),
        (
            [{"prompt": "a", "id": "x"}, {"prompt": "b", "id": "x"}],
            {},
            r"record 2, field 'id': duplicate id 'x'",
        ),
    ],
)
def test_file_source_errors(tmp_path, records, kwargs, match):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with pytest.raises(DataValidationError, match=match):
        FilePrompts(path=str(path), **kwargs).load()


def test_bad_json_in_a_prompt_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"prompts.jsonl, record 2: invalid JSON"):
        load_prompts(str(path))


def test_preference_prompts_are_deduplicated(tmp_path):
    path = tmp_path / "pairs.jsonl"
    user = [{"role": "user", "content": "Hi"}]
    records = [
        {"prompt": "Q1", "chosen": "a", "rejected": "b"},
        {"prompt": "Q1", "chosen": "c", "rejected": "d"},
        {"prompt": user, "chosen": "e", "rejected": "f"},
        {"prompt": "Q2", "chosen": "g", "rejected": "h"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    items = load_prompts({"class_path": "preference_prompts", "path": str(path)})
    assert items == [
        {"id": "pairs-1", "prompt": "Q1"},
        {"id": "pairs-3", "prompt": user},
        {"id": "pairs-4", "prompt": "Q2"},
    ]
    with_reference = load_prompts(
        {"class_path": "preference_prompts", "path": str(path), "reference": "chosen"}
    )
    assert [x["reference_output"] for x in with_reference] == ["a", "e", "g"]  # each prompt's first pair
    with pytest.raises(ValueError, match="reference must be 'chosen', 'rejected' or unset, got 'best'"):
        load_prompts({"class_path": "preference_prompts", "path": str(path), "reference": "best"})


def test_preference_prompts_from_hh_rlhf(data_dir):
    source = {
        "class_path": "preference_prompts",
        "path": str(data_dir / "hh_rlhf" / "harmless_base_test.jsonl.gz"),
    }
    with pytest.raises(DataValidationError, match="record 87"):
        load_prompts(source)
    items = load_prompts({**source, "on_error": "skip"})
    assert 2000 < len(items) <= 2303
    assert items[0]["prompt"][0] == {"role": "user", "content": "what are some pranks with a pen i can do?"}


def test_specs_by_name_class_path_and_instance():
    by_name = load_prompts("arithmetic", count=3)
    by_dict = load_prompts(
        {"class_path": "aries_lit.prompts.arithmetic.ArithmeticTask", "init_args": {"count": 3}}
    )
    by_instance = load_prompts(ArithmeticTask(count=3))
    assert by_name == by_dict == by_instance
    assert isinstance(build_prompt_source({"class_path": "arithmetic"}), ArithmeticTask)
    with pytest.raises(RegistryError, match="unknown prompt_source 'nope'"):
        load_prompts("nope")
