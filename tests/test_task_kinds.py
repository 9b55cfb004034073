"""Evaluation task kinds: the built-in ones are registered classes, and a kind added from outside
the package (this file) is one class and one registration that ``evaluate_checkpoints`` runs end to
end on the tiny model: inferred from its records, its temperature, records, metrics and report
section."""

from __future__ import annotations

import json

import pytest

from aries_lit.evaluation import evaluate_checkpoints
from aries_lit.evaluation.kinds import TASK_KINDS, TaskKind, kind_of
from aries_lit.evaluation.turns import turn_curve


@TASK_KINDS.register("mentions")
class MentionsKind(TaskKind):
    """Each record names a word its answer should mention: the share of answers that do, per turn."""

    temperature = 0.0
    requires = "must_mention"
    infer_order = -1  # tried before the built-in kinds: records with `must_mention` are of this kind
    reward_model = False

    def record_fields(self, group):
        return {"must_mention": group["must_mention"]}

    def turn_fields(self, text, record, run):
        return {"mentions": record["must_mention"] in text}

    def metrics(self, records, all_records, run):
        metrics = super().metrics(records, all_records, run)
        metrics["mentions"] = turn_curve(records, "mentions", run.num_turns, "wilson", run.confidence)
        return metrics

    def what(self, task, config):
        return "share of answers that mention the record's word"

    def section(self, checkpoint, label, metrics, config):
        rates = ", ".join(f"{100 * c['mean']:.0f}%" for c in metrics["mentions"])
        return ["", f"### Mentions: {checkpoint} on {label}: {rates}"]


def _prompts(path, with_word=True):
    rows = [{"id": f"w{i}", "prompt": f"Say the word {w}.", **({"must_mention": w} if with_word else {})}
            for i, w in enumerate(["a", "e", "the"])]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"class_path": "file", "init_args": {"path": str(path)}, "label": "words"}


def test_the_built_in_kinds_are_registered_classes():
    assert {"verifiable", "ifeval", "pairwise", "open", "mt_bench"} <= set(TASK_KINDS.names())
    assert kind_of("verifiable").temperature == 0.0 and kind_of("pairwise").judged
    assert kind_of("mt_bench").reward_model is None and not kind_of("mt_bench").refines
    with pytest.raises(ValueError, match="unknown kind 'nope'"):
        kind_of("nope")


def test_a_kind_registered_here_runs_end_to_end(tmp_path, tiny_model_dir):
    out = tmp_path / "eval"
    result = evaluate_checkpoints(
        [str(tiny_model_dir)], tasks=[_prompts(tmp_path / "w.jsonl")], out_dir=str(out), names=["m"],
        num_refinements=1, max_new_tokens=4, plots=False, progress=False,
    )  # fmt: skip
    metrics = result["checkpoints"]["m"]["tasks"]["words"]
    assert metrics["kind"] == "mentions" and metrics["n"] == 3
    assert [c["turn"] for c in metrics["mentions"]] == [0, 1]
    assert result["config"]["generators"]["words"]["temperature"] == 0.0  # the kind's default
    records = json.loads((out / "report.json").read_text())["results"]["m"]["tasks"]["words"]["records"]
    assert [r["must_mention"] for r in records] == ["a", "e", "the"]
    assert all(isinstance(t["mentions"], bool) for r in records for t in r["turns"])
    report = (out / "report.md").read_text()
    assert "- **words** (mentions, 3 prompts, sequential_refinement, temperature 0.0" in report
    assert "share of answers that mention the record's word." in report
    assert "### Mentions: m on words: " in report


def test_a_task_naming_the_kind_needs_its_field(tmp_path, tiny_model_dir):
    task = {**_prompts(tmp_path / "w.jsonl", with_word=False), "kind": "mentions"}
    with pytest.raises(ValueError, match="kind mentions\\): prompt record 0 .* has no 'must_mention' field"):
        evaluate_checkpoints([str(tiny_model_dir)], tasks=[task], out_dir=str(tmp_path / "o"), progress=False)
    assert not (tmp_path / "o").exists()


def test_a_subclass_is_inferred_only_if_it_sets_its_own_order(tmp_path):
    from aries_lit.evaluation.kinds import OpenKind, infer_kind
    from aries_lit.evaluation.tasks import Task

    @TASK_KINDS.register("aaa_open_variant")
    class OpenVariant(OpenKind):  # inherits infer_order = 1000 and accepts everything
        pass

    task = Task(label="t", source="x", prompts=[{"id": "a", "prompt": "hi"}])
    assert infer_kind(task).name == "open"
    assert infer_kind(Task(label="t", source="x", kind="aaa_open_variant", prompts=task.prompts)).name == (
        "aaa_open_variant"
    )
