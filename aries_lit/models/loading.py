"""Load causal LMs, reward models and tokenizers from a hub name or a local HF folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from aries_lit.core.chat import FALLBACK_CHAT_TEMPLATE

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


def _local(name_or_path: str) -> str:
    path = Path(name_or_path).expanduser()
    return str(path) if path.exists() else name_or_path


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


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _architectures(name_or_path: str) -> list[str]:
    """``architectures`` of a local folder's ``config.json`` (``[]`` when absent or not local)."""
    path = Path(name_or_path).expanduser() / "config.json"
    if not path.is_file():
        return []
    return list(json.loads(path.read_text()).get("architectures") or [])


def check_reward_model_config(name_or_path: str) -> None:
    """Refuse, from its config alone, a folder that cannot be a reward model: another architecture
    (a causal LM, to which transformers would silently add a random score head) or a classifier
    with more than one label. One line (``ValueError``) naming the folder and the cause."""
    _check_local(name_or_path)
    where = f"reward model '{name_or_path}'"
    archs = _architectures(name_or_path)
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        raise ValueError(
            f"{where} is a {', '.join(archs)} folder, not a sequence classifier: it has no trained "
            "score head (train one with aries_lit.modules.RewardModule, see docs/reward_models.md)"
        )
    config = AutoConfig.from_pretrained(_local(name_or_path))
    if config.num_labels != 1:
        raise ValueError(
            f"{where} has {config.num_labels} labels ({', '.join(map(str, config.id2label.values()))}); "
            "a reward model has exactly one (num_labels=1)"
        )


def load_reward_model(name_or_path: str, dtype: str | torch.dtype | None = "float32", **kwargs: Any) -> Any:
    """A trained reward model: ``AutoModelForSequenceClassification`` with one label and a trained
    score head, the one loader of the reward-model selector and of ``evaluate``'s judge.

    Refused with one line (``ValueError``) naming the folder and the cause: what
    :func:`check_reward_model_config` refuses, or weights without the score head (transformers'
    missing keys: it would score with a random head).
    """
    check_reward_model_config(name_or_path)
    where = f"reward model '{name_or_path}'"
    with _quiet_transformers():  # missing keys are reported below, in one line
        model, info = AutoModelForSequenceClassification.from_pretrained(
            _local(name_or_path), dtype=resolve_dtype(dtype), output_loading_info=True, **kwargs
        )
    mismatched = {k if isinstance(k, str) else k[0] for k in info.get("mismatched_keys") or ()}
    missing = sorted(set(info.get("missing_keys") or ()) | mismatched)
    if missing:
        raise ValueError(
            f"{where}: no trained score head in its weights (missing or mismatched: {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''}); transformers would score with a random head"
        )
    return model


def load_reward_model_for_training(
    name_or_path: str, pad_token_id: int, dtype: str | torch.dtype | None = "float32", **kwargs: Any
) -> tuple[Any, list[str]]:
    """The starting point of reward-model training: a causal LM (it gets a new score head) or a
    one-label sequence classifier, as ``AutoModelForSequenceClassification(num_labels=1)`` with
    ``pad_token_id`` set (the score is read at each row's last non-pad token).

    Returns the model and the names of the weights it initialised (``["score.weight"]`` for a
    causal LM, ``[]`` for a reward model that continues training)."""
    _check_local(name_or_path)
    config = AutoConfig.from_pretrained(_local(name_or_path))
    archs = list(getattr(config, "architectures", None) or _architectures(name_or_path))
    if any(a.endswith("ForSequenceClassification") for a in archs) and config.num_labels != 1:
        raise ValueError(
            f"model '{name_or_path}' is a classifier with {config.num_labels} labels; reward-model training "
            "starts from a causal LM or a one-label sequence classifier"
        )
    with _quiet_transformers():  # the new score head is reported by the caller, in one line
        model, info = AutoModelForSequenceClassification.from_pretrained(
            _local(name_or_path),
            dtype=resolve_dtype(dtype),
            num_labels=1,
            pad_token_id=pad_token_id,
            output_loading_info=True,
            **kwargs,
        )
    return model, sorted(info.get("missing_keys") or ())
