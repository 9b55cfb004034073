"""Prompt sets for generation and evaluation, behind the ``prompt_sources`` registry.

A :class:`PromptSource` returns plain dicts ``{"id": str, "prompt": str | list[message],
"answer": str (verifiable tasks), ...extra fields}``. Configs name one by its short name::

    prompts: {class_path: gsm8k, init_args: {split: test, limit: 150}}
    prompts: {class_path: file, init_args: {path: my_prompts.jsonl, prompt_field: question,
                                            answer_field: gold}}
    prompts: {class_path: my_pkg.MyPrompts, init_args: {...}}

Registered: ``file``, ``gsm8k``, ``alpaca_eval``, ``arithmetic``
(:mod:`aries_lit.prompts.arithmetic`), ``instruction_following``
(:mod:`aries_lit.prompts.instruction_following`) and ``preference_prompts``. Bad input raises
:class:`~aries_lit.core.errors.DataValidationError` naming the file, record and field.
Default paths name the data sets shipped in the package (``aries_lit:gsm8k/test.jsonl.gz``, see
:mod:`aries_lit.assets`), so they resolve from any directory; other relative paths resolve against
the current directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aries_lit.assets import PREFIX, resolve_data_path
from aries_lit.core.chat import CHAT_ROLES
from aries_lit.core.errors import DataValidationError
from aries_lit.core.part_spec import PartSpec
from aries_lit.prompts import arithmetic as _arithmetic  # noqa: F401 - registers ``arithmetic``
from aries_lit.prompts import instruction_following as _if  # noqa: F401 - registers ``instruction_following``
from aries_lit.prompts.base import PROMPT_SOURCES, PromptSource
from aries_lit.records import load_preference_records, open_records


def window(items: list[dict[str, Any]], offset: int, limit: int | None) -> list[dict[str, Any]]:
    """``items[offset : offset + limit]`` (all from ``offset`` when ``limit`` is None); a negative
    ``offset`` or ``limit`` is refused. The ``offset``/``limit`` of every prompt source."""
    if offset < 0:
        raise ValueError(f"offset must be >= 0; got {offset}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0; got {limit}")
    return items[offset : None if limit is None else offset + limit]


def read_numbered(
    path: str | os.PathLike, split: str = "train"
) -> tuple[str, str, list[tuple[int, dict[str, Any]]]]:
    """``(source, stem, [(record number, record)])`` of a data file (the numbers error messages
    use); the first unreadable record raises its :class:`~aries_lit.core.errors.DataValidationError`."""
    stream = open_records(path, split=split)
    records = []
    for number, item in stream.items:
        if isinstance(item, DataValidationError):
            raise item
        records.append((number, item))
    return stream.source, stream.stem, records


def _prompt_value(src: str, number: int, field: str, value: Any) -> str | list[dict[str, Any]]:
    if value is None:
        raise DataValidationError(src, number, field, "missing field", reason="missing_field")
    if isinstance(value, str):
        if not value.strip():
            raise DataValidationError(src, number, field, "empty prompt", reason="empty_prompt")
        return value
    if isinstance(value, list) and value:
        for i, message in enumerate(value, start=1):
            if not isinstance(message, dict) or not all(
                isinstance(message.get(k), str) for k in ("role", "content")
            ):
                raise DataValidationError(
                    src, number, field, f"message {i} needs string 'role' and 'content'", reason="wrong_type"
                )
            if message["role"] not in CHAT_ROLES:
                raise DataValidationError(
                    src,
                    number,
                    field,
                    f"message {i} has unknown role '{message['role']}'; "
                    f"allowed roles: {', '.join(CHAT_ROLES)}",
                    reason="unknown_role",
                )
        return [dict(m) for m in value]
    raise DataValidationError(
        src, number, field, "expected a non-empty string or list of chat messages", reason="wrong_type"
    )


def scalar_text(src: str, number: int, field: str, value: Any) -> str:
    """``value`` (a string or a number) as text; a missing or other value raises a
    :class:`~aries_lit.core.errors.DataValidationError` naming ``src``, record ``number`` and ``field``."""
    if value is None:
        raise DataValidationError(src, number, field, "missing field", reason="missing_field")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataValidationError(
            src,
            number,
            field,
            f"expected a string or a number, got {type(value).__name__}",
            reason="wrong_type",
        )
    return str(value)


def check_unique_ids(items: list[dict[str, Any]], source: str) -> None:
    seen: dict[str, int] = {}
    for number, item in enumerate(items, start=1):
        if item["id"] in seen:
            raise DataValidationError(
                source,
                number,
                "id",
                f"duplicate id '{item['id']}' (first at item {seen[item['id']]})",
                reason="duplicate_id",
            )
        seen[item["id"]] = number


@PROMPT_SOURCES.register("file")
@dataclass
class FilePrompts(PromptSource):
    """Prompts from a file (``.jsonl``, ``.json``, ``.parquet``, gzipped JSON) or a
    ``save_to_disk`` folder.

    ``prompt_field`` holds a string or chat messages; ``answer_field`` (optional) a gold answer,
    kept as a string. Ids come from ``id_field`` when records have it, else ``{stem}-{index}``
    (0-based position in the file, before ``offset``). Other fields are kept.
    """

    path: str
    prompt_field: str = "prompt"
    id_field: str = "id"
    answer_field: str | None = None
    limit: int | None = None
    offset: int = 0
    split: str = "train"

    def load(self) -> list[dict[str, Any]]:
        src, stem, records = read_numbered(self.path, self.split)
        items = []
        for index, (number, record) in enumerate(records):
            if self.prompt_field not in record:
                raise DataValidationError(
                    src, number, self.prompt_field, "missing field", reason="missing_field"
                )
            item = {k: v for k, v in record.items() if k not in (self.prompt_field, self.id_field)}
            rid = record.get(self.id_field)
            item["id"] = f"{stem}-{index}" if rid is None else scalar_text(src, number, self.id_field, rid)
            item["prompt"] = _prompt_value(src, number, self.prompt_field, record[self.prompt_field])
            if self.answer_field is not None:
                if self.answer_field not in record:
                    raise DataValidationError(
                        src, number, self.answer_field, "missing field", reason="missing_field"
                    )
                item["answer"] = scalar_text(src, number, self.answer_field, record[self.answer_field])
            items.append(item)
        check_unique_ids(items, src)
        return window(items, self.offset, self.limit)


def gsm8k_gold(solution: str) -> str:
    """The gold number of a GSM8K worked answer: the text after ``#### ``, commas removed."""
    if "####" not in solution:
        raise ValueError("no '####' final answer")
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
    if not answer:
        raise ValueError("empty final answer after '####'")
    return answer


@PROMPT_SOURCES.register("gsm8k")
@dataclass
class GSM8K(PromptSource):
    """GSM8K (Cobbe et al. 2021): ``prompt`` = the question, ``answer`` = the gold number
    (after ``#### ``, commas removed), ``solution`` = the worked answer.

    Reads ``path``, or ``{data_dir}/{split}.jsonl`` (or ``.jsonl.gz``; default the copy shipped in
    the package, ``aries_lit:gsm8k``). When that file does not exist and ``hub=True``, loads
    ``datasets.load_dataset("openai/gsm8k", "main", split=split)``. Ids: ``gsm8k-{split}-{i}``
    with ``i`` the 0-based line index.
    """

    path: str | None = None
    split: str = "test"
    data_dir: str = "aries_lit:gsm8k"
    hub: bool = False
    hub_name: str = "openai/gsm8k"
    limit: int | None = None
    offset: int = 0

    def _records(self) -> tuple[str, list[tuple[int, dict[str, Any]]]]:
        if self.path is not None:
            path = Path(resolve_data_path(self.path))
        else:
            folder = Path(resolve_data_path(self.data_dir))
            path = folder / f"{self.split}.jsonl"
            if not path.exists() and (folder / f"{self.split}.jsonl.gz").exists():
                path = folder / f"{self.split}.jsonl.gz"
        if path.exists():
            src, _, records = read_numbered(path)
            return src, records
        if not self.hub:
            raise FileNotFoundError(
                f"{path}: no such file (set hub=True to load '{self.hub_name}' from the Hugging Face hub)"
            )
        import datasets

        dataset = datasets.load_dataset(self.hub_name, "main", split=self.split)
        return self.hub_name, list(enumerate(dataset, start=1))

    def load(self) -> list[dict[str, Any]]:
        src, records = self._records()
        items = []
        for index, (number, record) in enumerate(records):
            question = _prompt_value(src, number, "question", record.get("question"))
            solution = scalar_text(src, number, "answer", record.get("answer"))
            try:
                gold = gsm8k_gold(solution)
            except ValueError as err:
                raise DataValidationError(src, number, "answer", str(err), reason="wrong_type") from err
            items.append(
                {
                    "id": f"gsm8k-{self.split}-{index}",
                    "prompt": question,
                    "answer": gold,
                    "solution": solution,
                }
            )
        return window(items, self.offset, self.limit)


@PROMPT_SOURCES.register("alpaca_eval")
@dataclass
class AlpacaEval(PromptSource):
    """AlpacaEval 2's 805 instructions with the GPT-4 Turbo (gpt4_1106_preview) reference outputs.

    ``prompt`` = ``instruction``; kept: ``reference_output``, ``reference_generator``, ``dataset``.
    Ids: ``alpaca_eval-{index}`` (0-based).
    """

    path: str = "aries_lit:alpaca_eval/gpt4_1106_preview_outputs.json.gz"
    limit: int | None = None
    offset: int = 0

    def load(self) -> list[dict[str, Any]]:
        src, _, records = read_numbered(self.path)
        items = []
        for index, (number, record) in enumerate(records):
            item = {
                "id": f"alpaca_eval-{index}",
                "prompt": _prompt_value(src, number, "instruction", record.get("instruction")),
                "dataset": record.get("dataset"),
            }
            if record.get("output") is not None:
                item["reference_output"] = scalar_text(src, number, "output", record["output"])
            if record.get("generator") is not None:
                item["reference_generator"] = record["generator"]
            items.append(item)
        return window(items, self.offset, self.limit)


@PROMPT_SOURCES.register("preference_prompts")
@dataclass
class PreferencePrompts(PromptSource):
    """The prompts of a preference file (any source :func:`load_preference_records` reads),
    deduplicated (first occurrence kept, with its record id). Chat prompts stay messages.

    ``reference: chosen`` (or ``rejected``) gives each prompt that answer of its pair as its
    ``reference_output``, which makes the prompts a pairwise evaluation task: a model's answers
    judged against the human-preferred reply, e.g. HH-RLHF harmless-base prompts judged by a
    harmlessness reward model (docs/reward_models.md)."""

    path: str
    format: str = "auto"
    split: str = "train"
    id_field: str = "id"
    on_error: str = "raise"
    limit: int | None = None
    offset: int = 0
    reference: str | None = None

    def __post_init__(self) -> None:
        if self.reference not in (None, "chosen", "rejected"):
            raise ValueError(f"reference must be 'chosen', 'rejected' or unset, got {self.reference!r}")

    def load(self) -> list[dict[str, Any]]:
        dataset = load_preference_records(
            self.path, format=self.format, split=self.split, id_field=self.id_field, on_error=self.on_error
        )
        columns = ["id", "prompt", "prompt_messages", *([self.reference] if self.reference else [])]
        items, seen = [], set()
        for row in dataset.select_columns(columns):
            key = row["prompt_messages"] or row["prompt"]
            if key in seen:
                continue
            seen.add(key)
            prompt = json.loads(row["prompt_messages"]) if row["prompt_messages"] else row["prompt"]
            item = {"id": row["id"], "prompt": prompt}
            if self.reference:
                item["reference_output"] = row[self.reference]
            items.append(item)
        return window(items, self.offset, self.limit)


def build_prompt_source(
    spec: str | Mapping[str, Any] | PartSpec | PromptSource, **overrides: Any
) -> PromptSource:
    """A source from a registry name, ``{"class_path": ..., "init_args": {...}}``, a :class:`PartSpec`,
    an instance, or a path to an existing file or folder (read with ``file``)."""
    if isinstance(spec, PartSpec) and spec.bare:  # a name or a path, as the config wrote it
        spec = spec.class_path
    if (
        isinstance(spec, (str, os.PathLike))
        and str(spec) not in PROMPT_SOURCES
        and (str(spec).startswith(PREFIX) or os.path.exists(spec))
    ):
        return FilePrompts(path=str(spec), **overrides)
    return PROMPT_SOURCES.build(spec, **overrides)


def load_prompts(
    spec: str | Mapping[str, Any] | PartSpec | PromptSource, **overrides: Any
) -> list[dict[str, Any]]:
    """Build a prompt source from ``spec`` (see :func:`build_prompt_source`) and load it; ids are
    checked to be unique."""
    source = build_prompt_source(spec, **overrides)
    items = source.load()
    check_unique_ids(items, getattr(source, "path", None) or type(source).__name__)
    return items


__all__ = [
    "PROMPT_SOURCES",
    "AlpacaEval",
    "FilePrompts",
    "GSM8K",
    "PreferencePrompts",
    "PromptSource",
    "build_prompt_source",
    "gsm8k_gold",
    "load_prompts",
    "read_numbered",
    "scalar_text",
    "window",
]
