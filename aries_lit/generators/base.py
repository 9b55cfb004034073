"""The generator base class: prompts in, N candidates per prompt out, persisted and resumable.

A generator renders contexts, hands whole turns to a backend (which batches internally)
and appends each call's finished candidates to ``out_dir/candidates.jsonl`` (flushed and
fsynced), with ``out_dir/manifest.json`` describing the run; a backend that keeps an engine
log (``vllm``) writes it there too (``out_dir/vllm.log``). Rerunning with the same
``out_dir`` skips every candidate already there and continues; a changed configuration is
refused. See :mod:`aries_lit.generators.store` for the formats.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from aries_lit.core.registry import Registry
from aries_lit.generators.backends.base import (
    BACKENDS,
    Backend,
    Completion,
    SamplingSettings,
    engine_log_dir,
)
from aries_lit.generators.store import CandidateStore, check_prompts, read_manifest, write_manifest
from aries_lit.prompts.templates import RefinementTemplate

log = logging.getLogger(__name__)

#: Sample ``i`` (turn ``i``) is drawn with seed ``seed + SEED_STRIDE * i``, so samples differ.
SEED_STRIDE = 10_007


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _model_key(model: str | Path) -> str:
    """The model as hashed: an existing local folder by its absolute path, else the hub name."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class Generator:
    """Base class of candidate generators (registered in :data:`GENERATORS`).

    Args:
        num_candidates: candidates per prompt (``N``; refinement turns for ``SR``).
        backend: a backend name (``"transformers"``, ``"vllm"``), a mapping
            ``{"class_path": ..., "init_args": {...}}`` or a :class:`Backend`
            instance (used as is and not closed). Built lazily with the model path.
        temperature, top_p, max_new_tokens, seed: sampling (``temperature=0`` is greedy).
            Candidate ``i`` uses seed ``seed + 10007 * i``.
        template: refinement template ``z`` (``"paper"``, ``"analysis"``, ``"short"`` or a
            text with ``{question}`` and ``{example_response}``); used by ``SR`` only.
        chunk_size: prompts per backend call (``None``: all at once). A chunk is finished
            (all its turns) before the next starts, and each call's results are saved, so a
            crash loses at most one call. Larger chunks batch better on vLLM.
    """

    #: Set by ``GENERATORS.register(name)``; the source of :attr:`name`.
    registry_name: ClassVar[str]
    #: Whether the refinement template is part of this generator's configuration.
    uses_template: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__} sets `name`: a generator is named by its "
                'registration; drop `name` and decorate the class with @GENERATORS.register("<name>")'
            )

    @property
    def name(self) -> str:
        """Name written to each candidate record, the manifest and ``settings_hash``.

        The name this very class was registered under (``GENERATORS.register("x")``; with
        stacked decorators the outermost, e.g. ``"parallel_sampling"`` rather than ``"PS"``),
        or, for a subclass used without registering it, its class name. A registered parent's
        name is never inherited, so a subclass cannot be recorded as its parent.
        """
        return type(self).__dict__.get("registry_name") or type(self).__name__

    def __init__(
        self,
        num_candidates: int = 4,
        backend: str | dict[str, Any] | Backend = "transformers",
        temperature: float = 0.7,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        template: str = "paper",
        chunk_size: int | None = 256,
    ) -> None:
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
        self.num_candidates = num_candidates
        self.backend = backend
        self.settings = SamplingSettings(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
        )
        self.template = RefinementTemplate.from_spec(template)
        self.chunk_size = chunk_size
        self.last_run: dict[str, Any] = {}

    # --- what subclasses define -------------------------------------------------------
    def context(self, tokenizer: Any, record: dict[str, Any], index: int, store: CandidateStore) -> str:
        """The rendered context of candidate ``index`` of a prompt (earlier ones are in ``store``)."""
        raise NotImplementedError

    def candidate_fields(self, completion: Completion, index: int) -> dict[str, Any]:
        """``text`` (and any extra fields) of a candidate record from a backend completion."""
        return {"text": completion.text}

    def carry_over(self, record: dict[str, Any], index: int, store: CandidateStore) -> dict[str, Any] | None:
        """A candidate record to store for ``index`` without generating (``None``: generate it).

        Must hold ``id``, ``text``, ``prompt_tokens``, ``completion_tokens`` and ``finish_reason``;
        ``index``, ``generator`` and ``settings_hash`` are added. Nothing is carried by default.
        """
        return None

    # --- configuration ----------------------------------------------------------------
    def sampling_for(self, index: int) -> SamplingSettings:
        return self.settings.with_seed(self.settings.seed + SEED_STRIDE * index)

    def config(self, model: str | Path) -> dict[str, Any]:
        """Everything that determines the candidates; hashed into ``settings_hash``."""
        return {
            "generator": self.name,
            "model": _model_key(model),
            "num_candidates": self.num_candidates,
            **self.settings.to_dict(),
            "template": self.template.text if self.uses_template else None,
        }

    def settings_hash(self, model: str | Path) -> str:
        blob = json.dumps(self.config(model), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def _backend_spec(self) -> Any:
        if isinstance(self.backend, Backend):
            cls = type(self.backend)
            return f"{cls.__module__}.{cls.__qualname__}"
        return json.loads(json.dumps(self.backend, default=str))

    def _build_backend(self, model: str | Path, progress: bool) -> tuple[Backend, bool]:
        if isinstance(self.backend, Backend):
            backend, owned = self.backend, False
        else:
            backend, owned = BACKENDS.build(self.backend, model=str(model)), True
        backend.progress = progress
        return backend, owned

    @staticmethod
    def _check_resume(out: Path, old: Mapping[str, Any], config: Mapping[str, Any], new_hash: str) -> None:
        if old.get("settings_hash") == new_hash:
            return
        before = old.get("settings", {})
        diffs = [
            f"{k}: {_short(before.get(k))} -> {_short(config.get(k))}"
            for k in sorted(set(before) | set(config))
            if before.get(k) != config.get(k)
        ]
        raise ValueError(
            f"'{out}' holds candidates generated with different settings "
            f"({'; '.join(diffs) or 'hash differs'}); use a new out_dir for the new settings, "
            "or rerun with the old ones to resume"
        )

    # --- running ----------------------------------------------------------------------
    def run(
        self,
        prompts: Sequence[Mapping[str, Any]],
        model: str | Path,
        out_dir: str | Path,
        progress: bool = True,
    ) -> Path:
        """Generate ``num_candidates`` candidates per prompt into ``out_dir``; resume what is there.

        Returns ``out_dir``. Read the result with :func:`aries_lit.generators.store.load_groups`.
        """
        out = Path(out_dir)
        records = check_prompts(prompts)
        config = self.config(model)
        h = self.settings_hash(model)
        old = read_manifest(out)
        store = self._open_store(out, old, config, h)
        n = self.num_candidates
        todo = [r for r in records if any((r["id"], i) not in store for i in range(n))]
        manifest: dict[str, Any] = {
            "generator": self.name,
            "model": str(model),
            "num_candidates": n,
            "num_prompts": len(records),
            "settings": config,
            "settings_hash": h,
            "backend": self._backend_spec(),
            "chunk_size": self.chunk_size,
            "status": "running",
            "created_at": (old or {}).get("created_at", _now()),
            "updated_at": _now(),
        }
        manifest["counts"] = self._counts(records, store)
        write_manifest(out, manifest)
        stats = {"candidates": 0, "completion_tokens": 0, "seconds": 0.0, "resumed_candidates": len(store)}
        if todo:
            self._generate_missing(todo, records, model, out, store, h, manifest, stats, progress)
        stats["tokens_per_s"] = stats["completion_tokens"] / stats["seconds"] if stats["seconds"] else 0.0
        stats["candidates_per_s"] = stats["candidates"] / stats["seconds"] if stats["seconds"] else 0.0
        self.last_run = stats
        manifest.update(status="done", updated_at=_now(), counts=self._counts(records, store), last_run=stats)
        write_manifest(out, manifest)
        if stats["candidates"]:
            log.info(
                "%s: %d candidates in %.1f s (%.1f tokens/s) -> %s",
                self.name,
                stats["candidates"],
                stats["seconds"],
                stats["tokens_per_s"],
                out,
            )
        return out

    def _open_store(
        self, out: Path, old: dict[str, Any] | None, config: dict[str, Any], h: str
    ) -> CandidateStore:
        """The candidate store of ``out``, after checking that what is there was made with these
        settings (a manifest of other settings, or candidates of another ``settings_hash``, stop)."""
        if old is not None:
            self._check_resume(out, old, config, h)
        store = CandidateStore(out)
        foreign = {r.get("settings_hash") for r in store.records()} - {h, None}
        if foreign:
            raise ValueError(
                f"'{out / 'candidates.jsonl'}' holds candidates with settings_hash {sorted(foreign)}, "
                f"not {h} (the current settings); use a new out_dir"
            )
        return store

    def _generate_missing(
        self,
        todo: list[dict[str, Any]],
        records: list[dict[str, Any]],
        model: str | Path,
        out: Path,
        store: CandidateStore,
        h: str,
        manifest: dict[str, Any],
        stats: dict[str, Any],
        progress: bool,
    ) -> None:
        """Build the backend (logging into ``out``), generate the candidates ``todo`` lacks, close
        the backend if this run built it; ``stats["seconds"]`` is set even when generation fails."""
        n = self.num_candidates
        missing = sum((r["id"], i) not in store for r in todo for i in range(n))
        log.info(
            "%s: %d candidates to generate for %d prompts (%d already in %s)",
            self.name,
            missing,
            len(todo),
            len(store),
            out,
        )
        with engine_log_dir(out):  # e.g. the vllm backend logs to out/vllm.log
            backend, owned = self._build_backend(model, progress)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=missing, desc=self.name, unit="cand", dynamic_ncols=True)
        t0 = time.perf_counter()
        try:
            with engine_log_dir(out):  # a backend built lazily (evaluation's shared one) too
                self._generate(todo, backend, store, h, manifest, records, stats, bar, t0)
        finally:
            stats["seconds"] = time.perf_counter() - t0
            if bar is not None:
                bar.close()
            if owned:
                backend.close()

    def _generate(
        self,
        todo: list[dict[str, Any]],
        backend: Backend,
        store: CandidateStore,
        settings_hash: str,
        manifest: dict[str, Any],
        records: list[dict[str, Any]],
        stats: dict[str, Any],
        bar: Any,
        t0: float,
    ) -> None:
        tokenizer = backend.tokenizer
        size = self.chunk_size or len(todo)
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            for index in range(self.num_candidates):
                items = [r for r in chunk if (r["id"], index) not in store]
                carried = [c for r in items if (c := self.carry_over(r, index, store)) is not None]
                if carried:  # e.g. a chain that stopped early repeats its last answer
                    kept = {c["id"] for c in carried}
                    store.append(
                        [
                            {**c, "index": index, "generator": self.name, "settings_hash": settings_hash}
                            for c in carried
                        ]
                    )
                    stats["candidates"] += len(carried)
                    items = [r for r in items if r["id"] not in kept]
                    if bar is not None:
                        bar.update(len(carried))
                if not items:
                    continue
                contexts = [self.context(tokenizer, r, index, store) for r in items]
                completions = backend.generate(contexts, self.sampling_for(index))
                if len(completions) != len(items):
                    raise RuntimeError(
                        f"backend {type(backend).__name__} returned {len(completions)} completions "
                        f"for {len(items)} contexts"
                    )
                new = []
                for r, c in zip(items, completions):
                    new.append(
                        {
                            "id": r["id"],
                            "index": index,
                            **self.candidate_fields(c, index),
                            "prompt_tokens": c.prompt_tokens,
                            "completion_tokens": c.completion_tokens,
                            "finish_reason": c.finish_reason,
                            "generator": self.name,
                            "settings_hash": settings_hash,
                        }
                    )
                store.append(new)
                stats["candidates"] += len(new)
                stats["completion_tokens"] += sum(c.completion_tokens for c in completions)
                manifest.update(updated_at=_now(), counts=self._counts(records, store))
                write_manifest(store.out_dir, manifest)
                if bar is not None:
                    elapsed = max(time.perf_counter() - t0, 1e-9)
                    bar.update(len(new))
                    bar.set_postfix(
                        prompts=f"{manifest['counts']['complete_prompts']}/{len(records)}",
                        tok_s=f"{stats['completion_tokens'] / elapsed:.1f}",
                        refresh=False,
                    )

    def _counts(self, records: list[dict[str, Any]], store: CandidateStore) -> dict[str, int]:
        n = self.num_candidates
        ids = {r["id"] for r in records}
        mine = [c for (pid, i), c in store.done.items() if pid in ids and i < n]
        return {
            "candidates": len(mine),
            "complete_prompts": sum(all((r["id"], i) in store for i in range(n)) for r in records),
            "finish_length": sum(c.get("finish_reason") == "length" for c in mine),
            "prompt_tokens": sum(int(c.get("prompt_tokens", 0)) for c in mine),
            "completion_tokens": sum(int(c.get("completion_tokens", 0)) for c in mine),
        }

    def __repr__(self) -> str:
        backend = self._backend_spec()
        return f"{type(self).__name__}(N={self.num_candidates}, backend={backend!r}, {self.settings})"


GENERATORS: Registry[Generator] = Registry("generators", Generator)
