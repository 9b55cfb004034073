"""aries_lit.instructions: IFEval's checkers offline (the punkt substitute), strict vs loose, bad
instructions in one line, descriptions, deterministic random instructions."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("if_verifiable", reason="IFEval's checkers come from the if-verifiable package")

from aries_lit.core.errors import DataValidationError  # noqa: E402
from aries_lit.instructions import (  # noqa: E402
    INSTRUCTION_IDS,
    Instruction,
    describe,
    follows,
    loose_variants,
    offline_tokenizers,
    parse_instructions,
    random_instruction,
)


def one(instruction_id: str, **kwargs) -> Instruction:
    return parse_instructions([instruction_id], [kwargs], path="t.jsonl", record=1)[0]


def test_ids_are_the_registry():
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT

    assert INSTRUCTION_IDS == tuple(INSTRUCTION_DICT)


def test_sentence_count_works_offline_with_the_untrained_punkt():
    import nltk
    from if_verifiable.ifeval import instructions_util

    at_most_2 = one("length_constraints:number_sentences", num_sentences=3, relation="less than")
    assert follows(at_most_2, "", "One sentence here. And a second one!")
    assert not follows(at_most_2, "", "One. Two? Three! Four.")
    # the substitute has no abbreviation list: "Dr." ends a sentence (trained punkt would not split it)
    assert not follows(at_most_2, "", "Dr. Smith came. He left.")
    # the patch is undone: the checkers' module holds nltk itself again
    assert instructions_util.nltk is nltk
    try:
        nltk.data.find("tokenizers/punkt")
    except LookupError:  # no punkt data here: outside the context the original code cannot run
        with pytest.raises(LookupError):
            instructions_util._get_sentence_tokenizer.__wrapped__()


def test_capital_word_frequency_works_offline():
    two_caps = one("change_case:capital_word_frequency", capital_frequency=2, capital_relation="at least")
    assert follows(two_caps, "", "THIS is VERY important. Really.")
    assert not follows(two_caps, "", "Only ONE capital word.")
    with offline_tokenizers():
        from if_verifiable.ifeval import instructions_util

        words = instructions_util.nltk.word_tokenize("Don't stop. Go on!")
    assert words == ["Do", "n't", "stop", ".", "Go", "on", "!"]


def test_empty_response_follows_nothing():
    rng = random.Random(0)
    for instruction_id in INSTRUCTION_IDS:
        inst = random_instruction(instruction_id, rng, prompt="Repeat me.")
        for response in ("", "  \n "):
            assert not follows(inst, "Repeat me.", response), instruction_id
            assert not follows(inst, "Repeat me.", response, loose=True), instruction_id
    # no_comma would pass on "" if only the checker were asked
    assert not follows(one("punctuation:no_comma"), "", "")


def test_strict_vs_loose():
    lowercase = one("change_case:english_lowercase")
    response = "Sure! Here it is:\nall lowercase text here"
    assert not follows(lowercase, "", response)
    assert follows(lowercase, "", response, loose=True)  # without the first line
    quoted = one("startend:quotation")
    assert not follows(quoted, "", '**"wrapped"**')
    assert follows(quoted, "", '**"wrapped"**', loose=True)  # asterisks removed
    assert len(loose_variants("a\nb\nc")) == 8
    assert loose_variants("a\n*b*\nc")[1:5] == ["a\nb\nc", "*b*\nc", "a\n*b*", "*b*"]


def test_bad_instructions_name_file_record_and_field():
    with pytest.raises(DataValidationError, match=r"^p\.jsonl, record 4, field 'instruction_id_list\[1\]'"):
        parse_instructions(
            ["punctuation:no_comma", "punctuation:no_commas"], [{}, {}], path="p.jsonl", record=4
        )
    with pytest.raises(DataValidationError, match=r"did you mean 'punctuation:no_comma'"):
        parse_instructions(["punctuation:no_commas"], [{}], path="p.jsonl", record=4)
    with pytest.raises(
        DataValidationError, match=r"field 'kwargs\[0\]': 'keywords:existence' takes no argument 'words'"
    ):
        parse_instructions(["keywords:existence"], [{"words": ["a"]}], path="p.jsonl", record=4)
    with pytest.raises(DataValidationError, match=r"field 'kwargs': 2 kwargs for 1 instruction ids"):
        parse_instructions(["punctuation:no_comma"], [{}, {}], path="p.jsonl", record=4)
    with pytest.raises(DataValidationError, match=r"field 'kwargs\[0\]': .* refuses its arguments"):
        parse_instructions(["length_constraints:number_words"], [{"num_words": 5, "relation": "about"}],
                           path="p.jsonl", record=4)  # fmt: skip
    with pytest.raises(DataValidationError, match="non-empty list"):
        parse_instructions([], [], path="p.jsonl", record=4)
    # the hub's form: every argument name present, unused ones None
    [inst] = parse_instructions(["punctuation:no_comma"], [{"num_words": None}], path="p.jsonl", record=4)
    assert inst.kwargs == {}


def test_describe_is_the_checkers_text():
    assert (
        describe(one("punctuation:no_comma"))
        == "In your entire response, refrain from the use of any commas."
    )
    words = one("length_constraints:number_words", num_words=50, relation="less than")
    assert describe(words) == "Answer with less than 50 words."


def test_random_instruction_is_deterministic_and_leaves_random_alone():
    random.seed(123)
    expected = random.random()
    random.seed(123)
    drawn = [random_instruction(i, random.Random(7), prompt="Say hi.") for i in INSTRUCTION_IDS]
    follows(drawn[0], "", "some text")
    assert random.random() == expected  # the module-level stream did not move
    again = [random_instruction(i, random.Random(7), prompt="Say hi.") for i in INSTRUCTION_IDS]
    assert drawn == again
    for inst in drawn:  # what is drawn is what parse accepts
        parse_instructions([inst.id], [dict(inst.kwargs)], path="x", record=1)
    draws = {str(random_instruction("keywords:frequency", random.Random(seed)).kwargs) for seed in range(10)}
    assert len(draws) > 1  # the seed matters
    with pytest.raises(ValueError, match="pass prompt="):
        random_instruction("combination:repeat_prompt", random.Random(0))
    with pytest.raises(ValueError, match="unknown instruction id"):
        random_instruction("nope", random.Random(0))
