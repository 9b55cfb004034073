"""Verifiable instructions of IFEval (Zhou et al. 2023, arXiv 2311.07911), checked by the checkers
of the ``if-verifiable`` package (Google's IFEval code, Apache-2.0).

::

    from aries_lit.instructions import Instruction, follows, describe, parse_instructions

    [inst] = parse_instructions(["punctuation:no_comma"], [{}], path="x.jsonl", record=1)
    follows(inst, prompt, "no commas here")            # IFEval strict
    follows(inst, prompt, "**a, b**", loose=True)      # IFEval loose (8 response variants)
    describe(inst)                                     # the checker's own description

Layer ``models, records``: imports only neutral modules; ``if_verifiable`` loads on first use.
"""

from aries_lit.instructions.checkers import (
    INSTRUCTION_IDS,
    Instruction,
    describe,
    follows,
    follows_all,
    loose_variants,
    offline_tokenizers,
    parse_instructions,
    random_instruction,
)

__all__ = [
    "INSTRUCTION_IDS",
    "Instruction",
    "describe",
    "follows",
    "follows_all",
    "loose_variants",
    "offline_tokenizers",
    "parse_instructions",
    "random_instruction",
]
