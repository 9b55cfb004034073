"""Selectors on hand-made prompt groups: rule, verifier, LLM judge (fake backend), reward model (tiny RM)."""

from __future__ import annotations

import json
import sys
import types
from collections import Counter

import pytest

from aries_lit.generators.backends.base import Backend, Completion
from aries_lit.registry import RegistryError
from aries_lit.selectors import (
    SELECTORS,
    SELF_REWARDING_JUDGE_PROMPT,
    LLMJudgeSelector,
    RewardModelSelector,
    RuleSelector,
    ScoredSelector,
    SelectionResult,
    Selector,
    VerifierSelector,
    parse_judge_score,
)


def make_group(gid, texts, finish=None, answer=None, prompt=None, indices=None):
    finish = finish or ["stop"] * len(texts)
    indices = list(range(len(texts))) if indices is None else indices
    group = {
        "id": gid,
        "prompt": prompt if prompt is not None else f"Question {gid}?",
        "candidates": [
            {"index": i, "text": t, "finish_reason": f, "completion_tokens": len(t.split())}
            for i, t, f in zip(indices, texts, finish)
        ],
    }
    if answer is not None:
        group["answer"] = answer
    return group


# --- user-defined selector, registered here -----------------------------------------------


@SELECTORS.register("test_longest")
class LongestSelector(ScoredSelector):
    """Chosen = longest answer, rejected = shortest (a user scorer)."""

    def score(self, groups, usable, stats):
        return [
            [float(len(g["candidates"][p]["text"])) if p in u else None for p in range(len(g["candidates"]))]
            for g, u in zip(groups, usable)
        ]


# --- registry ------------------------------------------------------------------------------


def test_registry_short_names():
    assert {"rule", "reward_model", "llm_judge", "verifier", "test_longest"} <= set(SELECTORS.names())
    assert isinstance(SELECTORS.build("rule"), RuleSelector)
    assert isinstance(SELECTORS.build("verifier"), VerifierSelector)
    sel = SELECTORS.build({"name": "rule", "init_args": {"chosen_index": 2, "rejected_index": 1}})
    assert (sel.chosen_index, sel.rejected_index) == (2, 1)
    sel = SELECTORS.build({"name": "reward_model", "model": "some/rm", "batch_size": 2})
    assert isinstance(sel, RewardModelSelector) and sel.batch_size == 2 and sel._model is None  # lazy


def test_registry_class_path_and_user_selector():
    sel = SELECTORS.build(
        {"class_path": "aries_lit.selectors.rule.RuleSelector", "init_args": {"skip_truncated": False}}
    )
    assert isinstance(sel, RuleSelector) and sel.skip_truncated is False
    assert SELECTORS.get("test_longest") is LongestSelector
    assert SELECTORS.get(f"{LongestSelector.__module__}.LongestSelector") is LongestSelector
    result = SELECTORS.build("test_longest").select([make_group("g", ["aa", "a", "aaaa", "aaa"])])
    (pair,) = result.pairs
    assert (pair["chosen"], pair["rejected"], pair["selector"]) == ("aaaa", "a", "test_longest")
    assert pair["scores"] == [2.0, 1.0, 4.0, 3.0]


def test_registry_errors():
    with pytest.raises(RegistryError, match="unknown selector 'nope'"):
        SELECTORS.get("nope")
    with pytest.raises(RegistryError, match="not a subclass of Selector"):
        SELECTORS.get("collections.Counter")


def test_group_validation_names_the_record():
    with pytest.raises(ValueError, match=r"prompt group 1 \(id='b'\): missing field 'candidates'"):
        RuleSelector().select([make_group("a", ["x", "y"]), {"id": "b", "prompt": "p"}])
    with pytest.raises(ValueError, match=r"candidates\[0\] needs a string field 'text'"):
        RuleSelector().select([{"id": "c", "prompt": "p", "candidates": [{"index": 0}]}])


# --- rule ----------------------------------------------------------------------------------


def test_rule_paper_default_y4_chosen_y1_rejected():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    groups = [make_group("g0", ["y1", "y2", "y3", "y4"], answer="4", prompt=messages)]
    result = RuleSelector().select(groups)
    assert result.pairs == [
        {
            "id": "g0",
            "prompt": messages,
            "chosen": "y4",
            "rejected": "y1",
            "chosen_index": 3,
            "rejected_index": 0,
            "scores": [None, None, None, None],
            "selector": "rule",
            "answer": "4",
        }
    ]
    assert result.pairs[0]["prompt"] is not messages  # a copy, not the caller's object
    assert result.stats == Counter(groups=1, pairs=1)
    json.dumps(result.pairs)


def test_rule_custom_indices_and_unsorted_input():
    group = make_group("g", ["c", "a", "d", "b"], indices=[2, 0, 3, 1])
    (pair,) = RuleSelector(chosen_index=2, rejected_index=-3).select([group]).pairs
    assert (pair["chosen"], pair["chosen_index"], pair["rejected"], pair["rejected_index"]) == (
        "c",
        2,
        "b",
        1,
    )


def test_rule_skips_and_counts():
    groups = [
        make_group("ok", ["y1", "y2", "y3", "y4"]),
        make_group("trunc_last", ["y1", "y2", "y3", "y4 cut"], finish=["stop", "stop", "length", "length"]),
        make_group("trunc_mid_only", ["y1", "y2", "y3", "y4"], finish=["stop", "length", "stop", "stop"]),
        make_group("identical", ["same answer", "x", "y", " same answer\n"]),
        make_group("single", ["only"]),
        make_group("empty", []),
    ]
    result = RuleSelector().select(groups)
    assert [p["id"] for p in result.pairs] == ["ok", "trunc_mid_only"]
    assert result.stats == Counter(
        {
            "groups": 6,
            "pairs": 2,
            "skipped/truncated": 1,
            "skipped/identical": 1,
            "skipped/too_few": 2,
            "candidates/truncated": 3,
        }
    )
    assert result.skipped() == 4
    summary = result.summary()
    assert summary.startswith("rule: 6 groups -> 2 pairs; skipped 4 (")
    assert "identical 1" in summary and "too_few 2" in summary and "truncated 3" in summary

    kept = RuleSelector(skip_truncated=False).select(groups)
    assert [p["id"] for p in kept.pairs] == ["ok", "trunc_last", "trunc_mid_only"]
    assert "candidates/truncated" not in kept.stats


def test_rule_out_of_range_index():
    result = RuleSelector(chosen_index=5).select([make_group("g", ["a", "b", "c"])])
    assert result.pairs == [] and result.stats["skipped/too_few"] == 1


def test_empty_input():
    result = RuleSelector().select([])
    assert result.pairs == [] and result.stats == Counter(groups=0, pairs=0)
    assert result.summary() == "rule: 0 groups -> 0 pairs"


# --- verifier ------------------------------------------------------------------------------


def test_verifier_latest_correct_vs_earliest_incorrect():
    group = make_group(
        "g", ["So 3 + 4 = 7.", "The answer is 18.", "#### 17", "Total: 12 + 6 = 18", "= 20"], answer="18"
    )
    (pair,) = VerifierSelector().select([group]).pairs
    assert pair["scores"] == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert (pair["chosen_index"], pair["rejected_index"]) == (3, 0)
    assert pair["answer"] == "18" and pair["selector"] == "verifier"
    (pair,) = (
        VerifierSelector(prefer_latest_correct=False, prefer_earliest_incorrect=False).select([group]).pairs
    )
    assert (pair["chosen_index"], pair["rejected_index"]) == (1, 4)


def test_verifier_skips_and_counts():
    groups = [
        make_group("all_correct", ["18", "it is 18"], answer="18"),
        make_group("none_correct", ["17", "no idea"], answer="18"),
        make_group("no_answer", ["17", "18"]),
        make_group("blank_answer", ["17", "18"], answer="  "),
        make_group("trunc", ["17", "18 and then more"], answer="18", finish=["stop", "length"]),
        make_group("gsm8k_gold", ["I got 70", "48 + 24 = 72"], answer="48/2 = <<48/2=24>>24\n#### 72"),
        make_group("fraction", ["0.5", "The answer is \\boxed{\\frac{3}{4}}"], answer="0.75"),
    ]
    result = VerifierSelector().select(groups)
    assert [(p["id"], p["chosen_index"], p["rejected_index"]) for p in result.pairs] == [
        ("gsm8k_gold", 1, 0),
        ("fraction", 1, 0),
    ]
    assert result.stats == Counter(
        {
            "groups": 7,
            "pairs": 2,
            "skipped/all_correct": 1,
            "skipped/none_correct": 1,
            "skipped/no_answer": 2,
            "skipped/truncated": 1,
            "candidates/truncated": 1,
            "candidates/no_answer_found": 1,
        }
    )


def test_verifier_truncated_correct_is_not_chosen():
    group = make_group("g", ["17", "wrong 16", "18 but cut"], answer="18", finish=["stop", "stop", "length"])
    result = VerifierSelector().select([group])
    assert result.stats["skipped/none_correct"] == 1
    (pair,) = VerifierSelector(skip_truncated=False).select([group]).pairs
    assert pair["chosen_index"] == 2 and pair["scores"] == [0.0, 0.0, 1.0]


def test_verifier_extractors():
    group = make_group("g", ["3 + 4 = 7", "#### 18\n\nQuestion: Tom has 5 apples."], answer="18")
    assert len(VerifierSelector(extract="auto").select([group]).pairs) == 1
    assert VerifierSelector(extract="last_number").select([group]).stats["skipped/none_correct"] == 1
    assert len(VerifierSelector(extract="gsm8k").select([group]).pairs) == 1
    with pytest.raises(ValueError, match="unknown answer extractor"):
        VerifierSelector(extract="magic")


# --- LLM judge -----------------------------------------------------------------------------


class FakeTokenizer:
    chat_template = "fake"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False, **kwargs):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + (
            "<assistant>" if add_generation_prompt else ""
        )


class FakeJudgeBackend(Backend):
    """Returns a canned judgement per response text (looked up inside the judge prompt)."""

    def __init__(self, grades, model="fake-judge"):
        super().__init__(model)
        self.grades = grades
        self.calls = []
        self.closed = False
        self._tokenizer = FakeTokenizer()

    @property
    def tokenizer(self):
        return self._tokenizer

    def generate(self, contexts, settings):
        self.calls.append((list(contexts), settings))
        out = []
        for n, ctx in enumerate(contexts):
            response = ctx.split("<response>", 1)[1].split("</response>", 1)[0]
            grade = self.grades[response]
            text = grade[n % len(grade)] if isinstance(grade, list) else grade
            out.append(
                Completion(
                    text=text, prompt_tokens=len(ctx), completion_tokens=len(text), finish_reason="stop"
                )
            )
        return out

    def close(self):
        self.closed = True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Score: 4", 4.0),
        ("score: 4/5", 4.0),
        ("**Score:** 3.5", 3.5),
        ("Score: **2**", 2.0),
        ("The response earns 4 points.", 4.0),
        ("I give it 3 out of 5", 3.0),
        ("Score: 2\nOn reflection... Score: 5", 5.0),
        ("Score: 4. It loses 1 point for verbosity.", 4.0),
        ("Score: four", 4.0),
        ("Total score = 0", 0.0),
        ("Score: 7", None),
        ("Score: -1", None),
        ("Score: 8/10", None),
        ('Conclude with "Score: <total points>"', None),
        ("This answer is great!", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_judge_score(text, expected):
    assert parse_judge_score(text) == expected


def test_judge_prompt_is_the_self_rewarding_rubric():
    sel = LLMJudgeSelector(backend=FakeJudgeBackend({}))
    filled = sel.judge_prompt([{"role": "user", "content": "What is 2+2?"}], "It is 4.")
    assert filled.startswith(
        "Review the user's question and the corresponding response using the additive 5-point"
    )
    assert "User: What is 2+2?\n<response>It is 4.</response>" in filled
    assert 'Conclude with the score using the format: "Score: <total points>"' in filled
    assert filled.count("point") >= 5 and "{prompt}" not in filled
    assert "{prompt}" in SELF_REWARDING_JUDGE_PROMPT and "{response}" in SELF_REWARDING_JUDGE_PROMPT
    with pytest.raises(ValueError, match="response"):
        LLMJudgeSelector(backend=FakeJudgeBackend({}), prompt_template="Grade {prompt}")
    with pytest.raises(ValueError, match="needs `model`"):
        LLMJudgeSelector()


def test_judge_selects_best_and_worst_and_counts():
    backend = FakeJudgeBackend(
        {
            "a": "Justification... Score: 2",
            "b": "**Score:** 4.5",
            "c": "Score: 3",
            "d": "I refuse to grade.",
            "e": "Score: 3",
            "f": "Score: 3/5",
            "g": "Score: 10",
            "h": "Score: 1",
            "cut": "Score: 5",
        }
    )
    groups = [
        make_group("best_worst", ["a", "b", "c"]),
        make_group("one_garbage", ["d", "a", "c"]),
        make_group("tie", ["e", "f"]),
        make_group("unparseable", ["g", "h"]),
        make_group("truncated", ["cut", "h"], finish=["length", "stop"]),
        make_group("single", ["a"]),
    ]
    sel = LLMJudgeSelector(model="policy", backend=backend, max_new_tokens=64)
    result = sel.select(groups)
    assert [(p["id"], p["chosen"], p["rejected"]) for p in result.pairs] == [
        ("best_worst", "b", "a"),
        ("one_garbage", "c", "a"),
    ]
    assert result.pairs[0]["scores"] == [2.0, 4.5, 3.0]
    assert result.pairs[1]["scores"] == [None, 2.0, 3.0]
    assert result.pairs[0]["selector"] == "llm_judge"
    assert result.stats == Counter(
        {
            "groups": 6,
            "pairs": 2,
            "skipped/tie": 1,
            "skipped/unparseable": 1,
            "skipped/truncated": 1,
            "skipped/too_few": 1,
            "candidates/truncated": 1,
            "candidates/unparseable": 2,
            "candidates/scored": 10,
            "judge/unparseable_grades": 2,
        }
    )
    # One generate call; truncated candidates and one-candidate groups are not graded.
    ((contexts, settings),) = backend.calls
    assert len(contexts) == 10
    assert all(
        c.startswith("<user>Review the user's question") and c.endswith("<assistant>") for c in contexts
    )
    assert settings.temperature == 0.0 and settings.max_new_tokens == 64
    assert backend.closed is False  # a backend handed in is the caller's
    assert sel.last_judgements[0][1] == ["**Score:** 4.5"]


def test_judge_min_margin_and_ties_prefer_latest():
    backend = FakeJudgeBackend({"a": "Score: 3", "b": "Score: 4", "c": "Score: 4", "d": "Score: 3"})
    result = LLMJudgeSelector(backend=backend, min_margin=1.0).select([make_group("g", ["a", "b"])])
    assert result.stats["skipped/small_margin"] == 1 and not result.pairs
    (pair,) = LLMJudgeSelector(backend=backend).select([make_group("g", ["a", "b", "c", "d"])]).pairs
    assert (pair["chosen_index"], pair["rejected_index"]) == (2, 0)


def test_judge_averages_samples():
    backend = FakeJudgeBackend(
        {"a": ["Score: 1", "Score: 2", "nonsense"], "b": ["Score: 5", "Score: 4", "Score: 3"]}
    )
    result = LLMJudgeSelector(backend=backend, num_samples=3, temperature=0.7).select(
        [make_group("g", ["a", "b"])]
    )
    (pair,) = result.pairs
    assert pair["scores"] == [1.5, 4.0]
    assert len(backend.calls[0][0]) == 6 and backend.calls[0][1].temperature == 0.7
    assert result.stats["judge/unparseable_grades"] == 1 and "candidates/unparseable" not in result.stats


def test_judge_builds_and_closes_its_backend(monkeypatch):
    built = []

    class FakeRegistry:
        def build(self, spec):
            built.append(spec)
            backend = FakeJudgeBackend({"a": "Score: 1", "b": "Score: 5"}, model=spec["model"])
            built.append(backend)
            return backend

    fake = types.ModuleType("aries_lit.generators")
    fake.BACKENDS = FakeRegistry()
    monkeypatch.setitem(sys.modules, "aries_lit.generators", fake)
    sel = SELECTORS.build({"name": "llm_judge", "model": "my/policy", "backend": {"name": "vllm", "seed": 3}})
    (pair,) = sel.select([make_group("g", ["a", "b"])]).pairs
    assert pair["chosen"] == "b"
    assert built[0] == {"name": "vllm", "seed": 3, "model": "my/policy"}
    assert built[1].closed is True
    LLMJudgeSelector(model="m2").select([make_group("g", ["a", "b"])])
    assert built[2] == {"name": "transformers", "model": "m2"}


def test_judge_with_the_transformers_backend(tiny_model_dir):
    """End to end through the real backend registry (a random tiny model grades nonsense)."""
    sel = SELECTORS.build(
        {
            "name": "llm_judge",
            "model": str(tiny_model_dir),
            "backend": {"name": "transformers", "dtype": "float32"},
            "max_new_tokens": 4,
        }
    )
    result = sel.select([make_group("g", ["The answer is 4.", "It is 5."])])
    assert result.stats["candidates/scored"] == 2
    assert result.stats["pairs"] + sum(v for k, v in result.stats.items() if k.startswith("skipped/")) == 1
    assert [len(j) for j in sel.last_judgements[0]] == [1, 1]


# --- reward model --------------------------------------------------------------------------


def _rm_groups():
    return [
        make_group("g0", ["The answer is 4.", "4", "Two plus two is four, so the answer is 4."]),
        make_group(
            "g1",
            ["It is 12.", "Let us see: 3 * 4 = 12. The answer is 12.", "12", "Maybe 13? " * 5],
            prompt=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "3 * 4?"}],
        ),
        make_group(
            "g2",
            ["short", "cut off answer that goes on", "a longer answer here"],
            finish=["stop", "length", "stop"],
        ),
        make_group("g3", ["same text", "same text"]),
    ]


def _reference_scores(model_dir, groups):
    """Scores recomputed one (prompt, candidate) at a time with transformers directly."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    out = []
    for g in groups:
        prompt = g["prompt"] if isinstance(g["prompt"], list) else [{"role": "user", "content": g["prompt"]}]
        row = []
        for cand in g["candidates"]:
            text = tok.apply_chat_template(
                prompt + [{"role": "assistant", "content": cand["text"]}], tokenize=False
            )
            ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
            with torch.no_grad():
                row.append(model(input_ids=ids).logits[0, 0].item())
        out.append(row)
    return out


def test_reward_model_selection_matches_transformers(tiny_reward_model_dir):
    groups = _rm_groups()
    reference = _reference_scores(tiny_reward_model_dir, groups)
    by_batch = {}
    for batch_size in (1, 8):
        sel = RewardModelSelector(model=str(tiny_reward_model_dir), batch_size=batch_size)
        result = sel.select(groups)
        assert sel._model is None  # freed after select
        by_batch[batch_size] = result
        assert [p["id"] for p in result.pairs] == ["g0", "g1", "g2"]
        assert result.stats == Counter(
            {"groups": 4, "pairs": 3, "skipped/tie": 1, "candidates/truncated": 1, "candidates/scored": 11}
        )
        for pair, group, ref in zip(result.pairs, groups, reference):
            usable = [i for i, c in enumerate(group["candidates"]) if c["finish_reason"] == "stop"]
            assert [s is None for s in pair["scores"]] == [i not in usable for i in range(len(ref))]
            for i in usable:
                assert pair["scores"][i] == pytest.approx(ref[i], abs=1e-4)
            best = max(usable, key=lambda i: ref[i])
            worst = min(usable, key=lambda i: ref[i])
            assert pair["chosen"] == group["candidates"][best]["text"] and pair["chosen_index"] == best
            assert pair["rejected"] == group["candidates"][worst]["text"] and pair["rejected_index"] == worst
            assert pair["selector"] == "reward_model"
    for p1, p8 in zip(by_batch[1].pairs, by_batch[8].pairs):
        assert [s is None for s in p1["scores"]] == [s is None for s in p8["scores"]]
        assert [s or 0.0 for s in p1["scores"]] == pytest.approx([s or 0.0 for s in p8["scores"]], abs=1e-4)


def test_reward_model_margin_and_input_truncation(tiny_reward_model_dir):
    groups = _rm_groups()[:2]
    result = RewardModelSelector(model=str(tiny_reward_model_dir), min_margin=1e9).select(groups)
    assert result.pairs == [] and result.stats["skipped/small_margin"] == 2
    sel = RewardModelSelector(model=str(tiny_reward_model_dir), max_length=8, keep_loaded=True)
    result = sel.select(groups)
    assert result.stats["candidates/rm_input_truncated"] == 7
    assert sel._model is not None
    sel.unload()
    assert sel._model is None


def test_reward_model_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        RewardModelSelector(model=str(tmp_path)).select([make_group("g", ["a", "b"])])


# --- base ------------------------------------------------------------------------------------


def test_base_selector_contract():
    with pytest.raises(NotImplementedError):
        Selector().select([make_group("g", ["a", "b"])])
    with pytest.raises(ValueError, match="min_margin"):
        ScoredSelector(min_margin=-1)
    result = SelectionResult(
        pairs=[],
        stats=Counter({"groups": 3, "pairs": 1, "skipped/tie": 2, "candidates/truncated": 1}),
        selector="x",
    )
    assert result.summary() == "x: 3 groups -> 1 pairs; skipped 2 (tie 2); candidates truncated 1"
