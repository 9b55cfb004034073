"""Engine options of the ``vllm`` backend decided before its engine starts: the CPU KV-cache
default and the check that the batched-token budget holds a whole prompt. (The CPU cores left
to vLLM's scheduler are :func:`aries_lit.generators.backends.vllm.reserved_cpus`.)"""

from __future__ import annotations

import os
from typing import Any


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


#: vLLM's environment variable for the CPU KV-cache size in GiB (wins over our default)
KV_CACHE_ENV = "VLLM_CPU_KVCACHE_SPACE"


def cpu_kv_cache_bytes(fraction: float = 0.15) -> int:
    """The KV cache the CPU engines get unless told otherwise: ``fraction`` of RAM, at most half
    of the memory available now, at least 256 MiB.

    vLLM 0.32 sizes its CPU KV cache from the ``meminfo`` of its NUMA node, which on virtual
    machines with hot-plugged memory counts only part of RAM (seen: node 0 at 7.7 of 23 GiB); its
    ``gpu_memory_utilization`` share of that, less the weights, came out negative and the engine
    refused to start. An explicit ``kv_cache_memory_bytes`` skips that reading (0.15 of 23 GiB is
    3.5 GiB, ~80k tokens of SmolLM2-135M in float32).
    """
    import psutil

    vm = psutil.virtual_memory()
    return int(max(256 * 2**20, min(fraction * vm.total, 0.5 * vm.available)))


def cpu_kv_cache_default(on_gpu: bool, memory_fraction_set: bool) -> dict[str, Any]:
    """``{"kv_cache_memory_bytes": ...}`` on CPU when neither ``gpu_memory_utilization`` nor
    ``VLLM_CPU_KVCACHE_SPACE`` is set (see :func:`cpu_kv_cache_bytes`), else ``{}``."""
    if on_gpu or memory_fraction_set or os.environ.get(KV_CACHE_ENV):
        return {}
    return {"kv_cache_memory_bytes": cpu_kv_cache_bytes()}


__all__ = ["KV_CACHE_ENV", "cpu_kv_cache_bytes", "cpu_kv_cache_default"]
