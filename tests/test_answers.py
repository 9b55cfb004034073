"""Answer extraction and comparison (aries_lit.selectors.answers), on hand-written solutions."""

from __future__ import annotations

from fractions import Fraction

import pytest
from helpers import read_json_gz

from aries_lit.selectors.answers import (
    answers_match,
    extract_answer,
    extract_boxed,
    extract_last_number,
    gold_from_gsm8k,
    normalize_number,
    parse_number,
)

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


def test_gold_from_gsm8k():
    assert gold_from_gsm8k("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72") == "72"
    assert gold_from_gsm8k("blah\n#### 1,072") == "1072"
    assert gold_from_gsm8k("#### -5") == "-5"
    with pytest.raises(ValueError, match="####"):
        gold_from_gsm8k("no marker here")


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
        gold = gold_from_gsm8k(row["answer"])
        assert normalize_number(gold) == gold, row["answer"]
        assert extract_answer(row["answer"]) == gold, row["answer"]
