"""How far the punkt substitute can move IFEval scores, measured on real answers.

Two IFEval checker types (``length_constraints:number_sentences``,
``change_case:capital_word_frequency``) tokenize with nltk's punkt data, which no package registry
serves; aries_lit substitutes nltk's untrained Punkt splitter (``aries_lit.instructions``). This
script scores the answers of an ``ifeval`` response folder twice, with that substitute and with a
plain regular-expression splitter (a sentence ends at ``.``, ``!`` or ``?`` followed by space), and
prints how many verdicts of those two types differ and how much each accuracy moves.

    python scripts/ifeval_punkt_sensitivity.py docs/ifeval/smollm2/smollm2-135m-instruct/ifeval/ifeval
"""

from __future__ import annotations

import argparse
import json
import re
from contextlib import contextmanager
from pathlib import Path

AFFECTED = ("length_constraints:number_sentences", "change_case:capital_word_frequency")


class _RegexSentences:
    def tokenize(self, text: str) -> list[str]:
        return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


@contextmanager
def regex_sentences():
    """Inside: the checkers split sentences at ``[.!?]`` + space instead of the untrained Punkt."""
    from aries_lit.instructions import checkers, offline_tokenizers

    util = checkers._util_module()
    with offline_tokenizers():
        saved_get, saved_proxy = util._get_sentence_tokenizer, util.nltk._sentences
        util._get_sentence_tokenizer = lambda: _RegexSentences()
        util.nltk._sentences = _RegexSentences()
        try:
            yield
        finally:
            util._get_sentence_tokenizer, util.nltk._sentences = saved_get, saved_proxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an <eval>/<checkpoint>/<task>/ifeval folder")
    args = parser.parse_args()
    from aries_lit.instructions import Instruction, follows

    inputs = [json.loads(x) for x in (args.folder / "input_data.jsonl").read_text().splitlines()]
    for turn_file in sorted(args.folder.glob("turn-*.jsonl")):
        answers = [json.loads(x)["response"] for x in turn_file.read_text().splitlines()]
        changed = total = 0
        for record, answer in zip(inputs, answers):
            for inst_id, kwargs in zip(record["instruction_id_list"], record["kwargs"]):
                if inst_id not in AFFECTED:
                    continue
                inst = Instruction(inst_id, {k: v for k, v in kwargs.items() if v is not None})
                punkt = follows(inst, record["prompt"], answer)
                with regex_sentences():
                    regex = _follows_raw(inst, record["prompt"], answer)
                total += 1
                changed += punkt != regex
        n_inst = sum(len(r["instruction_id_list"]) for r in inputs)
        print(f"{turn_file.name}: {changed} of {total} affected verdicts differ "
              f"(at most {100 * changed / n_inst:.2f} points of instruction-level accuracy, "
              f"{100 * changed / len(inputs):.2f} of prompt-level)")


def _follows_raw(inst, prompt: str, answer: str) -> bool:
    """:func:`follows` without re-entering the offline substitute (already patched by the caller)."""
    from aries_lit.instructions import checkers

    if not answer.strip():
        return False
    checker, _ = checkers._build(inst, prompt)
    return bool(checker.check_following(answer))


if __name__ == "__main__":
    main()
