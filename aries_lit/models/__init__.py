"""Loading models and tokenizers (hub names, local HF folders, GGUF), tiny test models, SmolLM2."""

from aries_lit.models.loading import load_causal_lm, load_sequence_classifier, load_tokenizer, resolve_dtype
from aries_lit.models.smollm2 import smollm2_path
from aries_lit.models.tiny import build_tiny_model, build_tiny_reward_model, build_tiny_tokenizer

__all__ = [
    "build_tiny_model",
    "build_tiny_reward_model",
    "build_tiny_tokenizer",
    "load_causal_lm",
    "load_sequence_classifier",
    "load_tokenizer",
    "resolve_dtype",
    "smollm2_path",
]
