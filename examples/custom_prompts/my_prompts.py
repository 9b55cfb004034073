"""A user-defined prompt source, in the user's own module (no edit of aries_lit).

``csv`` reads prompts (and gold answers, for the verifier) from a CSV file with a header row::

    ARIES_LIT_PLUGINS=my_prompts PYTHONPATH=examples/custom_prompts aries-lit generate \\
        --model runs/tiny-llama \\
        --prompts '{class_path: csv, init_args: {path: examples/custom_prompts/questions.csv}}'
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aries_lit.core.errors import DataValidationError
from aries_lit.prompts.base import PROMPT_SOURCES, PromptSource
from aries_lit.prompts.sources import check_unique_ids


@PROMPT_SOURCES.register("csv")
@dataclass
class CSVPrompts(PromptSource):
    """One prompt per CSV row: ``prompt_column`` is the prompt, ``answer_column`` (``None``: no
    gold) the gold answer, ``id_column`` the id (rows without one get ``{file stem}-{row index}``).
    Other columns are kept. A missing or empty value, or a repeated id, raises an error naming the
    file, row and column.
    """

    path: str
    prompt_column: str = "question"
    answer_column: str | None = "answer"
    id_column: str = "id"
    limit: int | None = None

    def load(self) -> list[dict[str, Any]]:
        path = Path(self.path)
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        items = []
        # record numbers count the header as line 1, so they are the file's line numbers
        for number, row in enumerate(rows[: self.limit], start=2):
            item: dict[str, Any] = {
                k: v for k, v in row.items() if k not in (self.prompt_column, self.id_column)
            }
            item["id"] = row.get(self.id_column) or f"{path.stem}-{number - 2}"
            item["prompt"] = self._value(row, number, self.prompt_column)
            if self.answer_column is not None:
                item["answer"] = self._value(row, number, self.answer_column)
            items.append(item)
        check_unique_ids(items, self.path)
        return items

    def _value(self, row: dict[str, Any], number: int, column: str) -> str:
        value = (row.get(column) or "").strip()
        if not value:
            raise DataValidationError(self.path, number, column, "missing or empty", reason="missing_field")
        return value
