"""Reward-model selection (ARIES RM selection; the Iterative DPO baseline): best chosen, worst rejected."""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any

from aries_lit.core.chat import as_messages
from aries_lit.selectors.base import SELECTORS, ScoredSelector

#: where the reward model runs
BACKENDS = ("transformers", "vllm")


@SELECTORS.register("reward_model")
class RewardModelSelector(ScoredSelector):
    """Scores every (prompt, candidate) with a sequence-classification reward model.

    Each candidate is rendered as a conversation (the prompt's messages plus the candidate
    as the assistant turn) with the reward model tokenizer's own chat template (ChatML when
    it has none), and scored by ``AutoModelForSequenceClassification`` (one output) under
    ``torch.no_grad``, in batches of ``batch_size`` sorted by length and right-padded, so
    batching does not change the scores. Inputs longer than ``max_length`` tokens keep
    their last ``max_length`` tokens (the score head reads the final token) and are
    counted as ``candidates/rm_input_truncated``.

    Chosen = highest score, rejected = lowest; ties and margins ``<= min_margin`` are
    skipped (see :class:`~aries_lit.selectors.base.ScoredSelector`). The model loads on the
    first :meth:`select` and is freed after it (``keep_loaded=True`` keeps it).

    ``backend``: ``transformers`` (the default) or ``vllm``, which serves the same folder on vLLM's
    pooling runner (:class:`~aries_lit.selectors.rm_vllm.VLLMRewardScorer`; same scores to float
    precision, continuous batching; ``engine_kwargs`` go to ``vllm.LLM``). Identical conversations
    (a refinement that repeats its answer) are scored once: the selection's stats count them as
    ``scoring/cache_hits`` and the forward passes as ``scoring/forward``.

    ``model``: hub name or HF folder of the reward model (one label and a trained score head, e.g.
    one trained by :class:`~aries_lit.modules.RewardModule`; a causal-LM folder, a classifier with
    more labels or weights without the score head are refused when it loads, see
    :func:`~aries_lit.models.load_reward_model`); ``device``: ``"cuda"`` when available, else
    ``"cpu"``, unless given; ``dtype``: ``float32``, ``bfloat16``, ...
    """

    def __init__(
        self,
        model: str,
        batch_size: int = 8,
        min_margin: float = 0.0,
        max_length: int = 2048,
        dtype: str = "float32",
        device: str | None = None,
        keep_loaded: bool = False,
        skip_truncated: bool = True,
        backend: str = "transformers",
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(min_margin=min_margin, skip_truncated=skip_truncated)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.backend = backend
        self.engine_kwargs = dict(engine_kwargs or {})
        self.model = model
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.dtype = dtype
        self.device = device
        self.keep_loaded = keep_loaded
        self._model: Any = None  # a transformers model or a VLLMRewardScorer
        self._tokenizer: Any = None

    # -- loading --------------------------------------------------------------------------

    def load(self) -> None:
        """Load the reward model and its tokenizer (no-op when loaded)."""
        if self._model is not None:
            return
        import torch

        from aries_lit.models import load_reward_model, load_tokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_reward_model(self.model, dtype=self.dtype)  # refuses a folder that is no reward model
        tokenizer = load_tokenizer(self.model, padding_side="right")
        tokenizer.truncation_side = "left"
        if self.backend == "vllm":
            from aries_lit.models import resolve_model_path
            from aries_lit.selectors.rm_vllm import VLLMRewardScorer

            del model  # checked; vLLM loads its own copy
            self._model = VLLMRewardScorer(
                str(resolve_model_path(self.model)),
                dtype=self.dtype,
                max_model_len=self.max_length,
                engine_kwargs=self.engine_kwargs,
            )
            self._tokenizer = tokenizer
            return
        if model.config.pad_token_id is None:  # needed to find each row's last token in a batch
            model.config.pad_token_id = tokenizer.pad_token_id
        self._model = model.to(device).eval()
        self._tokenizer = tokenizer

    def provenance(self) -> dict[str, Any]:
        from aries_lit.models import resolve_model_path

        return {"reward_model": resolve_model_path(self.model)}

    def unload(self) -> None:
        """Free the reward model."""
        if self._model is None:
            return
        if self.backend == "vllm":  # stop the engine
            self._model.close()
        self._model = None
        self._tokenizer = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- scoring --------------------------------------------------------------------------

    def render(self, prompt: str | list[dict[str, Any]], response: str) -> str:
        """The (prompt, response) conversation as the reward model reads it."""
        messages = as_messages(prompt) + [{"role": "assistant", "content": response}]
        return self._tokenizer.apply_chat_template(messages, tokenize=False)

    def score_texts(self, texts: list[str], stats: Counter | None = None) -> list[float]:
        """Reward-model scores of rendered conversations, in order."""
        import torch

        unique = list(dict.fromkeys(texts))  # identical conversations are scored once (and tie exactly)
        if len(unique) < len(texts):
            if stats is not None:
                stats["scoring/cache_hits"] += len(texts) - len(unique)
            by_text = dict(zip(unique, self.score_texts(unique, stats)))
            return [by_text[t] for t in texts]
        if stats is not None:
            stats["scoring/forward"] += len(texts)
        tok = self._tokenizer
        bos = tok.bos_token
        encoded = []
        for text in texts:
            add_special = not (bos and text.startswith(bos))  # the chat template already added BOS
            ids = tok(text, add_special_tokens=add_special)["input_ids"]
            if len(ids) > self.max_length:
                ids = ids[-self.max_length :]
                if stats is not None:
                    stats["candidates/rm_input_truncated"] += 1
            encoded.append(ids)
        if self.backend == "vllm":
            return self._model.score(encoded)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        scores: list[float] = [0.0] * len(encoded)
        device = next(self._model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = tok.pad({"input_ids": [encoded[i] for i in rows]}, padding=True, return_tensors="pt")
                logits = self._model(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
                ).logits
                for i, value in zip(rows, logits[:, 0].float().cpu().tolist()):
                    scores[i] = value
        return scores

    def score(self, groups: list[dict[str, Any]], usable: list[list[int]], stats: Counter) -> list[list[Any]]:
        self.load()
        try:
            where, texts = [], []
            for g, (group, positions) in enumerate(zip(groups, usable)):
                if len(positions) < 2:  # nothing to compare; don't spend compute
                    continue
                for pos in positions:
                    where.append((g, pos))
                    texts.append(self.render(group["prompt"], group["candidates"][pos]["text"]))
            values = self.score_texts(texts, stats) if texts else []
        finally:
            if not self.keep_loaded:
                self.unload()
        out: list[list[Any]] = [[None] * len(group["candidates"]) for group in groups]
        for (g, pos), value in zip(where, values):
            out[g][pos] = value
        stats["candidates/scored"] += len(values)
        return out

    def __repr__(self) -> str:
        return (
            f"RewardModelSelector(model={self.model!r}, batch_size={self.batch_size}, "
            f"min_margin={self.min_margin}, max_length={self.max_length}, dtype={self.dtype!r}, "
            f"backend={self.backend!r})"
        )
