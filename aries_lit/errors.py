"""Errors the CLI reports as one line (kept in a module that imports nothing heavy, so
``aries_lit.cli`` can catch them without loading torch)."""

from __future__ import annotations


class EngineError(RuntimeError):
    """A generation engine (e.g. vLLM) failed while starting or generating.

    The message is one line: what failed, the last line of the engine's own error, and
    where its full log is. A ``RuntimeError``, not a ``ValueError``: the cause is usually
    not bad input (a crash inside the engine, too little memory, a dead engine process), so
    code that catches ``ValueError`` to handle bad settings does not swallow it. The engine's
    original exception is chained as ``__cause__``.
    """


class StageError(RuntimeError):
    """A stage of ``iterate`` or ``study`` could not finish (training exited with an error,
    selection gave no pairs, an earlier stage is missing). The message is one line naming the
    stage and what to do; the stage's own output above it says why. Finished stages are kept:
    rerunning the same command resumes."""
