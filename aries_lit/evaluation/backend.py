"""The evaluation's generation backend: one per (checkpoint, backend spec), shared by the tasks.

It imports the generators (and so torch) when imported; :mod:`aries_lit.evaluation.evaluate`
imports it when an evaluation runs.
"""

from __future__ import annotations

from typing import Any

from aries_lit.generators.backends.base import BACKENDS, Backend, Completion, SamplingSettings

__all__ = ["SharedBackend"]


class SharedBackend(Backend):
    """One backend per (checkpoint, backend spec), built on first use and shared by the tasks,
    so a rerun whose generations are all done never loads the model."""

    def __init__(self, spec: Any, model: str) -> None:
        super().__init__(model)
        self.spec = spec
        self._inner: Backend | None = None

    def _get(self) -> Backend:
        if self._inner is None:
            self._inner = BACKENDS.build(self.spec, model=self.model)
        self._inner.progress = self.progress
        return self._inner

    @property
    def tokenizer(self) -> Any:
        return self._get().tokenizer

    def generate(self, contexts: list[str], settings: SamplingSettings) -> list[Completion]:
        return self._get().generate(contexts, settings)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
