"""Tiny random-init Llama models and a small BPE tokenizer, built in code (tests, CI, smoke runs)."""

from __future__ import annotations

from pathlib import Path

from aries_lit.core.chat import FALLBACK_CHAT_TEMPLATE
from aries_lit.core.paper_text import PAPER_TEMPLATE

_SPECIALS = ["<pad>", "<|im_start|>", "<|im_end|>", "<unk>"]

#: The text the tiny tokenizer is trained on: the paper's refinement template.
CORPUS_TEXT = PAPER_TEMPLATE


def _corpus() -> list[str]:
    words = CORPUS_TEXT.split()
    digits = " ".join(str(i) for i in range(200))
    return [CORPUS_TEXT, digits, "user assistant system The answer is + - = ? What is"] + [
        " ".join(words[i : i + 12]) for i in range(0, len(words), 12)
    ]


def build_tiny_tokenizer(out_dir: str | Path, vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on a small built-in corpus, with a ChatML chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        unk_token="<unk>",
    )
    fast.chat_template = FALLBACK_CHAT_TEMPLATE
    fast.save_pretrained(str(out_dir))
    return fast


def _llama_config(tokenizer, hidden_size: int, num_layers: int, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
        **extra,
    )


def build_tiny_model(out_dir: str | Path, hidden_size: int = 64, num_layers: int = 2, seed: int = 0) -> Path:
    """Write a random-init Llama causal LM and its tokenizer to ``out_dir`` (HF format)."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = build_tiny_tokenizer(out)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tokenizer, hidden_size, num_layers))
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model.save_pretrained(str(out))
    return out


def build_tiny_reward_model(
    out_dir: str | Path, hidden_size: int = 64, num_layers: int = 2, seed: int = 0
) -> Path:
    """Write a random-init Llama sequence classifier (one score) and its tokenizer to ``out_dir``."""
    import torch
    from transformers import LlamaForSequenceClassification

    out = Path(out_dir)
    tokenizer = build_tiny_tokenizer(out)
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(_llama_config(tokenizer, hidden_size, num_layers, num_labels=1))
    model.save_pretrained(str(out))
    return out
