"""Evaluation task kinds: one class per kind, registered in :data:`TASK_KINDS`.

A kind owns what differs between tasks: which prompt records it takes, its default temperature,
how it generates, the records it builds from the generations, its metrics (and whether the
reward model or the judge scores it) and its part of the report. A task's kind is the one its
``kind`` key names, else the first kind (by :attr:`TaskKind.infer_order`) that
:meth:`~TaskKind.accepts` all its prompt records. Built in:

- ``verifiable`` (:class:`VerifiableKind`): records have an ``answer`` (GSM8K, arithmetic, a file
  with ``answer_field``). Each turn's final answer is extracted
  (:func:`aries_lit.answers.extraction.extract_answer`) and compared with the gold one by
  :func:`aries_lit.answers.checking.is_correct` (``checker``: ``builtin`` or ``math_verify``);
  accuracy with a Wilson interval. Default temperature 0 (greedy).
- ``ifeval`` (:class:`IFEvalKind`): records have IFEval's ``instruction_id_list`` and ``kwargs``
  (the ``ifeval`` and ``instruction_following`` prompt sources). Every turn is checked by IFEval's
  checkers: prompt- and instruction-level accuracy, strict and loose, per instruction type, flips
  and truncations (:mod:`aries_lit.evaluation.ifeval`); each turn's answers are written in IFEval's
  response format. Default temperature 0. With ``generator: {class_path: oracle_feedback}`` the
  refinements are told which instructions fail: an oracle, reported as such, never SR.
- ``pairwise`` (:class:`PairwiseKind`): records have a ``reference_output`` (AlpacaEval 2: the
  GPT-4 Turbo answers). AlpacaEval ``model_outputs.json`` files are written for Direct and SR;
  with a ``judge`` (a reward model) both answers are scored, giving the win rate and the
  length-controlled win rate (:mod:`aries_lit.evaluation.winrate`) at every turn. Default
  temperature 0.9.
- ``open`` (:class:`OpenKind`): any other records; scored by the ``reward_model`` when one is
  configured. Default temperature 0.9.
- ``mt_bench`` (:class:`MTBenchKind`): the ``mt_bench`` prompt source's two-turn conversations,
  answered Direct only and written in FastChat's format (:mod:`aries_lit.evaluation.suites`).

``arena_hard`` is no kind of its own but an answer format: its tasks are ``pairwise`` (with a
``baseline`` answer file) or ``open``, and also write Arena-Hard's ``model_answer`` files.

A new kind is one class and one registration (CONTRIBUTING.md, "Add an evaluation task kind")::

    @TASK_KINDS.register("keyword")
    class KeywordKind(TaskKind):
        requires = "keyword"
        def turn_fields(self, text, record, run): return {"hit": record["keyword"] in text}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aries_lit.core.registry import RegistryError
from aries_lit.evaluation.kinds.base import TASK_KINDS, Generation, TaskKind, TaskRun
from aries_lit.evaluation.kinds.builtin import (
    ARENA_HARD_DISCLAIMER,
    JUDGE_DISCLAIMER,
    LOCAL_JUDGE_NOTE,
    IFEvalKind,
    MTBenchKind,
    OpenKind,
    PairwiseKind,
    VerifiableKind,
)
from aries_lit.evaluation.suites import suite_of

if TYPE_CHECKING:
    from aries_lit.evaluation.tasks import Task

__all__ = [
    "ARENA_HARD_DISCLAIMER",
    "JUDGE_DISCLAIMER",
    "LOCAL_JUDGE_NOTE",
    "TASK_KINDS",
    "Generation",
    "IFEvalKind",
    "MTBenchKind",
    "OpenKind",
    "PairwiseKind",
    "TaskKind",
    "TaskRun",
    "VerifiableKind",
    "infer_kind",
    "kind_for",
    "kind_of",
]


def kind_of(kind: str | TaskKind, strict: bool = True) -> TaskKind:
    """The kind of a registered name or dotted class path (a :class:`TaskKind` stays itself); an
    unknown name raises ``ValueError`` or, with ``strict=False`` (reading a report), is the base."""
    if isinstance(kind, TaskKind):
        return kind
    try:
        return TASK_KINDS.get(kind)()
    except RegistryError as err:
        if not strict:
            return TaskKind()
        raise ValueError(f"unknown kind '{kind}' (use {', '.join(TASK_KINDS.names())})") from err


def infer_kind(task: Task) -> TaskKind:
    """The kind a task names (its records checked) or the first that accepts all its records."""
    if task.kind is not None:
        try:
            kind = kind_of(task.kind)
        except ValueError as err:
            raise ValueError(f"task '{task.label}': {err}") from None
        kind.check(task)
        return kind
    inferred = [cls for cls in _classes() if cls.__dict__.get("infer_order") is not None]
    ordered = sorted(inferred, key=lambda cls: cls.__dict__["infer_order"])
    return next((k for k in (cls() for cls in ordered) if k.accepts(task.prompts)), OpenKind())


def kind_for(task: Task) -> TaskKind:
    """A task's kind: its suite's (``mt_bench``) if it has one, else :func:`infer_kind`'s."""
    suite = suite_of(task.source)
    own = [cls for cls in _classes() if suite is not None and cls.__dict__.get("suite") == suite]
    return own[0]() if own else infer_kind(task)


def _classes() -> list[type[TaskKind]]:
    """The registered kinds, by name (a subclass inherits neither ``infer_order`` nor ``suite``:
    only a class that sets them itself is inferred or owns a suite)."""
    return [TASK_KINDS.get(name) for name in TASK_KINDS.names()]
