"""``transformers`` backend: batched ``model.generate`` with left padding, on CPU or one GPU."""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import torch

from aries_lit.core.chat import end_of_turn
from aries_lit.generators.backends.base import BACKENDS, Backend, Completion, SamplingSettings

log = logging.getLogger(__name__)


def auto_dtype(device: str | torch.device) -> torch.dtype:
    """bfloat16 where the hardware runs it natively (CUDA with bf16, CPU with oneDNN bf16), else fp32/fp16."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        try:
            if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
                return torch.bfloat16
        except (AttributeError, RuntimeError):  # pragma: no cover - older torch builds
            pass
    return torch.float32


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an answer: the chat template's end-of-turn token and the tokenizer's eos."""
    ids: list[int] = []
    eot = end_of_turn(tokenizer)
    if eot:
        eot_id = tokenizer.convert_tokens_to_ids(eot)
        if isinstance(eot_id, int) and eot_id != tokenizer.unk_token_id:
            ids.append(eot_id)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    if not ids:
        raise ValueError(
            f"tokenizer of '{tokenizer.name_or_path}' has neither an end-of-turn nor an eos token"
        )
    return ids


def split_completion(new_tokens: list[int], stop_ids: list[int]) -> tuple[list[int], int, str]:
    """``(answer tokens, completion token count, finish reason)`` of one generated row.

    The answer ends before the first stop token (``"stop"``, the stop token counted in the
    completion) or runs to the end of the row (``"length"``); padding after a stop is dropped.
    """
    stops = set(stop_ids)
    for i, tok in enumerate(new_tokens):
        if tok in stops:
            return new_tokens[:i], i + 1, "stop"
    return new_tokens, len(new_tokens), "length"


@BACKENDS.register("transformers")
@BACKENDS.register("hf")
class TransformersBackend(Backend):
    """Generation with ``transformers`` ``model.generate``.

    Args:
        model: hub name or HF-format folder (loaded with :mod:`aries_lit.models`).
        dtype: ``"auto"`` (bfloat16 on a GPU with bf16 or a CPU with native bf16, float32
            otherwise), ``"bfloat16"``, ``"float32"``, ``"float16"``.
        batch_size: contexts per ``generate`` call. Contexts are sorted by length (longest
            first, so an out-of-memory error shows at once) and the order restored.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default CUDA when available.
        num_threads: CPU threads for generation (``torch.set_num_threads`` during
            ``generate``, restored after); ``None`` keeps torch's default. On a CPU shared
            with other busy processes, 1 thread can be several times faster than the
            default (OpenMP threads waiting on each other).

    Sampling matches vLLM's defaults: no top-k, ``temperature``/``top_p`` as given,
    greedy when ``temperature == 0``. Each batch is seeded with ``settings.seed + batch
    number`` inside :func:`torch.random.fork_rng`, so results are reproducible and the
    caller's random state is left alone.
    """

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        batch_size: int = 8,
        device: str | None = None,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(model)
        from aries_lit.models import load_causal_lm, load_tokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = auto_dtype(self.device) if dtype == "auto" else dtype
        t0 = time.perf_counter()
        self._tokenizer = load_tokenizer(str(model), padding_side="left")
        self._model = load_causal_lm(str(model), dtype=self.dtype).to(self.device).eval()
        self._stop_ids = stop_token_ids(self._tokenizer)
        self.generated_tokens = 0
        self.generate_seconds = 0.0
        log.info(
            "loaded %s (%s on %s) in %.1f s", model, self._model.dtype, self.device, time.perf_counter() - t0
        )

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def _sampling_kwargs(self, settings: SamplingSettings) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "eos_token_id": self._stop_ids,
            "pad_token_id": self._tokenizer.pad_token_id,
            "do_sample": not settings.greedy,
        }
        if settings.greedy:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
        return kwargs

    @torch.inference_mode()
    def generate(self, contexts: list[str], settings: SamplingSettings) -> list[Completion]:
        if self._model is None:
            raise RuntimeError("this TransformersBackend was closed")
        if not contexts:
            return []
        tok = self._tokenizer
        ids = tok(list(contexts), add_special_tokens=False)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        results: list[Completion | None] = [None] * len(ids)
        kwargs = self._sampling_kwargs(settings)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(ids), desc="generate", unit="cand", leave=False, dynamic_ncols=True)
        t0 = time.perf_counter()
        n_tokens = 0
        devices = [self.device] if self.device.type == "cuda" else []
        threads = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            for b, start in enumerate(range(0, len(order), self.batch_size)):
                rows = order[start : start + self.batch_size]
                batch = tok.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
                batch = {k: v.to(self.device) for k, v in batch.items()}
                width = batch["input_ids"].shape[1]
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(settings.seed + b)
                    out = self._model.generate(**batch, **kwargs)
                for row, i in zip(out[:, width:].tolist(), rows):
                    answer, n_completion, reason = split_completion(row, self._stop_ids)
                    n_tokens += n_completion
                    results[i] = Completion(
                        text=tok.decode(answer, skip_special_tokens=True),
                        prompt_tokens=len(ids[i]),
                        completion_tokens=n_completion,
                        finish_reason=reason,
                    )
                if bar is not None:
                    elapsed = max(time.perf_counter() - t0, 1e-9)
                    bar.update(len(rows))
                    bar.set_postfix(tok_s=f"{n_tokens / elapsed:.1f}", refresh=False)
        finally:
            torch.set_num_threads(threads)
            if bar is not None:
                bar.close()
            self.generated_tokens += n_tokens
            self.generate_seconds += time.perf_counter() - t0
        return results  # type: ignore[return-value]

    def close(self) -> None:
        if getattr(self, "_model", None) is None:
            return
        self._model = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
