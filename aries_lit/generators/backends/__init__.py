"""Generation backends: ``transformers`` (alias ``hf``, default, CPU or GPU) and ``vllm`` (optional extra).

``BACKENDS.build("vllm", model=path, gpu_memory_utilization=0.5)`` or a config mapping
``{"class_path": "vllm", "init_args": {...}}``; vLLM itself is imported only when its backend is built.
"""

from aries_lit.generators.backends.base import (
    BACKENDS,
    Backend,
    Completion,
    EngineError,
    SamplingSettings,
    engine_log_dir,
)
from aries_lit.generators.backends.hf import TransformersBackend
from aries_lit.generators.backends.vllm import VLLMBackend

__all__ = [
    "BACKENDS",
    "Backend",
    "Completion",
    "EngineError",
    "SamplingSettings",
    "TransformersBackend",
    "VLLMBackend",
    "engine_log_dir",
]
