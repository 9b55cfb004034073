"""Generation throughput of SR (sequential self-refinement) collection on SmolLM2-135M-Instruct.

16 GSM8K test questions, 2 turns (a direct answer, then one refinement with the paper's
template), ``max_new_tokens=64``, temperature 0.7 (the paper's sampling). tokens/s counts the
generated tokens (up to and including the end-of-turn token; padding after it is not counted).

* ``transformers`` backend, batch 8 (aries_lit's ``TransformersBackend``, left padding,
  contexts sorted by length);
* the floor: the same two turns as a naive loop, one prompt at a time through ``model.generate``;
* ``vllm`` backend: only when ``import vllm`` works in this environment (skipped otherwise).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from bench_utils import gsm8k_prompts

N_PROMPTS = 16
TURNS = 2
MAX_NEW_TOKENS = 64
TEMPERATURE = 0.7


def _generator():
    from aries_lit.generators import GENERATORS

    return GENERATORS.build(
        "SR",
        num_candidates=TURNS,
        max_new_tokens=MAX_NEW_TOKENS,
        temperature=TEMPERATURE,
        seed=0,
        chunk_size=None,
    )


def _run_sr(benchmark, backend, model_dir: Path, tmp_path: Path, label: str) -> None:
    prompts = gsm8k_prompts(N_PROMPTS)
    gen = _generator()
    gen.backend = backend
    runs: list[dict] = []

    def run() -> None:
        out = tmp_path / f"sr-{len(runs)}"  # a fresh folder per round (a rerun would resume)
        gen.run(prompts, model=str(model_dir), out_dir=out, progress=False)
        runs.append(dict(gen.last_run))

    benchmark.pedantic(run, rounds=1, iterations=1)
    last = runs[-1]
    benchmark.extra_info.update(
        {
            "backend": label,
            "prompts": N_PROMPTS,
            "turns": TURNS,
            "max_new_tokens": MAX_NEW_TOKENS,
            "temperature": TEMPERATURE,
            "completion_tokens": last["completion_tokens"],
            "candidates": last["candidates"],
            "seconds": round(last["seconds"], 3),
            "tokens_per_s": round(last["tokens_per_s"], 2),
        }
    )


def test_sr_transformers_batch8(benchmark, smollm2_dir, tmp_path) -> None:
    from aries_lit.generators import TransformersBackend

    backend = TransformersBackend(str(smollm2_dir), dtype="auto", batch_size=8, device="cpu")
    _run_sr(benchmark, backend, smollm2_dir, tmp_path, "transformers")
    benchmark.extra_info.update({"batch_size": 8, "dtype": str(backend.dtype)})


def test_sr_naive_loop(benchmark, smollm2_dir) -> None:
    """The floor: one ``model.generate`` call per prompt, same turns, sampling and dtype."""
    from aries_lit.generators.backends.hf import auto_dtype, split_completion, stop_token_ids
    from aries_lit.models import load_causal_lm, load_tokenizer
    from aries_lit.prompts.templates import chat_context

    tok = load_tokenizer(str(smollm2_dir), padding_side="left")
    dtype = auto_dtype("cpu")
    model = load_causal_lm(str(smollm2_dir), dtype=dtype).eval()
    stops = stop_token_ids(tok)
    sr = _generator()
    prompts = gsm8k_prompts(N_PROMPTS)
    stats = {"completion_tokens": 0, "seconds": 0.0}

    @torch.inference_mode()
    def run() -> None:
        torch.manual_seed(0)
        previous: dict[str, str] = {}
        t0 = time.perf_counter()
        for turn in range(TURNS):
            for rec in prompts:
                if turn == 0:
                    ctx = chat_context(tok, rec["prompt"])
                else:
                    ctx = chat_context(tok, sr.refinement_prompt(rec, previous[rec["id"]]))
                ids = tok(ctx, add_special_tokens=False, return_tensors="pt")
                out = model.generate(
                    **ids,
                    max_new_tokens=MAX_NEW_TOKENS,
                    do_sample=True,
                    temperature=TEMPERATURE,
                    top_p=1.0,
                    top_k=0,
                    eos_token_id=stops,
                    pad_token_id=tok.pad_token_id,
                )
                answer, n, _ = split_completion(out[0, ids["input_ids"].shape[1] :].tolist(), stops)
                stats["completion_tokens"] += n
                previous[rec["id"]] = tok.decode(answer, skip_special_tokens=True)
        stats["seconds"] += time.perf_counter() - t0

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {
            "backend": "naive loop (model.generate per prompt)",
            "prompts": N_PROMPTS,
            "turns": TURNS,
            "max_new_tokens": MAX_NEW_TOKENS,
            "temperature": TEMPERATURE,
            "batch_size": 1,
            "dtype": str(dtype),
            "completion_tokens": stats["completion_tokens"],
            "seconds": round(stats["seconds"], 3),
            "tokens_per_s": round(stats["completion_tokens"] / stats["seconds"], 2),
        }
    )


def test_sr_vllm(benchmark, smollm2_dir, tmp_path) -> None:
    pytest.importorskip("vllm")
    from aries_lit.generators import VLLMBackend

    backend = VLLMBackend(str(smollm2_dir))
    try:
        _run_sr(benchmark, backend, smollm2_dir, tmp_path, "vllm")
    finally:
        backend.close()
