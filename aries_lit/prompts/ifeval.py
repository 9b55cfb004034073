"""IFEval (Zhou et al. 2023, arXiv 2311.07911): 541 prompts with verifiable instructions.

The prompts ship in the package (``aries_lit:ifeval/input_data.jsonl.gz``, Apache-2.0, see
:mod:`aries_lit.assets`), in IFEval's own layout, one per line: ``{"key", "prompt",
"instruction_id_list", "kwargs"}`` (``kwargs``: one dict of checker arguments per instruction).
Every record's instructions are checked with :func:`aries_lit.instructions.parse_instructions`
when the source loads, so an unknown instruction id or arguments its checker does not take stop
the run before anything is generated, in one line naming the file, record and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aries_lit.instructions import parse_instructions
from aries_lit.prompts.sources import (
    PROMPT_SOURCES,
    DataValidationError,
    PromptSource,
    _prompt_value,
    check_unique_ids,
    read_numbered,
    window,
)

__all__ = ["IFEVAL_PATH", "IFEval"]

IFEVAL_PATH = "aries_lit:ifeval/input_data.jsonl.gz"


@PROMPT_SOURCES.register("ifeval")
@dataclass
class IFEval(PromptSource):
    """IFEval's prompts: ``prompt``, ``key``, ``instruction_id_list`` and ``kwargs`` (``None``
    values dropped, as the hub's copy fills unused argument names with ``None``). Ids:
    ``ifeval-<key>``. ``path`` reads another file of the same layout (e.g. the hub's
    ``google/IFEval`` saved as JSON Lines)."""

    path: str = IFEVAL_PATH
    limit: int | None = None
    offset: int = 0

    def load(self) -> list[dict[str, Any]]:
        src, _, records = read_numbered(self.path)
        items = []
        for number, record in records:
            key = record.get("key")
            if isinstance(key, bool) or not isinstance(key, (int, str)) or key == "":
                raise DataValidationError(
                    src, number, "key", "expected an integer or string key", reason="missing_field"
                )
            prompt = _prompt_value(src, number, "prompt", record.get("prompt"))
            if not isinstance(prompt, str):
                raise DataValidationError(src, number, "prompt", "expected a string", reason="wrong_type")
            instructions = parse_instructions(
                record.get("instruction_id_list"), record.get("kwargs"), path=src, record=number
            )
            items.append(
                {
                    "id": f"ifeval-{key}",
                    "prompt": prompt,
                    "key": key,
                    "instruction_id_list": [inst.id for inst in instructions],
                    "kwargs": [dict(inst.kwargs) for inst in instructions],
                }
            )
        check_unique_ids(items, src)
        return window(items, self.offset, self.limit)
