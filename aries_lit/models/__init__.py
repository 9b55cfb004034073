"""Loading models and tokenizers (hub names, local HF folders, GGUF), tiny test models, SmolLM2."""

from aries_lit.core.model_paths import resolve_model_path
from aries_lit.models.loading import (
    check_reward_model_config,
    load_causal_lm,
    load_reward_model,
    load_reward_model_for_training,
    load_sequence_classifier,
    load_tokenizer,
    resolve_dtype,
)
from aries_lit.models.smollm2 import smollm2_path
from aries_lit.models.tiny import build_tiny_model, build_tiny_reward_model, build_tiny_tokenizer

__all__ = [
    "build_tiny_model",
    "build_tiny_reward_model",
    "build_tiny_tokenizer",
    "check_reward_model_config",
    "load_causal_lm",
    "load_reward_model",
    "load_reward_model_for_training",
    "load_sequence_classifier",
    "load_tokenizer",
    "resolve_dtype",
    "resolve_model_path",
    "smollm2_path",
]
