"""Load causal LMs, reward models and tokenizers from a hub name or a local HF folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from aries_lit.prompts.templates import FALLBACK_CHAT_TEMPLATE

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return None
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype '{dtype}'; use one of {', '.join(_DTYPES)}") from None


def _check_local(name_or_path: str) -> None:
    path = Path(name_or_path).expanduser()
    looks_local = name_or_path.startswith((".", "/", "~")) or path.exists()
    if looks_local and not (path / "config.json").exists():
        raise FileNotFoundError(
            f"model folder '{name_or_path}' has no config.json (expected a Hugging Face model folder "
            "written by save_pretrained, or a hub name such as 'meta-llama/Llama-3.1-8B')"
        )


def load_tokenizer(name_or_path: str, padding_side: str = "right", **kwargs: Any) -> Any:
    """A tokenizer with a pad token and a chat template (ChatML fallback)."""
    _check_local(name_or_path)
    tok = AutoTokenizer.from_pretrained(
        str(Path(name_or_path).expanduser()) if Path(name_or_path).expanduser().exists() else name_or_path,
        **kwargs,
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = FALLBACK_CHAT_TEMPLATE
    tok.padding_side = padding_side
    return tok


def load_causal_lm(name_or_path: str, dtype: str | torch.dtype | None = "float32", **kwargs: Any) -> Any:
    """An ``AutoModelForCausalLM`` from a hub name or a local folder."""
    _check_local(name_or_path)
    path = Path(name_or_path).expanduser()
    return AutoModelForCausalLM.from_pretrained(
        str(path) if path.exists() else name_or_path, dtype=resolve_dtype(dtype), **kwargs
    )


def load_sequence_classifier(
    name_or_path: str, dtype: str | torch.dtype | None = "float32", **kwargs: Any
) -> Any:
    """A reward model: ``AutoModelForSequenceClassification`` with one score head."""
    _check_local(name_or_path)
    path = Path(name_or_path).expanduser()
    return AutoModelForSequenceClassification.from_pretrained(
        str(path) if path.exists() else name_or_path, dtype=resolve_dtype(dtype), **kwargs
    )
