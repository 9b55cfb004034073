"""Answer extraction and comparison (aries_lit.answers.extraction), on hand-written solutions."""

from __future__ import annotations

import sys
from fractions import Fraction

import pytest
from helpers import read_json_gz

from aries_lit.answers.checking import CHECKERS, is_correct
from aries_lit.answers.extraction import (
    STATED_FORMS,
    answers_match,
    extract_answer,
    extract_boxed,
    extract_last_number,
    find_answer,
    gold_answer,
    normalize_number,
    parse_number,
    stated_answer,
)
from aries_lit.selectors.verifier import VerifierSelector

EXTRACTION_CASES = [
    # GSM8K marker
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"),
    ("#### 1,234", "1234"),
    ("The total is 5 + 7 = 12.\n#### $1,234.00", "1234"),
    ("So 3 + 5 = 8.\n#### 8\n\nQuestion: John has 9 cats and 2 dogs. #### 11", "8"),
    ("#### -15", "-15"),
    ("####42", "42"),
    # boxed
    (r"\boxed{42}", "42"),
    (r"So the answer is $\boxed{\frac{3}{4}}$.", "0.75"),
    (r"\boxed{\dfrac{1}{3}}", "1/3"),
    (r"First \boxed{3}, then corrected: \boxed{5}", "5"),
    (r"\boxed{1{,}000}", "1000"),
    (r"\boxed{50\%}", "50"),
    (r"\boxed{\$18.50}", "18.5"),
    (r"\boxed{\text{12 cm}}", "12"),
    (r"\boxed{x = -2}", "-2"),
    (r"\boxed{B}", "B"),
    (r"The answer is 7, i.e. \boxed{8}", "8"),
    # "the answer is" / "answer:"
    ("The answer is 42", "42"),
    ("The answer is 42 apples. Then she bought 3 more for a friend.", "42"),
    ("answer: -3", "-3"),
    ("Answer: $1,234.00.", "1234"),
    ("Final Answer: The final answer is $42$. I hope it is correct.", "42"),
    ("I first thought the answer is 12, but rechecking, the answer is 14.", "14"),
    ("The answer is: 10/2", "5"),
    ("The answer is below.\nShe pays 3 * 6 = 18", "18"),
    ("The answer is Paris.", "Paris"),
    ("The answer is 7 - 3 = 4.", "4"),  # the result of the expression, not its first operand
    ("The final answer is: 12 / 4 = 3", "3"),
    # last number, units, formats
    ("She has 3 apples and buys 5 more, so 3 + 5 = 8 apples", "8"),
    ("So she earned 1234.", "1234"),
    ("The cost is $1,234.00", "1234"),
    ("It grew by 42%", "42"),
    ("He paid $42", "42"),
    ("Each share is 3/4 of a pizza", "0.75"),
    ("The price is 2.50 dollars", "2.5"),
    ("The temperature dropped to -3.5 degrees", "-3.5"),
    ("The temperature is \u22124 degrees", "-4"),
    ("Total: 12 + 6 = 18", "18"),
    ("It is on pages 3-5", "5"),
    ("10 - 4 = 6", "6"),
    ("It costs .5 dollars", "0.5"),
    ("We count 1, 2, 3", "3"),
    ("The population is 1,250,000 people.", "1250000"),
    # nothing
    ("I don't know.", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), EXTRACTION_CASES)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extraction_table_is_large():
    assert len(EXTRACTION_CASES) >= 35


def test_extract_answer_none_input():
    assert extract_answer(None) is None


@pytest.mark.parametrize(("text", "expected"), EXTRACTION_CASES)
def test_find_answer_is_the_extract_answer_cascade(text, expected):
    found = find_answer(text)
    assert found.value == expected
    assert (found.form is None) == (expected is None)


# Demo run of issue 11 (SmolLM2-135M on "What is 4 - 0? Give the final answer as a number."):
# the verifier took this rejected answer's last number (2) as its answer.
TWO_PARAGRAPHS = "4 - 0 is 4. The response consists of 2 paragraphs"

STATED_CASES = [
    # (text, the stated answer or None, the form find_answer reports)
    ("4 - 0 = 4. The final answer is 4.", "4", "answer_phrase"),
    ("**Answer:** 12", "12", "answer_phrase"),
    ("Answer: $12", "12", "answer_phrase"),
    ("The answer is therefore 12.", "12", "answer_phrase"),
    ("The answer is 7 - 3 = 4.", "4", "answer_phrase"),
    ("12", "12", "bare"),
    (" 12.\n", "12", "bare"),
    ("**12**", "12", "bare"),
    ("12 apples", "12", "bare"),
    ("Janet sells 16 - 3 - 4 = 9 eggs, so she makes 9 * 2 = $18.\n#### 18", "18", "gsm8k"),
    ("She has 5 + 7 = 12 apples.\n#### 12", "12", "gsm8k"),
    (r"Adding them gives $\boxed{12}$.", "12", "boxed"),
    ("4 - 0 = 4", "4", "conclusion"),
    ("4 minus 0 equals 4.", "4", "conclusion"),
    ("When you subtract 0 from 4, you get 4.", "4", "conclusion"),
    ("The result of 4 - 0 is 4, because subtracting zero changes nothing.", "4", "conclusion"),
    ("Sure! 4 - 0 = **4**. I hope this helps!", "4", "conclusion"),
    ("The answer is Paris.", "Paris", "answer_phrase"),
    # a last number that is not a stated answer
    (TWO_PARAGRAPHS, None, "last_number"),
    (
        "4 - 0 is 4. This answer is short and clear, and it consists of 2 paragraphs.",
        None,
        "answer_phrase_loose",
    ),
    ("The answer is not 5, it is 6.", None, "answer_phrase_loose"),
    ("She has 12 apples and 5 pears", None, "last_number"),
    ("Step 1: 4 - 0 = 4\nStep 2: check the result", None, "last_number"),
    (
        "4 - 0 = 4.\n\n" + "Subtraction is one of the four basic operations of arithmetic. " * 4,
        None,
        "last_number",
    ),
    ("I don't know.", None, None),
]


@pytest.mark.parametrize(("text", "stated", "form"), STATED_CASES)
def test_stated_answer(text, stated, form):
    found = find_answer(text)
    assert found.form == form
    assert found.stated is (stated is not None)
    assert stated_answer(text) == stated
    if stated is not None:  # a stated answer is what extract_answer finds too
        assert extract_answer(text) == stated


def test_two_paragraphs_is_not_a_stated_answer_of_2():
    assert extract_answer(TWO_PARAGRAPHS) == "2"  # the loose cascade still reads the last number
    assert stated_answer(TWO_PARAGRAPHS) is None
    assert not answers_match(stated_answer(TWO_PARAGRAPHS), "2")
    assert {"gsm8k", "boxed", "answer_phrase", "bare", "conclusion"} == STATED_FORMS


def test_gold_answer():
    assert gold_answer("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72") == "72"
    assert gold_answer(" 4 ") == "4"
    assert gold_answer(12) == "12"
    assert gold_answer(None) is None and gold_answer("  ") is None


def test_gold_answer_reads_a_gsm8k_solution_like_the_gsm8k_prompt_source():
    """The gold of a raw solution is the ``gsm8k`` source's (after the last ``####``), normalized."""
    from aries_lit.prompts.sources import gsm8k_gold

    for solution in ("So 1,234 in all\n#### 1,234", "#### $1,234.00", "#### 3/4", "a\n#### 5\nb\n#### 7"):
        assert gold_answer(solution) == normalize_number(gsm8k_gold(solution)), solution
    assert gold_answer("a\n#### 5\nb\n#### 7") == "7"
    assert gold_answer("#### 72 apples, then 3 more") == "72"  # not a number after '####': extracted
    assert gold_answer("x = 4\n####") == "4"  # nothing after '####': the last number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$1,234.00", "1234"),
        ("1234.", "1234"),
        ("42 apples", "42"),
        ("42%", "42"),
        ("3/4", "0.75"),
        ("2/6", "1/3"),
        ("2.50", "2.5"),
        ("-0.5", "-0.5"),
        (r"\frac{1}{2}", "0.5"),
        (r"\$5", "5"),
        ("007", "7"),
        (3, "3"),
        (2.5, "2.5"),
        ("x = 5", None),
        ("5 + 3", None),
        ("abc", None),
        ("1/0", None),
        (None, None),
    ],
)
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


def test_parse_number_is_exact():
    assert parse_number("1/3") == Fraction(1, 3)
    assert parse_number("0.1") == Fraction(1, 10)
    assert parse_number(0.1) == Fraction(1, 10)
    assert parse_number(True) is None


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("0.75", "3/4", True),
        ("2.50", "2.5", True),
        ("$1,234.00", "1234", True),
        ("18", "18.0000001", True),  # within tolerance
        ("18", "18.01", False),
        ("-3", "3", False),
        ("42%", "42", True),
        ("1/3", "0.333333", True),  # within abs_tol 1e-6
        ("1/3", "0.3333", False),
        ("B", "b", True),
        ("Paris.", "paris", True),
        ("5", "five", False),
        (None, "1", False),
        ("1", None, False),
        (12, "12", True),
    ],
)
def test_answers_match(pred, gold, expected):
    assert answers_match(pred, gold) is expected


def test_answers_match_tolerance_is_configurable():
    assert answers_match("1/3", "0.3333", rel_tol=1e-3)
    assert not answers_match("18", "18.0000001", rel_tol=0, abs_tol=0)


def test_helpers():
    assert extract_boxed(r"a \boxed{\frac{1}{2}} b") == r"\frac{1}{2}"
    assert extract_boxed("no box") is None
    assert extract_boxed(r"\boxed{unclosed") is None
    assert extract_last_number("3 then 4.5 then $6") == "6"
    assert extract_last_number("none") is None


def test_real_gsm8k_gold_answers(data_dir):
    """Every gold answer of the GSM8K test split extracts to itself, via both routes."""
    rows = read_json_gz(data_dir / "gsm8k" / "test.jsonl.gz")
    assert len(rows) > 1000
    for row in rows:
        gold = normalize_number(row["answer"].rsplit("####", 1)[1].strip().replace(",", ""))
        assert gold is not None and normalize_number(gold) == gold, row["answer"]
        assert extract_answer(row["answer"]) == gold, row["answer"]
        assert gold_answer(row["answer"]) == gold, row["answer"]


# --- checkers: builtin and math_verify (is_correct) ------------------------------------------

# A real SmolLM2-135M-Instruct answer (arith-2x19, base model, turns 1-3): math-verify reads the
# first number after "answer" (the question's 6), the builtin cascade the concluding "is 11".
QUOTED_QUESTION = 'The answer to the question "What is 6 + 5?" is 11.'


@pytest.mark.parametrize(
    "text, gold, expected",
    [
        ("She pays 3 * $4 = $12.\n#### 12", "12", True),
        ("#### 12", "12", True),
        ("#### 13", "12", False),
        ("\\boxed{1/2}", "0.5", True),
        ("So the answer is $\\boxed{\\frac{1}{2}}$.", "0.5", True),
        ("So the answer is $\\boxed{\\frac{1}{3}}$.", "0.5", False),
        ("The answer is 7.", "7", True),
        ("12", "12", True),
        ("The total is 1,234 apples.\n#### 1,234", gold_answer("... #### 1234"), True),
        (None, "12", False),
        ("#### 12", None, False),
    ],
)
@pytest.mark.parametrize("checker", CHECKERS)
def test_checkers_agree_on_clear_cases(text, gold, expected, checker):
    assert is_correct(text, gold, checker=checker) is expected


def test_checkers_differ_where_the_real_outputs_did():
    assert is_correct(QUOTED_QUESTION, "11", "builtin")
    assert not is_correct(QUOTED_QUESTION, "11", "math_verify")
    # math-verify evaluates the expression after "final answer ... is": 19 is wrong, 19 + 19 is the gold.
    assert is_correct("19 is the final answer to the equation 19 + 19.", "38", "math_verify")
    assert not is_correct("19 is the final answer to the equation 19 + 19.", "38", "builtin")


def test_builtin_checker_is_the_old_grading_and_takes_an_extractor():
    for text in ("So 3 + 4 = 7.", "#### 18\n\nQuestion: Tom has 5 apples.", "no number", QUOTED_QUESTION):
        for gold in ("7", "18", "11"):
            assert is_correct(text, gold) is answers_match(extract_answer(text), gold)
    assert is_correct("#### 18 and then 3", "3", extract=extract_last_number)
    assert not is_correct("#### 18 and then 3", "3")


def test_unknown_checker_is_refused():
    with pytest.raises(ValueError, match="unknown answer checker 'sympy'; allowed: builtin, math_verify"):
        is_correct("#### 12", "12", checker="sympy")
    with pytest.raises(ValueError, match="allowed: builtin, math_verify"):
        VerifierSelector(checker="mathverify")
    from aries_lit.evaluation.evaluate import evaluate_checkpoints

    with pytest.raises(ValueError, match="allowed: builtin, math_verify"):
        evaluate_checkpoints(["no/such/model"], tasks=["arithmetic"], checker="exact", out_dir="unused")


def test_math_verify_missing_names_the_option_and_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "math_verify", None)  # import math_verify -> ImportError
    with pytest.raises(ImportError, match="checker 'math_verify'.*pip install math-verify"):
        is_correct("#### 12", "12", "math_verify")
    assert is_correct("#### 12", "12", "builtin")  # the default never imports it


def _group(gid, texts, answer):
    return {
        "id": gid,
        "prompt": f"Question {gid}?",
        "answer": answer,
        "candidates": [
            {"index": i, "text": t, "finish_reason": "stop", "completion_tokens": len(t.split())}
            for i, t in enumerate(texts)
        ],
    }


def test_verifier_selector_with_math_verify_builds_pairs():
    groups = [
        _group("half", ["The answer is 3.", "So the answer is $\\boxed{\\frac{1}{2}}$."], "0.5"),
        _group("gsm8k", ["I think 70\n#### 70", "48 + 24 = 72\n#### 72"], "48/2 = <<48/2=24>>24\n#### 72"),
        _group("quoted", ["The answer is 12.", QUOTED_QUESTION], "11"),
        _group("none", ["The answer is 1.", "The answer is 2."], "5"),
    ]
    selector = VerifierSelector(checker="math_verify")
    assert selector.checker == "math_verify" and "checker='math_verify'" in repr(selector)
    result = selector.select(groups)
    assert [(p["id"], p["chosen_index"], p["rejected_index"]) for p in result.pairs] == [
        ("half", 1, 0),
        ("gsm8k", 1, 0),
    ]
    assert result.stats["skipped/none_correct"] == 2  # "quoted": math-verify reads the question's 6
    # The builtin default grades the quoted answer correct, so it makes a pair there too.
    builtin = VerifierSelector().select(groups)
    assert [p["id"] for p in builtin.pairs] == ["half", "gsm8k", "quoted"]
    assert VerifierSelector().checker == "builtin"


def test_evaluation_records_use_the_checker():
    from aries_lit.evaluation.metrics import build_records

    groups = [_group("q", ["The answer is 12.", QUOTED_QUESTION], "11")]
    builtin = build_records(groups, "verifiable")
    assert [t["correct"] for t in builtin[0]["turns"]] == [False, True]
    mv = build_records(groups, "verifiable", "math_verify")
    assert [t["correct"] for t in mv[0]["turns"]] == [False, False]
    assert [t["extracted"] for t in mv[0]["turns"]] == ["12", "11"]


def test_reference_selector_passes_the_checker_on():
    from aries_lit.selectors.reference import ReferenceSelector

    group = _group("q", ["The answer to 3 + 9 is 27.", "The answer is 13."], "12")
    group["solution"] = "3 + 9 = 12"
    builtin = ReferenceSelector().select([group])
    assert [(p["chosen_index"], p["rejected_index"]) for p in builtin.pairs] == [(2, 0)]
    # Real offline-stage answer: math-verify evaluates "3 + 9" after "answer" and calls "27" correct.
    selector = ReferenceSelector(checker="math_verify")
    assert "checker='math_verify'" in repr(selector)
    assert [(p["chosen_index"], p["rejected_index"]) for p in selector.select([group]).pairs] == [(2, 1)]
