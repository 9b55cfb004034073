"""Errors the CLI reports as one line (kept in a module that imports nothing heavy, so
``aries_lit.cli`` can catch them without loading torch). Bottom layer: imports nothing from
aries_lit.

Every such error is a :class:`UserError`; the CLI picks its one line by the error's class
(:func:`aries_lit.cli.one_line_errors`), never by its text. :class:`SettingsError` is a setting a
class cannot take; :class:`FileContentError` a problem with what a named file or folder holds,
whose message starts with its path; :class:`DataValidationError`, one of those, is the one error type
for bad user data: it names the file, the record and the field."""

from __future__ import annotations

from typing import Any, ClassVar


class UserError(Exception):
    """An error whose message is one line for the user (bad settings or data, a failed stage, a
    busy folder): ``aries-lit`` prints ``aries-lit: error: <message>``, not a traceback.

    ``names_file`` says that the message already starts with the file or folder at fault, so the
    CLI does not put the ``--config`` files in front of it."""

    names_file: ClassVar[bool] = False


class SettingsError(UserError, ValueError):
    """A setting that the class it configures cannot take, found while building the class from
    a config (an option its constructor does not accept, a required one that is missing): one
    line naming the part and the cause. Raised before the class is called, so a ``TypeError``
    from inside a constructor (a bug) is never mistaken for one."""


class UsageError(UserError, ValueError):
    """A bad command line (an unknown command), already one line."""


class FileContentError(UserError, ValueError):
    """A problem with what a named file or folder holds (no records, invalid YAML or JSON, a
    generation folder that did not finish): the message starts with its path."""

    names_file = True


class EngineError(UserError, RuntimeError):
    """A generation engine (e.g. vLLM) failed while starting or generating.

    The message is one line: what failed, the last line of the engine's own error, and
    where its full log is. A ``RuntimeError``, not a ``ValueError``: the cause is usually
    not bad input (a crash inside the engine, too little memory, a dead engine process), so
    code that catches ``ValueError`` to handle bad settings does not swallow it. The engine's
    original exception is chained as ``__cause__``.
    """


class StageError(UserError, RuntimeError):
    """A stage of ``iterate`` or ``study`` could not finish (training exited with an error,
    selection gave no pairs, an earlier stage is missing). The message is one line naming the
    stage and what to do; the stage's own output above it says why. Finished stages are kept:
    rerunning the same command resumes."""


class FolderInUseError(UserError, RuntimeError):
    """A second run tried to write a folder that a live run holds (:mod:`aries_lit.core.locks`). One
    line: the folder and the holder's host and process id."""


class PeerLostError(UserError, RuntimeError):
    """Another rank of a distributed run died (a lost node, a killed process) while this one
    waited for it. One line: what this rank was doing and that finished work is kept; rerunning
    the same command on every node resumes."""


class DiskSpaceError(UserError, OSError):
    """Too little free space for what a step is about to write, or the disk filled mid-write
    (``ENOSPC``). One line: the folder, what is needed and what is free; what was finished is
    kept (files are written atomically), so the same command resumes once space is freed."""

    names_file = True


class DataValidationError(FileContentError):
    """Bad input data, located: ``data/pairs.jsonl, record 17, field 'chosen': empty response``.

    Attributes:
        path: the file, folder or dataset name the data came from (as the user gave it).
        record: 1-based record number (for JSON Lines: the line number), or None when the
            problem is not tied to one record (an unreadable file, a column of mixed types).
        field: the field at fault, or None.
        message: what is wrong, without the location.
        reason: a short code for the kind of problem (``missing_field``, ``wrong_type``,
            ``empty_response``, ``identical_responses``, ``bad_json``, ``not_utf8``,
            ``duplicate_id``, ...); loaders that skip bad records count skips by it.
    """

    def __init__(
        self,
        path: Any,
        record: int | None,
        field: str | None,
        message: str,
        *,
        reason: str = "invalid",
    ) -> None:
        self.path = str(path) if path is not None else None
        self.record = record
        self.field = field
        self.message = message
        self.reason = reason
        super().__init__(self._format())

    def _format(self) -> str:
        where = [self.path or "<data>"]
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}"

    def __str__(self) -> str:
        return self._format()

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (_rebuild, (self.path, self.record, self.field, self.message, self.reason))


def _rebuild(
    path: Any, record: int | None, field: str | None, message: str, reason: str
) -> DataValidationError:
    return DataValidationError(path, record, field, message, reason=reason)


__all__ = [
    "FileContentError",
    "DataValidationError",
    "DiskSpaceError",
    "EngineError",
    "FolderInUseError",
    "SettingsError",
    "StageError",
    "UsageError",
    "UserError",
]
