"""The ``ifeval`` evaluation task: IFEval's four accuracies per turn, flips and truncations, the
response files in IFEval's format, lm-eval's IFEval scorer reproducing our accuracies from them,
oracle-feedback chains labelled as such, and resuming."""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import random
import sys
import types
from pathlib import Path

import pytest

pytest.importorskip("if_verifiable", reason="IFEval's checkers come from the if-verifiable package")

from aries_lit.evaluation.ifeval import (  # noqa: E402
    ifeval_metrics,
    ifeval_records,
    ratio_summary,
    write_responses,
)


def _group(i, instruction_ids, kwargs, texts, finish=None):
    return {
        "id": f"p{i}",
        "key": i,
        "prompt": f"Question {i}.",
        "instruction_id_list": instruction_ids,
        "kwargs": kwargs,
        "candidates": [
            {"index": t, "text": text, "finish_reason": (finish or {}).get(t, "stop")}
            for t, text in enumerate(texts)
        ],
    }


HAND_MADE = [
    # no commas + all lowercase: turn 0 breaks both, turn 1 fixes both
    _group(
        0,
        ["punctuation:no_comma", "change_case:english_lowercase"],
        [{}, {}],
        ["Hi, this is a short answer in English", "hi this is a short answer in english"],
    ),
    # all lowercase: turn 0 follows, turn 1 breaks it (and hits the token limit)
    _group(
        1,
        ["change_case:english_lowercase"],
        [{}],
        ["this answer is written in plain english", "THIS ANSWER IS NOT IN LOWER CASE"],
        finish={1: "length"},
    ),
    # no commas: followed at both turns, same text
    _group(2, ["punctuation:no_comma"], [{}], ["a b", "a b"]),
    # an empty answer follows nothing
    _group(3, ["punctuation:no_comma"], [{}], ["", "ok"]),
]


def test_hand_made_records_give_the_expected_accuracies_flips_and_truncations():
    records = ifeval_records(HAND_MADE)
    assert [t["strict"] for t in records[0]["turns"]] == [[False, False], [True, True]]
    assert records[3]["turns"][0]["strict"] == [False]
    m = ifeval_metrics(records, num_turns=2)
    ife = m["ifeval"]
    assert ife["instructions"] == 5
    assert ife["direct"]["prompt_strict"]["mean"] == pytest.approx(2 / 4)  # p1, p2
    assert ife["last"]["prompt_strict"]["mean"] == pytest.approx(3 / 4)  # p0, p2, p3
    assert ife["direct"]["inst_strict"]["mean"] == pytest.approx(2 / 5)
    assert ife["last"]["inst_strict"]["mean"] == pytest.approx(4 / 5)
    assert m["accuracy"]["direct"]["mean"] == ife["direct"]["prompt_strict"]["mean"]
    assert m["accuracy"]["sr"]["mean"] == ife["last"]["prompt_strict"]["mean"]
    assert ife["flips"] == {"from": 0, "to": 1, "wrong_to_right": 2, "right_to_wrong": 1, "unchanged_text": 1}
    assert [c["truncated"] for c in ife["curve"]] == [0, 1]
    by_type = ife["by_type"]
    assert by_type["direct"]["punctuation:no_comma"] == {"followed": 1, "n": 3, "rate": 1 / 3}
    assert by_type["last"]["change_case:english_lowercase"]["rate"] == 0.5
    assert not ife["oracle_feedback"]


def test_loose_accuracy_forgives_a_first_line_and_markdown():
    # IFEval loose drops the first line: the intro sentence has a comma, the rest none
    group = _group(0, ["punctuation:no_comma"], [{}], ["Sure, here it is:\nno commas here"])
    (record,) = ifeval_records([group])
    assert record["turns"][0]["strict"] == [False] and record["turns"][0]["loose"] == [True]


def test_ratio_summary_is_the_cluster_robust_ratio_estimator():
    followed, counts = [1, 2, 0, 3], [2, 2, 1, 3]
    s = ratio_summary(followed, counts)
    r = 6 / 8
    se = math.sqrt(sum((f - r * c) ** 2 for f, c in zip(followed, counts)) / (4 * 3)) / (8 / 4)
    assert s["mean"] == pytest.approx(r) and s["se"] == pytest.approx(se)
    assert s["ci_low"] == pytest.approx(r - 1.959964 * se, abs=1e-5) and s["n"] == 8
    assert math.isnan(ratio_summary([], [])["mean"])


def test_refinement_text_is_read_through_its_template():
    texts = ["a, b", "ANALYSIS: it has a comma, fix it\nRESPONSE: a b"]
    group = _group(0, ["punctuation:no_comma"], [{}], texts)
    (record,) = ifeval_records([group], template="analysis")
    assert record["turns"][1]["text"] == "a b" and record["turns"][1]["strict"] == [True]


def _lm_eval_ifeval():
    """lm-eval 0.4.13's IFEval scorer modules, imported without ``lm_eval/__init__`` (which pulls in
    the whole harness): the three package levels stand in as bare namespace modules."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lm-eval is not installed (pip install --no-deps lm-eval==0.4.13)")
    root = Path(next(iter(spec.submodule_search_locations)))
    if not (root / "tasks" / "ifeval" / "utils.py").exists():
        pytest.skip("this lm-eval has no tasks/ifeval")
    saved = {k: v for k, v in sys.modules.items() if k == "lm_eval" or k.startswith("lm_eval.")}
    for name, path in (("lm_eval", root), ("lm_eval.tasks", root / "tasks"),
                       ("lm_eval.tasks.ifeval", root / "tasks" / "ifeval")):  # fmt: skip
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module
    return saved


def _seeded(cls: type) -> type:
    class Seeded(cls):
        def __init__(self, *args, **kwargs):
            random.seed(0)
            super().__init__(*args, **kwargs)

    return Seeded


def _responses(prompt: str, i: int) -> str:
    """Answers of many shapes, so that every kind of checker both passes and fails somewhere."""
    body = prompt.replace(",", "")
    shapes = [
        prompt.lower(),
        prompt.upper(),
        f"<<A Title>>\n{body}\nP.S. that is all",
        f'"{body}"',
        "* one\n* two\n* three\n\n***\n\nSECTION 1\n" + body,
        json.dumps({"answer": body}),
        "",
        f"Sure, here you go:\n{body.lower()}\n**end**",
    ]
    return shapes[i % len(shapes)]


def test_lm_eval_scorer_reproduces_our_accuracies_from_the_response_file(tmp_path, monkeypatch):
    from aries_lit.instructions import offline_tokenizers
    from aries_lit.prompts.ifeval import IFEval

    prompts = IFEval().load()
    assert len(prompts) == 541
    groups = [
        {**p, "candidates": [{"index": 0, "text": _responses(p["prompt"], i), "finish_reason": "stop"}]}
        for i, p in enumerate(prompts)
    ]
    records = ifeval_records(groups)
    ours = ifeval_metrics(records, num_turns=1)["ifeval"]["direct"]
    paths = write_responses(tmp_path, records, num_turns=1)

    state = random.getstate()
    monkeypatch.setenv("LOCAL_RANK", "1")  # lm-eval downloads punkt_tab on import on rank 0
    saved = _lm_eval_ifeval()
    try:
        utils = importlib.import_module("lm_eval.tasks.ifeval.utils")
        util = importlib.import_module("lm_eval.tasks.ifeval.instructions_util")
        # A checker given an invalid argument draws a random one each time it is built (record 1122
        # asks for the "letter" '#'): seed lm-eval's draws as ours are (seed 0 when built).
        for key, cls in list(utils.instructions_registry.INSTRUCTION_DICT.items()):
            monkeypatch.setitem(utils.instructions_registry.INSTRUCTION_DICT, key, _seeded(cls))
        docs = [json.loads(line) for line in Path(paths["input_data"]).read_text().splitlines()]
        answers = [json.loads(line) for line in Path(paths["turn-0"]).read_text().splitlines()]
        assert set(answers[0]) == {"prompt", "response"}
        with offline_tokenizers(util):  # the same punkt substitute on lm-eval's copy of the checkers
            theirs = [utils.process_results(doc, [a["response"]]) for doc, a in zip(docs, answers)]
    finally:
        for name in [k for k in sys.modules if k == "lm_eval" or k.startswith("lm_eval.")]:
            del sys.modules[name]
        sys.modules.update(saved)
        random.setstate(state)
    for record, result in zip(records, theirs):
        assert record["turns"][0]["strict"] == result["inst_level_strict_acc"], record["id"]
        assert record["turns"][0]["loose"] == result["inst_level_loose_acc"], record["id"]
    prompt_strict = sum(r["prompt_level_strict_acc"] for r in theirs) / len(theirs)
    prompt_loose = sum(r["prompt_level_loose_acc"] for r in theirs) / len(theirs)
    assert ours["prompt_strict"]["mean"] == pytest.approx(prompt_strict, abs=1e-12)
    assert ours["prompt_loose"]["mean"] == pytest.approx(prompt_loose, abs=1e-12)
    assert ours["inst_strict"]["mean"] == pytest.approx(utils.agg_inst_level_acc(
        [r["inst_level_strict_acc"] for r in theirs]), abs=1e-12)  # fmt: skip
    assert ours["inst_loose"]["mean"] == pytest.approx(utils.agg_inst_level_acc(
        [r["inst_level_loose_acc"] for r in theirs]), abs=1e-12)  # fmt: skip
    assert 0.05 < ours["inst_strict"]["mean"] < 0.95  # the answers exercise both outcomes


def _evaluate(model, out, **options):
    from aries_lit.evaluation.evaluate import evaluate_checkpoints

    tasks = [
        {"class_path": "ifeval", "init_args": {"limit": 3}},
        {
            "class_path": "ifeval",
            "init_args": {"limit": 3},
            "label": "ifeval_oracle",
            "generator": {"class_path": "oracle_feedback", "init_args": {"stop_when_all_pass": True}},
        },
    ]
    return evaluate_checkpoints(
        [str(model)], tasks=tasks, out_dir=str(out), num_refinements=1, max_new_tokens=6,
        plots=False, progress=False, **options,
    )  # fmt: skip


def test_evaluate_scores_ifeval_writes_responses_labels_the_oracle_and_resumes(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    result = _evaluate(tiny_model_dir, out)
    (name,) = result["checkpoints"]
    metrics = result["checkpoints"][name]["tasks"]
    assert metrics["ifeval"]["kind"] == "ifeval" and metrics["ifeval"]["n"] == 3
    assert not metrics["ifeval"]["ifeval"]["oracle_feedback"]
    assert metrics["ifeval_oracle"]["ifeval"]["oracle_feedback"]
    assert result["config"]["generators"]["ifeval"]["temperature"] == 0.0
    for label in ("ifeval", "ifeval_oracle"):
        files = metrics[label]["responses"]
        rows = [json.loads(x) for x in Path(files["turn-1"]).read_text().splitlines()]
        assert len(rows) == 3 and all(set(r) == {"prompt", "response"} for r in rows)
        inputs = [json.loads(x) for x in Path(files["input_data"]).read_text().splitlines()]
        assert [set(r) for r in inputs] == [{"key", "prompt", "instruction_id_list", "kwargs"}] * 3
    report = (out / "report.md").read_text()
    assert "### IFEval: " in report and "**oracle feedback, not SR**" in report
    assert "prompt strict" in report and "at token limit" in report
    assert "| ifeval_oracle oracle |" in report and "ifeval_oracle SR" not in report  # never called SR
    assert "| ifeval SR |" in report
    # every 6-token answer hits the limit, and the table says so
    assert metrics["ifeval"]["ifeval"]["direct"]["truncated"] == 3
    candidates = out / name / "ifeval" / "candidates.jsonl"
    before = candidates.read_bytes()
    again = _evaluate(tiny_model_dir, out)  # a rerun reuses every generation
    assert candidates.read_bytes() == before
    assert again["checkpoints"][name]["tasks"]["ifeval"]["ifeval"] == metrics["ifeval"]["ifeval"]


def test_ifeval_kind_needs_instructions(tiny_model_dir, tmp_path):
    from aries_lit.evaluation.evaluate import evaluate_checkpoints

    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "hi"}) + "\n")
    with pytest.raises(ValueError, match="has no 'instruction_id_list' field"):
        task = {"class_path": "file", "init_args": {"path": str(path)}, "kind": "ifeval"}
        evaluate_checkpoints(
            [str(tiny_model_dir)], tasks=[task], out_dir=str(tmp_path / "o"), plots=False, progress=False
        )


def test_a_bad_instruction_in_a_prompt_file_is_one_line(tiny_model_dir, tmp_path, capsys):
    from aries_lit.cli import main

    path = tmp_path / "bad.jsonl"
    rows = [
        {"key": 1, "prompt": "Write.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
        {"key": 2, "prompt": "Write.", "instruction_id_list": ["punctuation:no_comas"], "kwargs": [{}]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SystemExit):
        main(["evaluate", "--checkpoints", f"[{tiny_model_dir}]", "--out_dir", str(tmp_path / "o"),
              "--tasks", f"[{{class_path: ifeval, init_args: {{path: {path}}}}}]"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "instruction_id_list[0]" in err[0]
    assert "punctuation:no_comas" in err[0] and "record 2" in err[0]


def test_score_ifeval_scores_a_response_file_as_evaluate_does(tmp_path, capsys):
    from aries_lit.cli import main
    from aries_lit.evaluation.ifeval_files import score_responses
    from aries_lit.prompts.ifeval import IFEval

    prompts = IFEval(limit=16).load()
    groups = [
        {**p, "candidates": [{"index": 0, "text": _responses(p["prompt"], i + 1), "finish_reason": "stop"}]}
        for i, p in enumerate(prompts)
    ]
    records = ifeval_records(groups)
    ours = ifeval_metrics(records, num_turns=1)["ifeval"]["direct"]
    paths = write_responses(tmp_path, records, num_turns=1)
    scores = score_responses(paths["turn-0"], allow_empty=True)
    assert scores["n"] == 16 and scores["of"] == 541
    for key in ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose"):
        assert scores[key]["mean"] == ours[key]["mean"]
    assert 0 < ours["inst_strict"]["mean"] < 1
    out = tmp_path / "s.json"
    main(["score-ifeval", "--responses", paths["turn-0"], "--allow_empty", "true", "--out", str(out)])
    printed = capsys.readouterr().out
    assert f"prompt_strict  {100 * ours['prompt_strict']['mean']:5.1f}" in printed
    assert json.loads(out.read_text())["n"] == 16


@pytest.mark.parametrize(
    "line, field, says",
    [
        ('{"prompt": "PROMPT", "response": ""}', "response", "empty response"),
        ('{"prompt": "PROMPT"}', "response", "missing"),
        ('{"prompt": "PROMPT", "response": 3}', "response", "not a string"),
        ('{"prompt": "not an IFEval prompt", "response": "x"}', "prompt", "not a prompt of the input data"),
        ('{"prompt": "FIRST", "response": "again"}', "prompt", "the same prompt as record 1"),
        ("[1, 2]", None, "expected a JSON object"),
        ("{oops", None, "not JSON"),
    ],
)
def test_score_ifeval_bad_input_is_one_line(tmp_path, capsys, line, field, says):
    from aries_lit.cli import main
    from aries_lit.prompts.ifeval import IFEval

    first, second = IFEval(limit=2).load()
    path = tmp_path / "responses.jsonl"
    ok = json.dumps({"prompt": first["prompt"], "response": "fine"})
    bad = line.replace("PROMPT", json.dumps(second["prompt"])[1:-1])
    bad = bad.replace("FIRST", json.dumps(first["prompt"])[1:-1])
    path.write_text(ok + "\n" + bad + "\n")
    with pytest.raises(SystemExit):
        main(["score-ifeval", "--responses", str(path)])
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err.startswith(f"aries-lit: error: {path}, record 2") and says in err
    assert (f"field '{field}'" in err) == (field is not None)


def test_score_ifeval_refuses_a_bad_instruction_in_its_input_data(tmp_path, capsys):
    from aries_lit.cli import main

    data = tmp_path / "input.jsonl"
    data.write_text(json.dumps({"key": 1, "prompt": "Write.", "instruction_id_list": ["punctuation:no_comma"],
                                "kwargs": [{"bogus": 3}]}) + "\n")  # fmt: skip
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"prompt": "Write.", "response": "ok"}) + "\n")
    with pytest.raises(SystemExit):
        main(["score-ifeval", "--responses", str(responses), "--input_data", str(data)])
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert str(data) in err and "record 1" in err and "kwargs[0]" in err and "bogus" in err
