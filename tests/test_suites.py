"""Arena-Hard-Auto and MT-Bench: question files in both layouts, answer files in the suites' own
formats, the local judgement against a baseline, and one-line errors for bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aries_lit.data.errors import DataValidationError
from aries_lit.evaluation.evaluate import evaluate_checkpoints
from aries_lit.generators.backends.base import Backend, Completion
from aries_lit.prompts.sources import load_prompts

FIXTURES = Path(__file__).resolve().parent / "fixtures"
V2 = FIXTURES / "arena_hard_v2"
V01 = FIXTURES / "arena_hard_v01"


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _arena(folder: Path, **kwargs) -> dict:
    """An ``arena_hard`` task: the prompt source's options under ``init_args``, the task's beside."""
    from aries_lit.evaluation.tasks import TASK_KEYS

    own = {k: v for k, v in kwargs.items() if k in TASK_KEYS}
    options = {k: v for k, v in kwargs.items() if k not in TASK_KEYS}
    return {
        "class_path": "arena_hard",
        "init_args": {"questions": str(folder / "question.jsonl"), **options},
        **own,
    }


def _baseline(folder: Path) -> str:
    return str(folder / "model_answer" / "baseline-model.jsonl")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _part(name: str, **init_args) -> dict:
    """A prompt-source spec ``{class_path: name, init_args: {...}}``."""
    return {"class_path": name, "init_args": init_args}


def _one_line_error(spec: dict, match: str) -> str:
    with pytest.raises(DataValidationError, match=match) as err:
        load_prompts(spec)
    assert "\n" not in str(err.value)
    return str(err.value)


# --- answer-file formats ---------------------------------------------------------------------


def check_arena_answer_current(row: dict, model: str) -> None:
    """A line of Arena-Hard's current ``model_answer/<model>.jsonl``."""
    assert set(row) == {"uid", "ans_id", "model", "messages", "tstamp", "metadata"}
    assert isinstance(row["uid"], str) and isinstance(row["ans_id"], str) and row["model"] == model
    assert isinstance(row["tstamp"], float) and isinstance(row["metadata"]["token_len"], int)
    user, assistant = row["messages"]
    assert user["role"] == "user" and isinstance(user["content"], str) and user["content"]
    assert assistant["role"] == "assistant" and set(assistant["content"]) == {"answer"}
    assert isinstance(assistant["content"]["answer"], str)


def check_arena_answer_v01(row: dict, model: str) -> None:
    """A line of Arena-Hard v0.1's ``model_answer/<model>.jsonl``."""
    assert set(row) == {"question_id", "answer_id", "model_id", "choices", "tstamp"}
    assert isinstance(row["question_id"], str) and isinstance(row["answer_id"], str)
    assert row["model_id"] == model and isinstance(row["tstamp"], float)
    (choice,) = row["choices"]
    assert choice["index"] == 0 and len(choice["turns"]) == 1
    turn = choice["turns"][0]
    assert set(turn) == {"content", "token_len"}
    assert isinstance(turn["content"], str) and isinstance(turn["token_len"], int)


def check_mt_bench_answer(row: dict, model: str) -> None:
    """A line of FastChat's MT-Bench ``model_answer/<model>.jsonl``."""
    assert set(row) == {"question_id", "answer_id", "model_id", "choices", "tstamp"}
    assert isinstance(row["question_id"], int) and isinstance(row["answer_id"], str)
    assert row["model_id"] == model and isinstance(row["tstamp"], float)
    (choice,) = row["choices"]
    assert choice["index"] == 0 and len(choice["turns"]) == 2
    assert all(isinstance(t, str) for t in choice["turns"])


# --- question files --------------------------------------------------------------------------


def test_arena_hard_reads_both_layouts_and_joins_the_baseline():
    current = load_prompts(_arena(V2, baseline=_baseline(V2)))
    assert [p["id"] for p in current] == ["a1f0c3", "b27d91", "c9e4a8"]
    assert {p["layout"] for p in current} == {"current"}
    assert current[1]["prompt"].startswith("Explain why the sum") and current[1]["category"] == "hard_prompt"
    assert current[2]["reference_output"] == "A baseline answer to question 2."
    assert current[0]["reference_generator"] == "baseline-model"
    old = load_prompts(_arena(V01, baseline=_baseline(V01), limit=3))
    assert [p["question_id"] for p in old] == ["5e1b7c2a9d", "8f3a6d4e01", "c04b2f9e77"]
    assert {p["layout"] for p in old} == {"v0.1"} and old[0]["cluster"] == "Python string handling"
    assert old[1]["prompt"].startswith("What is the probability") and old[1]["reference_output"]
    assert all("reference_output" not in p for p in load_prompts(_arena(V01)))
    # a baseline in the other layout joins too (answers are keyed by question id)
    rows = _lines(Path(_baseline(V01)))
    assert {r["question_id"] for r in rows} == {p["id"] for p in load_prompts(_arena(V01))}


def test_arena_hard_bad_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "question.jsonl"
    good = json.dumps({"uid": "q1", "category": "x", "prompt": "Hi?"})
    bad.write_text(good + "\n" + json.dumps({"id": "q2", "text": "Hello?"}) + "\n")
    message = _one_line_error(_part("arena_hard", questions=str(bad)), "neither Arena-Hard question layout")
    assert message.startswith(f"{bad}, record 2, field 'uid':")
    bad.write_text(good + "\n" + json.dumps({"question_id": "q2", "turns": [{"content": "Hi"}]}) + "\n")
    _one_line_error(_part("arena_hard", questions=str(bad)), r"record 2, field 'question_id'.*one layout")
    bad.write_text(json.dumps({"question_id": "q1", "turns": "Hi"}) + "\n")
    _one_line_error(_part("arena_hard", questions=str(bad)), r"record 1, field 'turns'")
    bad.write_text(json.dumps({"uid": "q1", "prompt": " "}) + "\n")
    _one_line_error(_part("arena_hard", questions=str(bad)), r"record 1, field 'prompt': empty prompt")

    # a baseline answer file that misses a question: the question file, its record and field, the baseline
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(line + "\n" for line in Path(_baseline(V2)).read_text().splitlines()[:2]))
    message = _one_line_error(_arena(V2, baseline=str(partial)), "has no answer in the baseline file")
    assert message.startswith(f"{V2 / 'question.jsonl'}, record 3, field 'uid': question 'c9e4a8'")
    assert str(partial) in message
    assert len(load_prompts(_arena(V2, baseline=str(partial), limit=2))) == 2  # the window is joined
    # an answer file in neither layout, or without an answer
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"question_id": "5e1b7c2a9d", "output": "x"}) + "\n")
    _one_line_error(_arena(V01, baseline=str(answers)), rf"{answers}, record 1, field 'choices'")
    answers.write_text(json.dumps({"id": "a", "output": "x"}) + "\n")
    _one_line_error(
        _arena(V01, baseline=str(answers)), r"record 1, field 'uid': in neither Arena-Hard answer"
    )
    row = _lines(Path(_baseline(V2)))[0]
    row["messages"][-1]["content"] = {"answer": ""}
    answers.write_text(json.dumps(row) + "\n")
    _one_line_error(_arena(V2, baseline=str(answers)), r"record 1, field 'messages': empty answer")


def test_mt_bench_ships_80_two_turn_questions(data_dir):
    assert (data_dir / "mt_bench" / "LICENSE").read_text().lstrip().startswith("Apache License")
    items = load_prompts("mt_bench")
    assert len(items) == 80 and len({p["id"] for p in items}) == 80
    assert all(len(p["turns"]) == 2 and all(t.strip() for t in p["turns"]) for p in items)
    assert all(p["prompt"] == p["turns"][0] and isinstance(p["question_id"], int) for p in items)
    categories = {p["category"] for p in items}
    assert {
        "writing",
        "roleplay",
        "reasoning",
        "math",
        "coding",
        "extraction",
        "stem",
        "humanities",
    } == categories
    assert all(sum(p["category"] == c for p in items) == 10 for c in categories)
    assert (
        any("reference" in p for p in items)
        and load_prompts({"class_path": "mt_bench", "init_args": {"limit": 3}})[2]["id"] == "83"
    )


def test_mt_bench_bad_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "question.jsonl"
    good = json.dumps({"question_id": 1, "category": "writing", "turns": ["a?", "b?"]})
    bad.write_text(
        good + "\n" + json.dumps({"question_id": 2, "category": "math", "turns": ["only one"]}) + "\n"
    )
    message = _one_line_error(_part("mt_bench", path=str(bad)), "2 non-empty strings")
    assert message.startswith(f"{bad}, record 2, field 'turns':")
    bad.write_text(good + "\n" + json.dumps({"uid": "x", "prompt": "Hi"}) + "\n")
    _one_line_error(_part("mt_bench", path=str(bad)), r"record 2, field 'question_id': not an MT-Bench")
    bad.write_text(json.dumps({"question_id": 3, "turns": ["a?", "b?"]}) + "\n")
    _one_line_error(_part("mt_bench", path=str(bad)), r"record 1, field 'category': missing field")


def test_a_bad_baseline_stops_the_cli_in_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from aries_lit.cli import main

    partial = tmp_path / "partial.jsonl"
    partial.write_text(Path(_baseline(V2)).read_text().splitlines()[0] + "\n")
    monkeypatch.delenv("ARIES_LIT_DEBUG", raising=False)
    task = _arena(V2, baseline=str(partial))
    argv = ["evaluate", "--checkpoints", json.dumps([str(tiny_model_dir)]), "--tasks", json.dumps([task]),
            "--out_dir", str(tmp_path / "eval"), "--progress", "false"]  # fmt: skip
    with pytest.raises(SystemExit) as exit:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit.value.code != 0 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and "record 2, field 'uid'" in err and str(partial) in err
    assert not (tmp_path / "eval").exists()


# --- MT-Bench's second turn sees the conversation --------------------------------------------


class RecordingBackend(Backend):
    """Answers ``"answer <n>"`` (n counts calls) and records every context it is given."""

    contexts: list[str] = []

    def __init__(self, model: str) -> None:
        super().__init__(model)
        from aries_lit.models import load_tokenizer

        self._tok = load_tokenizer(model)

    @property
    def tokenizer(self):
        return self._tok

    def generate(self, contexts, settings):
        RecordingBackend.contexts.extend(contexts)
        return [
            Completion(text=f"answer {len(RecordingBackend.contexts) - len(contexts) + i}", prompt_tokens=1,
                       completion_tokens=2, finish_reason="stop")
            for i in range(len(contexts))
        ]  # fmt: skip


def test_mt_bench_second_turn_continues_the_conversation(tmp_path, tiny_model_dir):
    RecordingBackend.contexts = []
    result = evaluate_checkpoints(
        [str(tiny_model_dir)],
        tasks=[{"class_path": "mt_bench", "init_args": {"limit": 2}, "model_name": "tiny"}],
        out_dir=str(tmp_path / "eval"),
        generator={
            "class_path": "sequential_refinement",
            "init_args": {"backend": {"class_path": f"{__name__}.RecordingBackend"}},
        },
        names=["m"],
        progress=False,
        plots=False,
    )
    first, second = load_prompts({"class_path": "mt_bench", "init_args": {"limit": 2}})
    contexts = RecordingBackend.contexts
    assert len(contexts) == 4  # two passes of two questions: Direct only, no refinement
    assert first["turns"][0] in contexts[0] and first["turns"][1] not in contexts[0]
    for context, item, answer in ((contexts[2], first, "answer 0"), (contexts[3], second, "answer 1")):
        assert context.index(item["turns"][0]) < context.index(answer) < context.index(item["turns"][1])
    rows = _lines(tmp_path / "eval" / "m" / "mt_bench" / "model_answer" / "tiny.jsonl")
    assert [r["choices"][0]["turns"] for r in rows] == [["answer 0", "answer 2"], ["answer 1", "answer 3"]]
    assert [r["question_id"] for r in rows] == [81, 82]
    metrics = result["checkpoints"]["m"]["tasks"]["mt_bench"]
    assert metrics["kind"] == "mt_bench" and metrics["n"] == 2
    assert "mt_bench len turn 2" in result["markdown"] and "FastChat" in result["markdown"]


# --- end to end on the tiny model: both Arena-Hard layouts, a baseline, MT-Bench -------------


def test_evaluate_writes_suite_answer_files(tmp_path, tiny_model_dir, tiny_reward_model_dir):
    questions = tmp_path / "v2"
    shutil.copytree(V2, questions)
    out = tmp_path / "eval"
    result = evaluate_checkpoints(
        [str(tiny_model_dir)],
        tasks=[
            _arena(questions, baseline=_baseline(questions), model_name="tiny-aries"),
            _arena(V01, label="arena_hard_v01"),
            {"class_path": "mt_bench", "init_args": {"limit": 2}},
        ],
        out_dir=str(out),
        num_refinements=1,
        max_new_tokens=6,
        judge=str(tiny_reward_model_dir),
        names=["m"],
        progress=False,
        plots=False,
    )
    tasks = result["checkpoints"]["m"]["tasks"]
    assert tasks["arena_hard"]["kind"] == "pairwise" and tasks["arena_hard_v01"]["kind"] == "open"
    wr = tasks["arena_hard"]["win_rate"]
    assert wr["direct"]["n"] == 3 and 0.0 <= wr["sr"]["win_rate"] <= 1.0
    assert "NOT Arena-Hard-Auto's official GPT-4" in result["markdown"]
    assert "AlpacaEval" not in result["markdown"]

    folder = out / "m" / "arena_hard" / "model_answer"
    assert sorted(p.name for p in folder.iterdir()) == ["tiny-aries-sr.jsonl", "tiny-aries.jsonl"]
    assert not list((out / "m" / "arena_hard").glob("model_outputs_*.json"))  # no AlpacaEval files
    report = json.loads((out / "report.json").read_text())
    records = report["results"]["m"]["tasks"]["arena_hard"]["records"]
    for name, turn in (("tiny-aries", 0), ("tiny-aries-sr", 1)):
        rows = _lines(folder / f"{name}.jsonl")
        assert [r["uid"] for r in rows] == ["a1f0c3", "b27d91", "c9e4a8"]
        for row, record in zip(rows, records):
            check_arena_answer_current(row, name)
            assert row["messages"][1]["content"]["answer"] == record["turns"][turn]["text"]
        # the written file reads back as a baseline: the answers drop into the judging pipeline
        (questions / "model_answer" / f"{name}.jsonl").write_text((folder / f"{name}.jsonl").read_text())
        joined = load_prompts(_arena(questions, baseline=str(questions / "model_answer" / f"{name}.jsonl")))
        assert [p["reference_output"] for p in joined] == [r["turns"][turn]["text"] for r in records]

    folder = out / "m" / "arena_hard_v01" / "model_answer"
    assert sorted(p.name for p in folder.iterdir()) == ["m-sr.jsonl", "m.jsonl"]
    for name in ("m", "m-sr"):
        rows = _lines(folder / f"{name}.jsonl")
        assert [r["question_id"] for r in rows] == ["5e1b7c2a9d", "8f3a6d4e01", "c04b2f9e77", "d71e95ab3c"]
        for row in rows:
            check_arena_answer_v01(row, name)

    rows = _lines(out / "m" / "mt_bench" / "model_answer" / "m.jsonl")
    assert [r["question_id"] for r in rows] == [81, 82]
    for row in rows:
        check_mt_bench_answer(row, "m")
    assert (
        json.loads((out / "report.json").read_text())["config"]["generators"]["mt_bench"]["temperature"]
        == 0.7
    )
