"""The generation backend contract: rendered contexts in, completions out.

A backend turns already chat-formatted context strings into completions. Generators
(sequential refinement, parallel sampling), the LLM judge and evaluation all use it, so
``transformers`` and ``vllm`` are interchangeable everywhere by config.

Backends register in :data:`BACKENDS` (short names ``transformers``/``hf`` and ``vllm``);
any :class:`Backend` subclass works by its dotted ``class_path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from aries_lit.core.errors import EngineError
from aries_lit.core.registry import Registry

__all__ = [
    "BACKENDS",
    "Backend",
    "Completion",
    "EngineError",
    "SamplingSettings",
    "current_engine_log_dir",
    "engine_log_dir",
]

_ENGINE_LOG_DIR: ContextVar[Path | None] = ContextVar("aries_lit_engine_log_dir", default=None)


@contextmanager
def engine_log_dir(path: str | Path | None) -> Iterator[None]:
    """Backends built inside this block keep their engine's log in ``path`` (the run folder).

    ``Generator.run`` sets it to its ``out_dir`` and ``aries-lit select`` to the pairs file's
    folder, so ``aries-lit generate --out_dir runs/x`` with the ``vllm`` backend logs to
    ``runs/x/vllm.log``. ``None`` leaves the current setting as it is.
    """
    if path is None:
        yield
        return
    token = _ENGINE_LOG_DIR.set(Path(path))
    try:
        yield
    finally:
        _ENGINE_LOG_DIR.reset(token)


def current_engine_log_dir() -> Path | None:
    """The folder set by the innermost :func:`engine_log_dir` block, or None outside one."""
    return _ENGINE_LOG_DIR.get()


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample. ``temperature == 0`` means greedy decoding."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_seed(self, seed: int) -> SamplingSettings:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Completion:
    """One generated answer: its text, token counts and why it stopped (``"stop"`` or ``"length"``).

    ``completion_tokens`` counts the generated tokens including the end-of-turn token when
    the answer stopped on one (as vLLM counts them).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class Backend:
    """Base class of generation backends (registered in :data:`BACKENDS`).

    ``model`` is a hub name or an HF-format folder. ``generate`` receives contexts already
    rendered with the chat template (``aries_lit.prompts.templates.chat_context``) and
    returns one :class:`Completion` per context, in order. A backend batches internally, so
    callers hand it a whole turn of prompts at once. When sampling, the contexts of one call
    are sampled independently (the same context twice gives two samples), and a call with the
    same contexts and ``settings.seed`` gives the same completions.

    ``progress`` (set by the caller, e.g. ``Generator.run(progress=...)``) asks the backend
    to show its own progress bar inside a ``generate`` call.
    """

    progress: bool = False

    def __init__(self, model: str) -> None:
        self.model = model

    @property
    def tokenizer(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def generate(
        self, contexts: list[str], settings: SamplingSettings
    ) -> list[Completion]:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Free the model (called between rounds so the next round can load its own)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


BACKENDS: Registry[Backend] = Registry("backends", Backend)
