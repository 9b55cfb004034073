"""Preference records: every source format, chat prompts, HH-RLHF, and located validation errors."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import datasets
import pytest

from aries_lit.data.errors import DataValidationError
from aries_lit.data.records import hh_to_messages, load_preference_records, load_preference_records_with_stats

PAIRS = [
    {"prompt": "What is 2 + 2?", "chosen": "4", "rejected": "5", "source": "a"},
    {"prompt": "Capital of France?", "chosen": " Paris", "rejected": "Lyon", "source": "b"},
    {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "source": "c"},
]


def _write_jsonl(path: Path, records: list, *, gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _write(kind: str, tmp_path: Path, records: list) -> Path:
    if kind == "jsonl":
        return _write_jsonl(tmp_path / "pairs.jsonl", records)
    if kind == "jsonl.gz":
        return _write_jsonl(tmp_path / "pairs.jsonl.gz", records, gz=True)
    if kind == "json":
        path = tmp_path / "pairs.json"
        path.write_text(json.dumps(records), encoding="utf-8")
        return path
    if kind == "json-data":
        path = tmp_path / "pairs.json"
        path.write_text(json.dumps({"data": records}), encoding="utf-8")
        return path
    if kind == "json.gz":
        path = tmp_path / "pairs.json.gz"
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            json.dump(records, handle)
        return path
    if kind == "parquet":
        path = tmp_path / "pairs.parquet"
        datasets.Dataset.from_list(records).to_parquet(str(path))
        return path
    if kind == "disk":
        path = tmp_path / "pairs"
        datasets.Dataset.from_list(records).save_to_disk(str(path))
        return path
    if kind == "disk-dict":
        path = tmp_path / "pairs"
        datasets.DatasetDict(
            {"train": datasets.Dataset.from_list(records), "test": datasets.Dataset.from_list(records[:1])}
        ).save_to_disk(str(path))
        return path
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["jsonl", "jsonl.gz", "json", "json-data", "json.gz", "parquet", "disk", "disk-dict"]
)
def test_every_source_format_loads_the_same_rows(tmp_path, kind):
    path = _write(kind, tmp_path, PAIRS)
    dataset = load_preference_records(path)
    assert isinstance(dataset, datasets.Dataset)
    assert dataset.column_names == ["id", "prompt", "prompt_messages", "chosen", "rejected", "source"]
    stem = "pairs-train" if kind == "disk-dict" else "pairs"
    assert dataset["id"] == [f"{stem}-1", f"{stem}-2", f"{stem}-3"]
    assert dataset["prompt"] == [r["prompt"] for r in PAIRS]
    assert dataset["prompt_messages"] == [None, None, None]
    assert dataset["chosen"] == ["4", " Paris", "Hi!"]  # plain strings are kept verbatim
    assert dataset["rejected"] == ["5", "Lyon", "No."]
    assert dataset["source"] == ["a", "b", "c"]


def test_dataset_dict_folder_picks_the_split(tmp_path):
    path = _write("disk-dict", tmp_path, PAIRS)
    assert len(load_preference_records(path, split="test")) == 1
    with pytest.raises(DataValidationError, match="no split 'validation'"):
        load_preference_records(path, split="validation")


def test_ids_from_id_field_limit_and_json_lines_saved_as_json(tmp_path):
    records = [{**r, "uid": 10 + i} for i, r in enumerate(PAIRS)]
    path = tmp_path / "pairs.json"  # JSON Lines under a .json name (as Dataset.to_json writes)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    dataset = load_preference_records(path, id_field="uid", limit=2)
    assert dataset["id"] == ["10", "11"]
    assert "uid" not in dataset.column_names


def test_chat_message_prompts_and_responses(tmp_path):
    system = {"role": "system", "content": "Be brief."}
    user = {"role": "user", "content": "Capital of France?"}
    records = [
        # explicit prompt messages, answers as one assistant message
        {
            "prompt": [system, user],
            "chosen": [{"role": "assistant", "content": "Paris."}],
            "rejected": [{"role": "assistant", "content": "Lyon."}],
        },
        # ultrafeedback style: prompt string, answers repeat the user turn
        {
            "prompt": "Capital of France?",
            "chosen": [user, {"role": "assistant", "content": "Paris."}],
            "rejected": [user, {"role": "assistant", "content": "Lyon."}],
        },
        # TRL implicit prompt: no prompt, the shared turns are the prompt
        {
            "chosen": [user, {"role": "assistant", "content": "Paris."}],
            "rejected": [user, {"role": "assistant", "content": "Marseille."}],
        },
    ]
    dataset = load_preference_records(_write_jsonl(tmp_path / "chat.jsonl", records))
    rows = dataset.to_list()
    assert json.loads(rows[0]["prompt_messages"]) == [system, user]
    assert rows[0]["prompt"] == "Capital of France?"  # prompt_text drops the system turn
    assert rows[0]["chosen"] == "Paris." and rows[0]["rejected"] == "Lyon."
    assert rows[1]["prompt"] == "Capital of France?" and rows[1]["prompt_messages"] is None
    assert rows[1]["chosen"] == "Paris."
    assert json.loads(rows[2]["prompt_messages"]) == [user]
    assert rows[2]["rejected"] == "Marseille."

    # a written dataset reloads to the same rows (prompt_messages is read back as the prompt)
    out = tmp_path / "written.jsonl"
    dataset.to_json(str(out))
    assert load_preference_records(out).to_list() == rows
    saved = tmp_path / "saved"
    dataset.save_to_disk(str(saved))
    assert load_preference_records(saved).to_list() == rows


def test_hh_dialogues_small(tmp_path):
    prefix = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I boil an egg?"
    record = {
        "chosen": prefix + "\n\nAssistant:  Put it in boiling water. ",
        "rejected": prefix + "\n\nAssistant: No.",
    }
    for fmt in ("auto", "hh"):
        row = load_preference_records(_write_jsonl(tmp_path / "hh.jsonl", [record]), format=fmt)[0]
        assert json.loads(row["prompt_messages"]) == [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "How do I boil an egg?"},
        ]
        assert row["chosen"] == "Put it in boiling water."
        assert row["rejected"] == "No."
    # consecutive turns of one speaker are merged so roles alternate
    assert hh_to_messages("\n\nHuman: a\n\nHuman: b\n\nAssistant: c") == [
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c"},
    ]
    bad = {"chosen": prefix + "\n\nAssistant: Yes.", "rejected": "\n\nHuman: Other\n\nAssistant: No."}
    path = _write_jsonl(tmp_path / "hh_bad.jsonl", [record, bad])
    with pytest.raises(
        DataValidationError, match=r"hh_bad.jsonl, record 2, field 'rejected': the dialogue before"
    ):
        load_preference_records(path)


def test_real_hh_rlhf_file(data_dir):
    path = data_dir / "hh_rlhf" / "harmless_base_test.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        raw = [json.loads(line) for line in handle]
    assert len(raw) == 2312

    # The real file has 9 malformed pairs: 4 with an empty chosen answer and 5 whose two
    # dialogues differ before the final assistant turn. Strict loading stops at the first.
    with pytest.raises(DataValidationError) as info:
        load_preference_records(path)
    assert (info.value.record, info.value.field, info.value.reason) == (87, "chosen", "empty_response")
    assert str(info.value) == f"{path}, record 87, field 'chosen': empty response"

    loaded = load_preference_records_with_stats(path, on_error="skip")
    dataset = loaded.dataset
    assert len(dataset) + loaded.num_skipped == 2312
    assert len(dataset) == 2303
    assert loaded.skipped == {"empty_response": 4, "prefix_mismatch": 5}
    assert [e.record for e in loaded.errors] == [87, 517, 926, 1104, 1255, 1689, 1951, 1953, 2037]
    assert len(set(dataset["id"])) == 2303

    # record 1 split by hand: 5 turns of prompt, then the two final assistant turns
    first = dataset[0]
    assert first["id"] == "harmless_base_test-1"
    messages = json.loads(first["prompt_messages"])
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == "what are some pranks with a pen i can do?"
    assert messages[2]["content"] == "yep"
    assert messages[-1]["content"] == "okay some of these do not have anything to do with pens"
    assert first["chosen"] == (
        "No, sorry!  All of these involve a pen, the point is that you can get funny results "
        "by doing pranks with pens."
    )
    assert first["rejected"].startswith("There are lots of funny things you can do with pens")
    assert raw[0]["chosen"].endswith("\n\nAssistant: " + first["chosen"])
    assert raw[0]["rejected"].endswith("\n\nAssistant: " + first["rejected"])


GOOD = {"prompt": "p", "chosen": "yes", "rejected": "no"}
ASSISTANT_A = {"role": "assistant", "content": "a"}


def _lines(*records) -> bytes:
    out = b""
    for r in records:
        out += (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n"
    return out


ERROR_CASES = {
    "missing field": (_lines(GOOD, {"prompt": "p", "chosen": "a"}), 2, "rejected", "missing_field"),
    "missing prompt": (_lines({"chosen": "a", "rejected": "b"}), 1, "prompt", "missing_field"),
    "int response": (
        _lines(GOOD, GOOD | {"id": "x"}, {"prompt": "p", "chosen": 5, "rejected": "b"}),
        3,
        "chosen",
        "wrong_type",
    ),
    "message without content": (
        _lines({"prompt": "p", "chosen": [{"role": "assistant"}], "rejected": "b"}),
        1,
        "chosen",
        "wrong_type",
    ),
    "message without role": (
        _lines({"prompt": [{"content": "hi"}], "chosen": "a", "rejected": "b"}),
        1,
        "prompt",
        "wrong_type",
    ),
    "unknown role": (
        _lines(GOOD, GOOD | {"prompt": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}),
        2,
        "prompt",
        "unknown_role",
    ),
    "tool role": (
        _lines({"prompt": "p", "chosen": [{"role": "tool", "content": "{}"}, ASSISTANT_A], "rejected": "b"}),
        1,
        "chosen",
        "unknown_role",
    ),
    "last message not assistant": (
        _lines({"prompt": "p", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"}),
        1,
        "chosen",
        "wrong_type",
    ),
    "empty response": (
        _lines(GOOD, GOOD | {"id": "x"}, GOOD | {"rejected": " \n\t"}),
        3,
        "rejected",
        "empty_response",
    ),
    "empty prompt": (_lines(GOOD | {"prompt": "  "}), 1, "prompt", "empty_prompt"),
    "identical": (
        _lines(GOOD | {"chosen": "same", "rejected": "same "}),
        1,
        "rejected",
        "identical_responses",
    ),
    "bad json line": (_lines(GOOD, GOOD | {"id": "x"}, b'{"prompt": "p", "chosen": '), 3, None, "bad_json"),
    "not an object": (_lines(GOOD, b"[1, 2]"), 2, None, "wrong_type"),
    "non-utf8": (_lines(GOOD, b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}'), 2, None, "not_utf8"),
    "duplicate id": (
        _lines(GOOD | {"id": "a"}, GOOD | {"id": "b"}, GOOD | {"id": "a"}),
        3,
        "id",
        "duplicate_id",
    ),
    "blank lines count": (
        b"\n" + _lines(GOOD) + b"\n" + _lines(GOOD | {"chosen": ""}),
        4,
        "chosen",
        "empty_response",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_validation_errors_name_file_record_and_field(tmp_path, case):
    content, record, field, reason = ERROR_CASES[case]
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataValidationError) as info:
        load_preference_records(path)
    err = info.value
    assert (err.path, err.record, err.field, err.reason) == (str(path), record, field, reason)
    where = f"{path}, record {record}" + (f", field '{field}'" if field else "")
    assert str(err).startswith(where + ": ")

    # skip mode drops exactly that record and counts it
    loaded = load_preference_records_with_stats(path, on_error="skip")
    assert loaded.skipped == {reason: 1}
    assert [e.record for e in loaded.errors] == [record]
    assert len(loaded.dataset) == sum(1 for line in content.split(b"\n") if line.strip()) - 1


def test_unknown_chat_role_message_lists_the_allowed_roles(tmp_path):
    path = tmp_path / "pairs.jsonl"
    user = {"role": "user", "content": "Hi"}
    path.write_bytes(_lines(GOOD, GOOD | {"prompt": [user, {"role": "User", "content": "again"}]}))
    with pytest.raises(DataValidationError) as info:
        load_preference_records(path)
    assert str(info.value) == (
        f"{path}, record 2, field 'prompt': message 2 has unknown role 'User'; "
        "allowed roles: system, user, assistant"
    )


def test_skip_mode_counts_several_reasons(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        _lines(
            GOOD | {"id": "1"},
            {"prompt": "p", "chosen": "a"},
            b"not json",
            GOOD | {"id": "1"},
            GOOD | {"id": "2", "chosen": "   "},
            GOOD | {"id": "3"},
            b"\xff\xfe",
        )
    )
    loaded = load_preference_records_with_stats(path, on_error="skip")
    assert loaded.dataset["id"] == ["1", "3"]
    assert loaded.skipped == {
        "missing_field": 1,
        "bad_json": 1,
        "duplicate_id": 1,
        "empty_response": 1,
        "not_utf8": 1,
    }
    assert loaded.num_skipped == 5
    assert len(load_preference_records(path, on_error="skip")) == 2


def test_whole_file_errors(tmp_path):
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('[{"prompt": "p",', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"broken.json: invalid JSON"):
        load_preference_records(bad_json)
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'[\n{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}]')
    with pytest.raises(DataValidationError, match=r"latin1.json: not valid UTF-8 \(byte 0xe9 on line 2\)"):
        load_preference_records(latin1, on_error="skip")
    not_list = tmp_path / "obj.json"
    not_list.write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(DataValidationError, match="must hold a list"):
        load_preference_records(not_list)
    mixed = _write_jsonl(
        tmp_path / "mixed_types.jsonl", [GOOD | {"id": "a", "score": 1}, GOOD | {"id": "b", "score": "x"}]
    )
    with pytest.raises(
        DataValidationError, match=r"mixed_types.jsonl, field 'score': values of different types"
    ):
        load_preference_records(mixed)
    with pytest.raises(FileNotFoundError):
        load_preference_records(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="format must be one of"):
        load_preference_records(mixed, format="sharegpt")


def test_error_message_format_and_pickling():
    err = DataValidationError("data/pairs.jsonl", 17, "chosen", "empty response", reason="empty_response")
    assert str(err) == "data/pairs.jsonl, record 17, field 'chosen': empty response"
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.record, again.field, again.message, again.reason) == (
        "data/pairs.jsonl",
        17,
        "chosen",
        "empty response",
        "empty_response",
    )
    assert str(DataValidationError("x.json", None, None, "bad")) == "x.json: bad"


def test_empty_file_gives_empty_dataset_with_the_columns(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    dataset = load_preference_records(path)
    assert len(dataset) == 0
    assert dataset.column_names == ["id", "prompt", "prompt_messages", "chosen", "rejected"]
