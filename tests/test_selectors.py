"""Selectors on hand-made prompt groups: rule, verifier, LLM judge (fake backend), reward model (tiny RM)."""

from __future__ import annotations

import json
import sys
import types
from collections import Counter

import pytest

from aries_lit.core.registry import RegistryError
from aries_lit.generators.backends.base import Backend, Completion
from aries_lit.prompts.templates import SHORT_TEMPLATE, TEMPLATES
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
    sel = SELECTORS.build({"class_path": "rule", "init_args": {"chosen_index": 2, "rejected_index": 1}})
    assert (sel.chosen_index, sel.rejected_index) == (2, 1)
    sel = SELECTORS.build({"class_path": "reward_model", "model": "some/rm", "batch_size": 2})
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
            "candidates/no_stated_answer": 1,  # "no idea"
            "candidates/wrong_answer": 4,  # "17" twice, "I got 70", "0.5"
        }
    )


def test_verifier_truncated_correct_is_never_chosen():
    group = make_group("g", ["17", "wrong 16", "18 but cut"], answer="18", finish=["stop", "stop", "length"])
    result = VerifierSelector().select([group])
    assert result.stats["skipped/none_correct"] == 1
    # skip_truncated=False keeps the truncated candidate in play, but never as chosen ...
    for sel in (
        VerifierSelector(skip_truncated=False),
        VerifierSelector(skip_truncated=False, require_stated_answer=False, reject_template_echo=False),
    ):
        result = sel.select([group])
        assert result.pairs == [] and result.stats["skipped/none_correct"] == 1
        assert result.stats["candidates/truncated"] == 1
    # ... while it may still be the rejected answer.
    group = make_group(
        "g", ["The answer is 18.", "The answer is 18, and"], answer="18", finish=["stop", "length"]
    )
    (pair,) = VerifierSelector(skip_truncated=False).select([group]).pairs
    assert (pair["chosen_index"], pair["rejected_index"], pair["scores"]) == (0, 1, [1.0, 0.0])
    assert VerifierSelector().select([group]).stats["skipped/truncated"] == 1


def test_verifier_extractors():
    group = make_group("g", ["3 + 4 = 7", "#### 18\n\nQuestion: Tom has 5 apples."], answer="18")
    assert len(VerifierSelector(extract="auto").select([group]).pairs) == 1
    assert VerifierSelector(extract="last_number").select([group]).stats["skipped/none_correct"] == 1
    assert len(VerifierSelector(extract="gsm8k").select([group]).pairs) == 1
    with pytest.raises(ValueError, match="unknown answer extractor"):
        VerifierSelector(extract="magic")
    # Every extractor also needs a stated answer by default; the last number alone is not one.
    group = make_group("g", ["3 + 4 = 7", "I counted 18 apples and 2 pears, about 18"], answer="18")
    assert VerifierSelector(extract="last_number").select([group]).stats["skipped/none_correct"] == 1
    loose = VerifierSelector(extract="last_number", require_stated_answer=False).select([group])
    assert [(p["chosen_index"], p["rejected_index"]) for p in loose.pairs] == [(1, 0)]


# --- answer quality: issue 11 (demo run, SmolLM2-135M on arithmetic) ---------------------------

ARITH_PROMPT = "What is 4 - 0? Give the final answer as a number."
# Chosen in the demo run (cut at the token limit; its last number is the gold 4): template echo.
ECHO_4 = (
    "Remember that the original QUESTION is asking for the result of 4 - 0. The difference between 4 "
    "and 0 is 4, so 4 - 0 is 4.\n\nRefined RESPONSE"
)
# Rejected in the demo run: its last number (2) is not a stated answer.
TWO_PARAGRAPHS = "4 - 0 is 4. The response consists of 2 paragraphs"
GOOD_4 = "4 - 0 = 4. The final answer is 4."


def test_template_echo_detector_from_the_templates():
    from aries_lit.selectors.quality import TemplateEchoDetector, echo_detector, template_echo

    detector = echo_detector()
    assert set(detector.templates) == set(TEMPLATES.values())
    assert {"QUESTION:", "EXAMPLE RESPONSE:", "RESPONSE:", "ANALYSIS:", "REFINEMENT:"} <= set(
        detector.headers
    )
    assert {"QUESTION", "EXAMPLE", "RESPONSE", "ANALYSIS"} <= detector.keywords
    echoes = {
        ECHO_4: "header 'Refined RESPONSE'",
        "The original QUESTION asks for 4 - 0, so the Refined RESPONSE is 4.": "keywords QUESTION, RESPONSE",
        "RESPONSE: 4 - 0 = 4": "header 'RESPONSE:'",
        "QUESTION:\nWhat is 4 - 0?\nEXAMPLE RESPONSE:\n4": "header 'EXAMPLE RESPONSE:'",
        "ANALYSIS: the example is fine. 4": "header 'ANALYSIS:'",
        "The EXAMPLE RESPONSE is correct: 4 - 0 = 4.": "keywords EXAMPLE, RESPONSE",
        "Here is a more helpful response, improving the example response by making the content even "
        "clearer: 4 - 0 = 4.": "verbatim 'a more helpful response improving the example response'",
        "Please provide a better response. 4": "verbatim 'please provide a better response'",
        "4 - 0 = 4.\n\nRefined RESPONSE": "header 'Refined RESPONSE'",
        "**Improved RESPONSE:**\n4 - 0 = 4": "header 'RESPONSE:'",
        "## Improved RESPONSE\n4 - 0 = 4": "header 'Improved RESPONSE'",
    }
    for text, reason in echoes.items():
        assert detector.find(text, ARITH_PROMPT) == reason, text
        assert template_echo(text, ARITH_PROMPT)
    normal = [
        GOOD_4,
        TWO_PARAGRAPHS,
        "To answer the question, note that 4 - 0 = 4. The question asks for a number, so the answer is 4.",
        "Great QUESTION! 4 - 0 = 4.",  # one keyword alone
        "GREAT QUESTION!\n4 - 0 = 4.",
        "Subtracting 0 from a number leaves the number unchanged, so this RESPONSE is simply 4.",
        "Focus on the question: subtracting zero leaves 4, a clear and accurate response.",
        "",
    ]
    for text in normal:
        assert detector.find(text, ARITH_PROMPT) is None, text
    # Scaffolding that the prompt itself contains is not held against the answer.
    assert detector.find("QUESTION: is it 4? Yes.", "QUESTION: is it 4? Answer yes or no.") is None
    messages = [{"role": "user", "content": "Fill in: EXAMPLE RESPONSE: ..."}]
    assert detector.find("EXAMPLE RESPONSE: done", messages) is None
    # Built from the texts: a custom template's scaffolding is echo only once the detector knows it.
    custom = "Improve the DRAFT below.\n{question}\nDRAFT ANSWER:\n{example_response}\nBETTER DRAFT:"
    assert TemplateEchoDetector([custom]).find("BETTER DRAFT: 4") == "header 'BETTER DRAFT:'"
    assert not template_echo("BETTER DRAFT: 4") and template_echo("BETTER DRAFT: 4", extra_templates=[custom])


def test_verifier_never_chooses_template_echo_or_an_unstated_answer():
    """The demo pair of issue 11 is no longer made; a stated correct answer is chosen instead."""
    demo = make_group(
        "demo", [TWO_PARAGRAPHS, ECHO_4], answer="4", prompt=ARITH_PROMPT, finish=["stop", "length"]
    )
    result = VerifierSelector(skip_truncated=False).select([demo])
    assert result.pairs == [] and result.stats["skipped/none_correct"] == 1
    assert result.stats["candidates/truncated"] == 1 and result.stats["candidates/no_stated_answer"] == 1
    # Finished, the echo is still never chosen ...
    finished = make_group("fin", [TWO_PARAGRAPHS, ECHO_4], answer="4", prompt=ARITH_PROMPT)
    result = VerifierSelector(skip_truncated=False).select([finished])
    assert result.pairs == [] and result.stats["candidates/template_echo"] == 1
    # ... though the older, looser grading (still reachable) would choose it over the "2 paragraphs".
    loose = VerifierSelector(require_stated_answer=False, reject_template_echo=False).select([finished])
    assert [(p["chosen"], p["rejected"]) for p in loose.pairs] == [(ECHO_4, TWO_PARAGRAPHS)]
    # With a real answer among the candidates, that one is chosen and the echo can be rejected.
    group = make_group("g", [ECHO_4, TWO_PARAGRAPHS, GOOD_4], answer="4", prompt=ARITH_PROMPT)
    (pair,) = VerifierSelector().select([group]).pairs
    assert (pair["chosen"], pair["rejected"], pair["scores"]) == (GOOD_4, ECHO_4, [0.0, 0.0, 1.0])


@pytest.mark.parametrize(
    "text",
    [
        "5 + 7 = 12. The final answer is 12.",
        "**Answer:** 12",
        "12",
        "Natalia sold 48/4 = 12 clips.\n#### 12",
        "She has 5 + 7 = 12 apples.",
        r"So she has $\boxed{12}$ apples.",
    ],
)
def test_verifier_accepts_stated_answers(text):
    group = make_group("g", ["She has 5 + 7 = 13 apples.", text], answer="12")
    (pair,) = VerifierSelector().select([group]).pairs
    assert (pair["chosen_index"], pair["rejected_index"]) == (1, 0)


def test_verifier_echo_templates_option():
    custom = "Improve the DRAFT below.\n{question}\nDRAFT ANSWER:\n{example_response}\nBETTER DRAFT:"
    group = make_group("g", ["The answer is 5.", "BETTER DRAFT: The answer is 4."], answer="4")
    assert len(VerifierSelector().select([group]).pairs) == 1
    result = VerifierSelector(echo_templates=[custom]).select([group])
    assert result.pairs == [] and result.stats["candidates/template_echo"] == 1
    assert VerifierSelector(echo_templates=["short"]).extra_echo_templates == [SHORT_TEMPLATE]
    with pytest.raises(ValueError, match="refinement template"):
        VerifierSelector(echo_templates=["no fields here"])


# --- pair-quality audit --------------------------------------------------------------------------


def _audit_groups():
    return [
        make_group(
            "g1",
            [TWO_PARAGRAPHS, ECHO_4, GOOD_4],
            finish=["stop", "length", "stop"],
            answer="4",
            prompt=ARITH_PROMPT,
        ),
        make_group("g2", ["I think it is 11.", "**Answer:** 12"], answer="12"),
        make_group("g3", ["7", "Remember the QUESTION: 3 + 4. RESPONSE: 7"], answer="7"),
        make_group("g4", ["Paris is the capital.", "The capital of France is Paris."]),  # no gold answer
        make_group("g5", ["9", "The sum is 9 and"], finish=["stop", "length"], answer="9"),
    ]


def test_audit_of_rule_selection():
    result = RuleSelector().select(_audit_groups())
    assert [(p["id"], p["chosen_index"], p["rejected_index"]) for p in result.pairs] == [
        ("g1", 2, 0),
        ("g2", 1, 0),
        ("g3", 1, 0),
        ("g4", 1, 0),
    ]
    assert result.audit == {
        "pairs": 4,
        "pairs_with_gold": 3,
        "chosen": {
            "finished": 4,
            "finished_share": 1.0,
            "template_echo": 1,  # g3's "QUESTION: ... RESPONSE: 7"
            "template_echo_share": 0.25,
            "states_answer": 2,  # g1 "final answer is 4", g2 "**Answer:** 12"; not g3 "RESPONSE: 7"
            "states_answer_share": 0.6667,
            "states_gold": 2,
            "states_gold_share": 0.6667,
        },
        "rejected": {
            "finished": 4,
            "finished_share": 1.0,
            "template_echo": 0,
            "template_echo_share": 0.0,
            "states_answer": 2,  # g2 "it is 11", g3 "7"; not the "2 paragraphs"
            "states_answer_share": 0.6667,
            "states_gold": 1,  # g3 "7"
            "states_gold_share": 0.3333,
        },
        "candidate_rejections": {"truncated": 2},
        "groups_skipped": {"truncated": 1},
    }
    assert result.audit_summary() == (
        "audit: chosen: finished 4/4, template echo 1/4, states an answer 2/3, states the gold 2/3; "
        "rejected: finished 4/4, template echo 0/4, states an answer 2/3, states the gold 1/3"
    )
    # skip_truncated=False: a truncated chosen answer shows up as not finished.
    kept = RuleSelector(chosen_index=1, rejected_index=0, skip_truncated=False).select(_audit_groups()[:1])
    assert kept.audit["chosen"]["finished"] == 0 and kept.audit["chosen"]["template_echo"] == 1
    assert kept.audit["candidate_rejections"] == {"truncated": 0}


def test_audit_of_verifier_selection():
    result = VerifierSelector().select(_audit_groups())
    assert [(p["id"], p["chosen_index"], p["rejected_index"]) for p in result.pairs] == [
        ("g1", 2, 0),
        ("g2", 1, 0),
        ("g3", 0, 1),
    ]
    audit = result.audit
    assert (audit["pairs"], audit["pairs_with_gold"]) == (3, 3)
    assert audit["chosen"] == {
        "finished": 3,
        "finished_share": 1.0,
        "template_echo": 0,
        "template_echo_share": 0.0,
        "states_answer": 3,
        "states_answer_share": 1.0,
        "states_gold": 3,
        "states_gold_share": 1.0,
    }
    assert audit["rejected"]["template_echo"] == 1 and audit["rejected"]["states_answer"] == 1
    assert audit["rejected"]["states_gold"] == 0
    assert audit["candidate_rejections"] == {
        "truncated": 2,
        "template_echo": 1,
        "no_stated_answer": 1,
        "wrong_answer": 1,
    }
    assert audit["groups_skipped"] == {"no_answer": 1, "truncated": 1}
    assert result.stats["skipped/no_answer"] == 1 and result.stats["candidates/template_echo"] == 1


def test_audit_without_gold_or_pairs():
    result = RuleSelector().select([make_group("open", ["Hi.", "Hello there."])])
    assert result.audit["pairs_with_gold"] == 0
    assert (
        result.audit["chosen"]["states_answer"] is None
        and result.audit["chosen"]["states_gold_share"] is None
    )
    assert result.audit["chosen"]["finished_share"] == 1.0
    empty = RuleSelector().select([])
    assert empty.audit["pairs"] == 0 and empty.audit["chosen"]["finished_share"] is None
    assert empty.audit_summary() == "audit: no pairs"


def test_select_writes_the_audit(tmp_path, capsys):
    from aries_lit.generators.store import write_manifest
    from aries_lit.pipeline.collect import select

    custom = "Improve the DRAFT below.\n{question}\nDRAFT ANSWER:\n{example_response}\nBETTER DRAFT:"
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"id": "a", "prompt": ARITH_PROMPT, "answer": "4"},
        {"id": "b", "prompt": "What is 3 + 4?", "answer": "7"},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    texts = {
        "a": [TWO_PARAGRAPHS, ECHO_4, GOOD_4],
        "b": ["3 + 4 = 8", "BETTER DRAFT: 3 + 4 = 7", "3 + 4 = 7"],
    }
    cands = tmp_path / "cands"
    cands.mkdir()
    with (cands / "candidates.jsonl").open("w") as f:
        for pid, group in texts.items():
            for i, text in enumerate(group):
                finish = "length" if text == ECHO_4 else "stop"
                f.write(json.dumps({"id": pid, "index": i, "text": text, "finish_reason": finish}) + "\n")
    write_manifest(cands, {"num_candidates": 3, "settings": {"template": custom}})
    spec = {"class_path": "file", "path": str(prompts), "answer_field": "answer"}
    select(
        str(cands), spec, {"class_path": "verifier", "skip_truncated": False, "prefer_latest_correct": False}
    )
    pairs = [json.loads(x) for x in (cands / "pairs.jsonl").read_text().splitlines()]
    # b: "BETTER DRAFT: ..." echoes the manifest's template, so the plain "3 + 4 = 7" is chosen.
    assert [(p["id"], p["chosen"], p["rejected"]) for p in pairs] == [
        ("a", GOOD_4, TWO_PARAGRAPHS),
        ("b", "3 + 4 = 7", "3 + 4 = 8"),
    ]
    stats = json.loads((cands / "selection_stats.json").read_text())
    assert stats["groups"] == 2 and stats["pairs"] == 2  # the existing keys stay
    assert stats["candidates/truncated"] == 1 and stats["candidates/template_echo"] == 1
    assert "require_stated_answer=True" in stats["selector"]
    audit = stats["audit"]
    assert audit["chosen"]["finished_share"] == 1.0 and audit["chosen"]["states_gold_share"] == 1.0
    assert audit["rejected"]["states_answer"] == 1  # "3 + 4 = 8"; the "2 paragraphs" states none
    assert audit["candidate_rejections"] == {
        "truncated": 1,
        "template_echo": 1,
        "no_stated_answer": 1,
        "wrong_answer": 1,
    }
    assert "audit: chosen: finished 2/2" in capsys.readouterr().out


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
    sel = SELECTORS.build(
        {"class_path": "llm_judge", "model": "my/policy", "backend": {"class_path": "vllm", "seed": 3}}
    )
    (pair,) = sel.select([make_group("g", ["a", "b"])]).pairs
    assert pair["chosen"] == "b"
    assert built[0] == {"class_path": "vllm", "seed": 3, "model": "my/policy"}
    assert built[1].closed is True
    LLMJudgeSelector(model="m2").select([make_group("g", ["a", "b"])])
    assert built[2] == {"class_path": "transformers", "model": "m2"}


def test_judge_with_the_transformers_backend(tiny_model_dir):
    """End to end through the real backend registry (a random tiny model grades nonsense)."""
    sel = SELECTORS.build(
        {
            "class_path": "llm_judge",
            "model": str(tiny_model_dir),
            "backend": {"class_path": "transformers", "dtype": "float32"},
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
            {"groups": 4, "pairs": 3, "skipped/tie": 1, "candidates/truncated": 1, "candidates/scored": 11,
             "scoring/forward": 10, "scoring/cache_hits": 1}  # g3's two texts are one conversation
        )  # fmt: skip
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
