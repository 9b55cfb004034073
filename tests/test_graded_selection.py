"""Instruction following: the ``graded`` selector, rule selection on the same candidates, and the
``oracle_feedback`` generator (refinement told which instructions the previous answer breaks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aries_lit.generators import GENERATORS, Backend, Completion, OracleFeedbackRefinement, load_groups
from aries_lit.generators.store import read_candidates, read_manifest
from aries_lit.instructions import Instruction, describe
from aries_lit.models import load_tokenizer
from aries_lit.prompts.feedback import FEEDBACK_TEMPLATE, NOTHING_BROKEN
from aries_lit.selectors import SELECTORS, GradedSelector, RuleSelector

REPO = Path(__file__).resolve().parents[1]
NO_COMMA = Instruction("punctuation:no_comma", {})
SHORT = Instruction("length_constraints:number_words", {"num_words": 6, "relation": "less than"})
TASK = "Describe rainy mornings in a few sentences."
PROMPT = {
    "id": "if-0",
    "prompt": " ".join([TASK, describe(NO_COMMA, TASK), describe(SHORT, TASK)]),
    "instruction_id_list": [NO_COMMA.id, SHORT.id],
    "kwargs": [{}, dict(SHORT.kwargs)],
}


def group(*texts: str, **extra) -> dict:
    cands = [{"index": i, "text": t, "finish_reason": "stop"} for i, t in enumerate(texts)]
    return {**PROMPT, **extra, "candidates": cands}


def test_graded_scores_are_the_fraction_of_constraints_met():
    groups = [
        group(
            "Rain, wind, grey skies, puddles and more words here.",
            "Rain, grey skies.",
            "Grey rain falls.",
            "Rain falls softly on the quiet street today.",
        ),
        group("Grey rain.", "Soft rain.", id="if-1"),  # both meet both: a tie
        {"id": "plain", "prompt": "Hi", "candidates": [{"index": 0, "text": "a"}, {"index": 1, "text": "b"}]},
    ]
    result = GradedSelector().select(groups)
    assert result.stats["groups"] == 3 and result.stats["pairs"] == 1
    assert result.stats["skipped/tie"] == 1 and result.stats["skipped/no_instructions"] == 1
    (pair,) = result.pairs
    assert pair["scores"] == [0.0, 0.5, 1.0, 0.5]
    assert (pair["chosen_index"], pair["rejected_index"]) == (2, 0)
    graded = result.audit["graded"]
    assert graded["mean_margin"] == 1.0 and graded["chosen_meets_all_share"] == 1.0
    assert graded["rejected_meets_all_share"] == 0.0
    assert graded["chosen_mean_words"] == 3.0 and graded["rejected_mean_words"] == 9.0
    assert graded["type_pass_rate"] == {NO_COMMA.id: 0.6667, SHORT.id: 0.6667}  # 4 of 6 candidates each
    assert result.stats["graded/candidates_meeting_all"] == 3  # y3 of the chain and both of the tie
    assert isinstance(SELECTORS.build("graded"), GradedSelector)


class ScriptedBackend(Backend):
    """No model: a comma-laden long answer first, a compliant one once feedback names a rule."""

    DIRECT = "Rain, wind, grey skies, puddles and many more words here."

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self._tok = load_tokenizer(model)
        self.calls: list[list[str]] = []

    @property
    def tokenizer(self):
        return self._tok

    def generate(self, contexts, settings):
        self.calls.append(list(contexts))
        out = []
        for context in contexts:
            if f"- {describe(NO_COMMA, TASK)}" in context:  # the feedback names the broken rule
                text = "Grey rain falls."
            elif "EXAMPLE RESPONSE" in context:
                text = "Grey rain falls again."
            else:
                text = self.DIRECT
            out.append(Completion(text, len(context), 5, "stop"))
        return out


@pytest.mark.parametrize("stop", [False, True])
def test_oracle_feedback_names_the_broken_instructions(tiny_model_dir, tmp_path, stop):
    backend = ScriptedBackend(str(tiny_model_dir))
    gen = GENERATORS.build(
        {"class_path": "oracle_feedback", "init_args": {"num_candidates": 4, "stop_when_all_pass": stop}},
        backend=backend,
    )
    assert isinstance(gen, OracleFeedbackRefinement)
    out = gen.run([PROMPT], model=str(tiny_model_dir), out_dir=tmp_path / "c", progress=False)
    first_refinement = backend.calls[1][0]
    assert f"- {describe(NO_COMMA, TASK)}\n- {describe(SHORT, TASK)}" in first_refinement
    candidates = sorted(read_candidates(out / "candidates.jsonl"), key=lambda c: c["index"])
    refined = ["Grey rain falls."] * 3 if stop else ["Grey rain falls.", *["Grey rain falls again."] * 2]
    assert [c["text"] for c in candidates] == [ScriptedBackend.DIRECT, *refined]
    assert "feedback" not in candidates[0] and all(c["feedback"] == "oracle" for c in candidates[1:])
    manifest = read_manifest(out)
    assert manifest["settings"]["feedback"] == "oracle" and manifest["generator"] == "oracle_feedback"
    assert manifest["settings"]["template"] == FEEDBACK_TEMPLATE
    if stop:  # the chain stopped once both constraints passed: two backend calls, two carried answers
        assert len(backend.calls) == 2
        assert [c.get("stopped", False) for c in candidates] == [False, False, True, True]
        assert all(c["completion_tokens"] == 0 for c in candidates[2:])
    else:  # all pass: the next prompt names nothing
        assert len(backend.calls) == 4 and NOTHING_BROKEN in backend.calls[2][0]

    groups = load_groups(out, [PROMPT])
    graded = GradedSelector().select(groups)
    assert (graded.pairs[0]["chosen_index"], graded.pairs[0]["rejected_index"]) == (3, 0)  # latest best
    assert graded.pairs[0]["scores"] == [0.0, 1.0, 1.0, 1.0]
    rule = RuleSelector().select(groups)  # the paper's rule on the same candidates: y4 over y1
    assert (rule.pairs[0]["chosen_index"], rule.pairs[0]["rejected_index"]) == (3, 0)
    assert rule.pairs[0]["rejected"] == candidates[0]["text"]


def test_oracle_feedback_refuses_prompts_without_instructions(tiny_model_dir, tmp_path):
    gen = OracleFeedbackRefinement(num_candidates=2, backend=ScriptedBackend(str(tiny_model_dir)))
    with pytest.raises(ValueError, match="prompt 'p' has no instruction_id_list"):
        gen.run(
            [{"id": "p", "prompt": "Hi"}], model=str(tiny_model_dir), out_dir=tmp_path / "c", progress=False
        )


def test_shipped_config_generates_and_selects_on_the_tiny_model(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """``aries-lit generate`` then ``select`` with configs/collect/instruction_following_tiny/ (the
    model and folders pointed at tmp_path), and rule selection on the same candidates."""
    from aries_lit.cli import main

    folder = REPO / "configs" / "collect" / "instruction_following_tiny"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "tiny-llama").symlink_to(tiny_model_dir)
    main(["generate", "--config", str(folder / "generate.yaml")])
    candidates = tmp_path / "runs" / "instruction_following_tiny"
    assert len(list(read_candidates(candidates / "candidates.jsonl"))) == 24
    main(["select", "--config", str(folder / "select.yaml")])
    stats = json.loads((candidates / "selection_stats.json").read_text())
    assert stats["groups"] == 6 and "graded" in stats["audit"]
    assert stats["pairs"] + sum(v for k, v in stats.items() if k.startswith("skipped/")) == 6
    main(["select", "--config", str(folder / "select_rule.yaml")])  # the paper's rule, same candidates
    rule_dir = candidates.with_name("instruction_following_tiny_rule")
    rule = json.loads((rule_dir / "selection_stats.json").read_text())
    assert rule["groups"] == 6 and rule["selector"].startswith("RuleSelector")
    graded = json.loads((candidates / "selection_stats.json").read_text())
    assert graded["selector"].startswith("GradedSelector")  # not replaced by the rule selection
