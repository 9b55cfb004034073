"""One iteration of the loop, collect -> select -> train -> evaluate, timed phase by phase (issue 28).

Two sides, on the same prompts, on the same machine, in one invocation:

* **ours**: aries_lit through its public APIs, the way ``aries-lit iterate`` and ``study`` run a
  stage (:func:`aries_lit.pipeline.collect.generate` and ``select``, then the stage's fit config
  through :func:`aries_lit.pipeline.lightning_cli.fit_in_process`, all in the loop's process, then
  :func:`aries_lit.evaluation.evaluate_checkpoints`, Direct only). ``--precision auto`` lets
  ``auto_precision`` choose bf16 autocast where a measured probe finds it faster (the TRL side
  stays at TRL's fp32 default). Two loops: **Iterative DPO** (parallel sampling, 4 answers ->
  verifier -> DPO) and **ARIES** (sequential refinement, 4 turns -> verifier -> ARIES loss, alpha 0.8).
* **trl**: the same Iterative DPO loop as a user would script it without aries_lit: ``vllm.LLM``
  + ``SamplingParams(n=4)``, pairs chosen = a correct answer / rejected = a wrong one (aries_lit's
  answer checking is imported *only* for the correctness check, so both sides score alike), TRL's
  ``DPOTrainer`` with ``DPOConfig`` defaults except the settings that must match ours, ``save_model``,
  then ``vllm.LLM`` again on the trained model for the held-out evaluation.

Every loop runs in its own subprocess (engines and memory are released between them); the parent
probes the machine (CPU model, torch threads, 2048^3 fp32/bf16 matmul GFLOP/s) and writes one
JSON log. Run from the repository root::

    python benchmarks/loop_iteration.py                  # both sides, ~200 pairs (long: an idle machine)
    python benchmarks/loop_iteration.py --tiny           # a smoke run: a few prompts, few tokens
    python benchmarks/loop_iteration.py --side ours --backend transformers --loops iterative_dpo

See benchmarks/README.md, "One loop iteration".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_utils
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

PHASES = ("collect", "select", "train", "evaluate")

# --------------------------------------------------------------------------- pinned settings

#: what both sides share (the study's online iteration, configs/study/arms/*.yaml, at ~200 pairs)
COMMON: dict[str, Any] = {
    "model": "SmolLM2-135M-Instruct (aries_lit.models.smollm2_path(), float32)",
    "num_candidates": 4,
    "temperature": 0.7,
    "top_p": 1.0,
    "max_new_tokens": 96,
    "eval_temperature": 0.0,
    "lr": 5.0e-6,
    "beta": 0.1,
    "batch_size": 8,
    "epochs": 1,
    "max_length": 512,
    "seed": 0,
    "precision": "fp32",
    "vllm_dtype": "float32",
    "max_model_len": 1024,
}

#: the ARIES loop's loss (configs/study/arms/aries.yaml)
ARIES_LOSS = {
    "class_path": "aries_lit.losses.ARIESLoss",
    "init_args": {
        "alpha": 0.8,
        "preference": {"class_path": "aries_lit.losses.DPOLoss", "init_args": {"beta": 0.1}},
        "refine": {"class_path": "aries_lit.losses.RefineMSELoss", "init_args": {"beta": 0.05}},
    },
}
DPO_LOSS = {"class_path": "aries_lit.losses.DPOLoss", "init_args": {"beta": 0.1}}


def task_specs(
    task: str, prompts: int, eval_prompts: int, max_operand: int = 49
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train prompt source, held-out prompt source) for ``task``."""
    if task == "arithmetic":
        # sums/differences of two numbers 0-49: 5,000 expressions, so ~2,000 distinct train ones
        # (the study's 0-19 has ~320, too few for ~200 pairs); test never shares an expression
        base = {"num_terms": 2, "max_operand": max_operand, "ops": "+-", "test_fraction": 0.4, "unique": True}
        train = {
            "class_path": "arithmetic",
            "init_args": {**base, "split": "train", "count": prompts, "seed": 103},
        }
        held = {
            "class_path": "arithmetic",
            "init_args": {**base, "split": "test", "count": eval_prompts, "seed": 0},
        }
        return train, held
    if task == "instruction_following":
        train = {"class_path": "instruction_following", "init_args": {"split": "train", "count": prompts}}
        held = {"class_path": "instruction_following", "init_args": {"split": "test", "count": eval_prompts}}
        return train, held
    raise ValueError(f"unknown task {task!r}")


# --------------------------------------------------------------------------- machine


def cpu_model_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    from bench_utils import cpu_model

    return cpu_model()


def machine(threads: int, probe: bool = True) -> dict[str, Any]:
    import torch
    import transformers

    torch.set_num_threads(threads)
    info: dict[str, Any] = {
        "cpu_model": cpu_model_name(),
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    for name in ("vllm", "trl", "lightning"):
        try:
            info[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - absent or broken: recorded as such
            info[name] = None
    if probe:
        info.update(matmul_probe(n=1024 if os.environ.get("LOOP_BENCH_TINY") else 2048))
    return info


def matmul_probe(n: int = 2048, repeats: int = 5, budget_s: float = 10.0) -> dict[str, Any]:
    """fp32 and bf16 ``n x n @ n x n`` GFLOP/s (best and median of ``repeats`` after one warm-up), as
    ``benchmarks/test_matmul_peak.py`` measures the MFU denominator. A precision whose matmul is so
    slow that ``repeats`` would pass ``budget_s`` (bf16 on AVX2-only CPUs: ~0.7 GFLOP/s, 25 s a
    matmul) stops after the warm-up round, which is then its only timing."""
    import torch

    out: dict[str, Any] = {"matmul_n": n}
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        t0 = time.perf_counter()
        torch.mm(a, b)
        times = [time.perf_counter() - t0]
        if times[0] * repeats <= budget_s:
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                torch.mm(a, b)
                times.append(time.perf_counter() - t0)
        flops = 2 * n**3
        out[f"matmul_{label}_gflops"] = round(flops / min(times) / 1e9, 1)
        out[f"matmul_{label}_median_gflops"] = round(flops / sorted(times)[len(times) // 2] / 1e9, 1)
        out[f"matmul_{label}_rounds"] = len(times)
    out["mkldnn_bf16_supported"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return out


# --------------------------------------------------------------------------- measuring helpers


def reset_peak_rss() -> None:
    """Reset this process's VmHWM (Linux >= 4.0), so the next :func:`peak_rss_mb` is this phase's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, float, float]:
    """Run ``cmd``; (exit code, wall seconds, peak RSS in MB of that process and its waited-for children)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - t0, round(usage.ru_maxrss / 1024, 1)


def prompts_digest(items: list[dict[str, Any]]) -> str:
    text = json.dumps([[str(r["id"]), str(r["prompt"])] for r in items])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_work(pairs_path: Path, model_dir: str, loss: str) -> dict[str, Any]:
    """Tokens of one epoch over the pairs, counted the same way for both sides: the loss's views as
    separate sequences (context + response + end of turn; for DPO TRL's chosen + rejected), and the
    tokens aries_lit actually runs with shared contexts."""
    from bench_utils import view_tokens_per_pair

    from aries_lit.data.views import ViewTokenizer
    from aries_lit.losses import LOSSES
    from aries_lit.models import load_tokenizer
    from aries_lit.prompts.templates import RefinementTemplate
    from aries_lit.records.loading import load_preference_records

    records = load_preference_records(str(pairs_path), format="trl")
    if not records:
        return {"pairs": 0, "work_tokens": 0, "shared_context_tokens": 0}
    views = LOSSES.build(DPO_LOSS if loss == "dpo" else ARIES_LOSS).required_views()
    tok = load_tokenizer(model_dir)
    vt = ViewTokenizer(tok, views, RefinementTemplate.from_spec("short"), COMMON["max_length"], 448, "drop")
    feats = [f for f in (vt(r) for r in records) if f is not None]
    per_pair = (
        view_tokens_per_pair(feats, views, rounded=False) if feats else {"separate": 0, "shared_context": 0}
    )
    return {
        "pairs": len(records),
        "pairs_tokenized": len(feats),
        "views": list(views),
        "work_tokens": int(round(per_pair["separate"] * len(feats))),
        "shared_context_tokens": int(round(per_pair["shared_context"] * len(feats))),
    }


def train_figures(phase: dict[str, Any], work: dict[str, Any], peak_fp32_gflops: float | None) -> None:
    """tokens/s and a phase-wall MFU (6 N per trained work token + 2 N per reference token, over the
    fp32 matmul peak; bench_utils.model_flops) into ``phase``."""
    from bench_utils import model_flops

    phase.update(work)
    seconds = phase["seconds"]
    tokens = work.get("work_tokens", 0) * COMMON["epochs"]
    phase["train_tokens_per_s"] = round(tokens / seconds, 2) if seconds else None
    phase["pairs_per_s"] = round(work.get("pairs", 0) * COMMON["epochs"] / seconds, 4) if seconds else None
    params = 134_515_008  # SmolLM2-135M (tied embeddings once; bench_utils.num_params)
    flops = model_flops(params, tokens, work.get("work_tokens", 0))
    phase["model_gflops"] = round(flops / 1e9, 1)
    if peak_fp32_gflops:
        phase["mfu_fp32"] = round(flops / seconds / (peak_fp32_gflops * 1e9), 4)


# --------------------------------------------------------------------------- scoring (both sides)


def make_scorer(task: str):
    """``score(record, text, finish_reason) -> float``: 1/0 for arithmetic (aries_lit's verifier
    verdict), the fraction of IFEval constraints met for instruction following."""
    if task == "arithmetic":
        from aries_lit.selectors.verifier import VerifierSelector

        verifier = VerifierSelector()

        def score(record: dict[str, Any], text: str, finish_reason: str | None) -> float:
            gold = verifier.gold(record)
            if gold is None:
                return 0.0
            cand = {"text": text, "finish_reason": finish_reason}
            return 1.0 if verifier.verdict(cand, gold, record["prompt"]) is None else 0.0

        return score
    from aries_lit.core.chat import prompt_text
    from aries_lit.instructions import follows
    from aries_lit.prompts.instruction_following import record_instructions

    def score_if(record: dict[str, Any], text: str, finish_reason: str | None) -> float:
        instructions = record_instructions(record) or []
        if not instructions:
            return 0.0
        question = prompt_text(record["prompt"])
        return sum(follows(i, question, text) for i in instructions) / len(instructions)

    return score_if


# --------------------------------------------------------------------------- ours


def backend_spec(backend: str) -> dict[str, Any] | str:
    if backend == "vllm":
        return {
            "class_path": "vllm",
            "init_args": {"dtype": COMMON["vllm_dtype"], "max_model_len": COMMON["max_model_len"]},
        }
    return {"class_path": "transformers", "init_args": {"dtype": "float32", "batch_size": 16}}


def run_ours(cfg: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    import torch

    from aries_lit.core.configs import set_dotted
    from aries_lit.evaluation import evaluate_checkpoints
    from aries_lit.generators.store import read_candidates, read_manifest
    from aries_lit.pipeline.collect import generate, select
    from aries_lit.prompts.sources import load_prompts

    torch.set_num_threads(cfg["threads"])
    loop, work_dir, model = cfg["loop"], Path(cfg["work_dir"]), cfg["model"]
    s = cfg["settings"]
    train_spec, held_spec = cfg["train_spec"], cfg["held_spec"]
    is_aries = loop == "aries"
    out.update(
        {
            "side": "ours",
            "loop": loop,
            "backend": cfg["backend"],
            "precision": cfg.get("precision", s["precision"]),
            "phases": {},
        }
    )
    items = load_prompts(train_spec)
    out["prompts"], out["prompts_digest"] = len(items), prompts_digest(items)
    gen_init = {
        "num_candidates": s["num_candidates"],
        "temperature": s["temperature"],
        "top_p": s["top_p"],
        "max_new_tokens": s["max_new_tokens"],
        "seed": s["seed"],
        "backend": backend_spec(cfg["backend"]),
    }
    if is_aries:
        gen_init["template"] = "short"
    generator = {
        "class_path": "sequential_refinement" if is_aries else "parallel_sampling",
        "init_args": gen_init,
    }
    out["generator"] = generator

    # collect
    t0 = time.perf_counter()
    candidates = generate(model, train_spec, generator, str(work_dir / "candidates"), progress=False)
    wall = time.perf_counter() - t0
    last = (read_manifest(candidates) or {}).get("last_run") or {}
    tokens = sum(
        int(c.get("completion_tokens", 0)) for c in read_candidates(Path(candidates) / "candidates.jsonl")
    )
    out["phases"]["collect"] = {
        "seconds": round(wall, 2),
        "generation_seconds": round(last.get("seconds", 0.0), 2),
        "startup_seconds": round(wall - last.get("seconds", 0.0), 2),
        "generated_tokens": tokens,
        "candidates": last.get("candidates"),
        "tokens_per_s": round(tokens / wall, 2) if wall else None,
        "generation_tokens_per_s": round(last.get("tokens_per_s", 0.0), 2),
    }

    # select
    selector = {"class_path": "verifier"} if cfg["task"] == "arithmetic" else {"class_path": "graded"}
    t0 = time.perf_counter()
    pairs = Path(select(candidates, train_spec, selector, str(work_dir / "pairs.jsonl")))
    wall = time.perf_counter() - t0
    stats = json.loads((pairs.parent / "selection_stats.json").read_text())
    n_pairs = sum(1 for line in pairs.read_text().splitlines() if line.strip())
    out["phases"]["select"] = {
        "seconds": round(wall, 2),
        "selector": selector,
        "pairs": n_pairs,
        "stats": {k: v for k, v in stats.items() if isinstance(v, int)},
    }
    if n_pairs == 0:
        out["error"] = "selection gave no pairs; nothing to train (raise --prompts or --max-new-tokens)"
        return out

    # train: a fit config as aries-lit iterate writes it, fitted in this process as a stage is
    fit: dict[str, Any] = {
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "precision": "32-true",
            "max_epochs": s["epochs"],
            "log_every_n_steps": 1,
            "enable_model_summary": False,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
            "logger": False,
        },
        # no resume checkpoints (TRL side: save_strategy="no"); the HF export is still written
        "checkpoint": {"save_last": False, "save_top_k": 0, "every_n_train_steps": 0},
        "seed_everything": s["seed"],
        "model": {
            "class_path": "aries_lit.modules.PreferenceModule",
            "init_args": {
                "model": model,
                "lr": s["lr"],
                "precompute_reference": True,
                "loss": ARIES_LOSS if is_aries else DPO_LOSS,
            },
        },
        "data": {
            "class_path": "aries_lit.data.PreferenceDataModule",
            "init_args": {
                "train": str(pairs),
                "format": "trl",
                "template": "short",
                "batch_size": s["batch_size"],
                "max_length": s["max_length"],
                "max_context_length": 448,
                "truncation": "drop",
                "seed": s["seed"],
            },
        },
    }
    set_dotted(fit, "trainer.default_root_dir", str(work_dir / "train"))
    set_dotted(fit, "export.dirpath", str(work_dir / "model"))
    if cfg.get("precision", s["precision"]) == "auto":
        del fit["trainer"]["precision"]
        fit["auto_precision"] = True
    from aries_lit.pipeline.lightning_cli import fit_in_process

    reset_peak_rss()
    t0 = time.perf_counter()
    try:
        fit_in_process(fit, progress=False)
    except Exception as err:  # noqa: BLE001 - the log records a failed fit and goes on
        out["error"] = f"fit failed: {type(err).__name__}: {err}"
        return out
    finally:
        gc.collect()
    train = {
        "seconds": round(time.perf_counter() - t0, 2),
        "peak_rss_mb": peak_rss_mb(),
        "via": "fit_in_process (as a study stage)",
        "fit_config": fit,
    }
    train_figures(
        train, train_work(pairs, model, "aries" if is_aries else "dpo"), cfg.get("peak_fp32_gflops")
    )
    out["phases"]["train"] = train
    trained = str(work_dir / "model")

    # evaluate: Direct on the held-out prompts
    held = load_prompts(held_spec)
    out["eval_prompts"], out["eval_prompts_digest"] = len(held), prompts_digest(held)
    eval_gen = {
        "class_path": "sequential_refinement",
        "init_args": {"temperature": 0.0, "seed": s["seed"], "backend": backend_spec(cfg["backend"])},
    }
    t0 = time.perf_counter()
    if cfg["task"] == "arithmetic":
        result = evaluate_checkpoints(
            [trained],
            tasks=[{**held_spec, "label": "heldout"}],
            out_dir=str(work_dir / "eval"),
            num_refinements=0,
            generator=eval_gen,
            max_new_tokens=s["max_new_tokens"],
            names=["trained"],
            plots=False,
            progress=False,
        )
        wall = time.perf_counter() - t0
        metrics = result["checkpoints"]["trained"]["tasks"]["heldout"]
        accuracy = metrics["accuracy"]["direct"]["mean"]
        cand_file = work_dir / "eval" / "trained" / "heldout" / "candidates.jsonl"
    else:  # open-ended: Direct answers, scored by the IFEval checkers (no reward model needed)
        ps = {
            "class_path": "parallel_sampling",
            "init_args": {
                **eval_gen["init_args"],
                "num_candidates": 1,
                "max_new_tokens": s["max_new_tokens"],
            },
        }
        folder = generate(trained, held_spec, ps, str(work_dir / "eval"), progress=False)
        wall = time.perf_counter() - t0
        cand_file = Path(folder) / "candidates.jsonl"
        scorer, by_id = make_scorer(cfg["task"]), {str(r["id"]): r for r in held}
        cands = list(read_candidates(cand_file))
        accuracy = sum(scorer(by_id[str(c["id"])], c["text"], c.get("finish_reason")) for c in cands) / max(
            1, len(cands)
        )
    tokens = sum(int(c.get("completion_tokens", 0)) for c in read_candidates(cand_file))
    out["phases"]["evaluate"] = {
        "seconds": round(wall, 2),
        "generated_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2) if wall else None,
        "direct_score": round(float(accuracy), 4),
        "via": "aries_lit.evaluation.evaluate_checkpoints (Direct, greedy)"
        if cfg["task"] == "arithmetic"
        else "aries_lit generate (greedy) + IFEval checkers",
    }
    return out


# --------------------------------------------------------------------------- TRL + vLLM, as a user writes it


def trl_vllm_kwargs(s: dict[str, Any]) -> dict[str, Any]:
    """``vllm.LLM`` arguments of the baseline: vLLM's defaults but the dtype, context length and seed,
    and ``gpu_memory_utilization``: on CPU it is the fraction of the NUMA node's RAM vLLM reserves,
    and its default 0.92 refuses to start beside anything else (vLLM's own error tells the user to
    lower it, e.g. to 0.5); 0.3 holds the weights and a KV cache far larger than this workload's.
    ``--trl-vllm-kwargs`` (JSON) overrides or adds arguments."""
    return {
        "dtype": s["vllm_dtype"],
        "max_model_len": s["max_model_len"],
        "seed": s["seed"],
        "gpu_memory_utilization": 0.3,
        **s.get("trl_vllm_overrides", {}),
    }


def trl_dpo_settings(s: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """``DPOConfig`` arguments of the baseline: TRL's defaults but what must match ours."""
    return {
        "output_dir": out_dir,
        "learning_rate": s["lr"],
        "beta": s["beta"],
        "per_device_train_batch_size": s["batch_size"],
        "num_train_epochs": s["epochs"],
        "max_length": s["max_length"],
        "seed": s["seed"],
        "bf16": False,
        "fp16": False,
        "use_cpu": True,
        "eval_strategy": "no",
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "logging_steps": 1,
    }


def _shutdown(llm: Any) -> None:
    """Stop a ``vllm.LLM``'s engine (what a user does with ``del llm``, made reliable)."""
    from aries_lit.generators.backends.vllm import shutdown_llm

    shutdown_llm(llm)
    gc.collect()


def run_trl(cfg: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer
    from vllm import LLM, SamplingParams

    from aries_lit.prompts.sources import load_prompts  # the same prompts as ours

    threads = cfg["threads"]
    work_dir, model = Path(cfg["work_dir"]), cfg["model"]
    s = cfg["settings"]
    score = make_scorer(cfg["task"])
    out.update({"side": "trl", "loop": "iterative_dpo", "backend": "vllm", "phases": {}})
    items = load_prompts(cfg["train_spec"])
    held = load_prompts(cfg["held_spec"])
    out["prompts"], out["prompts_digest"] = len(items), prompts_digest(items)
    out["eval_prompts"], out["eval_prompts_digest"] = len(held), prompts_digest(held)
    tokenizer = AutoTokenizer.from_pretrained(model)

    def chat(record: dict[str, Any]) -> str:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": record["prompt"]}], tokenize=False, add_generation_prompt=True
        )

    llm_kwargs = trl_vllm_kwargs(s)
    sampling = {
        "n": s["num_candidates"],
        "temperature": s["temperature"],
        "top_p": s["top_p"],
        "max_tokens": s["max_new_tokens"],
    }
    out["settings"] = {"vllm.LLM": llm_kwargs, "SamplingParams(collect)": sampling}

    # collect
    t0 = time.perf_counter()
    llm = LLM(model=model, **llm_kwargs)
    t_gen = time.perf_counter()
    outputs = llm.generate([chat(r) for r in items], SamplingParams(**sampling), use_tqdm=False)
    gen_seconds = time.perf_counter() - t_gen
    _shutdown(llm)
    del llm
    wall = time.perf_counter() - t0
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    out["phases"]["collect"] = {
        "seconds": round(wall, 2),
        "generation_seconds": round(gen_seconds, 2),
        "startup_seconds": round(wall - gen_seconds, 2),
        "generated_tokens": tokens,
        "candidates": sum(len(o.outputs) for o in outputs),
        "tokens_per_s": round(tokens / wall, 2),
        "generation_tokens_per_s": round(tokens / gen_seconds, 2),
    }

    # select: chosen = the first correct answer, rejected = the first wrong one
    t0 = time.perf_counter()
    rows = []
    for record, o in zip(items, outputs):
        scored = [(score(record, c.text, c.finish_reason), c.text) for c in o.outputs]
        best = max(scored, key=lambda x: x[0])
        worst = min(scored, key=lambda x: x[0])
        if best[0] > worst[0]:
            rows.append(
                {
                    "prompt": [{"role": "user", "content": record["prompt"]}],
                    "chosen": [{"role": "assistant", "content": best[1]}],
                    "rejected": [{"role": "assistant", "content": worst[1]}],
                }
            )
    pairs_path = work_dir / "pairs.jsonl"
    with open(pairs_path, "w") as fh:  # aries_lit's TRL-format reader counts the train tokens
        for r in rows:
            fh.write(
                json.dumps(
                    {
                        "prompt": r["prompt"][0]["content"],
                        "chosen": r["chosen"][0]["content"],
                        "rejected": r["rejected"][0]["content"],
                    }
                )
                + "\n"
            )
    out["phases"]["select"] = {
        "seconds": round(time.perf_counter() - t0, 2),
        "pairs": len(rows),
        "selector": "first correct (max score) vs first wrong (min score)",
    }
    if not rows:
        out["error"] = "selection gave no pairs; nothing to train"
        return out

    # train
    dpo_kwargs = trl_dpo_settings(s, str(work_dir / "trl_out"))
    out["settings"]["DPOConfig"] = dpo_kwargs
    reset_peak_rss()
    t0 = time.perf_counter()
    torch.set_num_threads(threads)  # vLLM may have lowered it in this process
    policy = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    args = DPOConfig(**dpo_kwargs)
    trainer = DPOTrainer(
        model=policy, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )
    result = trainer.train()
    trained = str(work_dir / "model")
    trainer.save_model(trained)
    tokenizer.save_pretrained(trained)
    wall = time.perf_counter() - t0
    resolved = args.to_dict()
    keys = (
        "learning_rate",
        "lr_scheduler_type",
        "warmup_ratio",
        "warmup_steps",
        "weight_decay",
        "optim",
        "gradient_checkpointing",
        "max_length",
        "truncation_mode",
        "loss_type",
        "beta",
        "precompute_ref_log_probs",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "num_train_epochs",
        "max_grad_norm",
        "seed",
        "bf16",
        "use_cpu",
        "padding_free",
        "pad_to_multiple_of",
    )
    train = {
        "seconds": round(wall, 2),
        "peak_rss_mb": peak_rss_mb(),
        "torch_threads": torch.get_num_threads(),
        "train_runtime_s": round(result.metrics.get("train_runtime", 0.0), 2),
        "steps": result.global_step,
        "dpo_config_resolved": {k: resolved.get(k) for k in keys if k in resolved},
        "via": "trl.DPOTrainer in-process",
    }
    del trainer, policy
    gc.collect()
    train_figures(train, train_work(pairs_path, model, "dpo"), cfg.get("peak_fp32_gflops"))
    out["phases"]["train"] = train

    # evaluate: greedy Direct answers of the trained model on the held-out prompts
    eval_sampling = {"n": 1, "temperature": 0.0, "max_tokens": s["max_new_tokens"]}
    out["settings"]["SamplingParams(evaluate)"] = eval_sampling
    t0 = time.perf_counter()
    llm = LLM(model=trained, **llm_kwargs)
    outputs = llm.generate([chat(r) for r in held], SamplingParams(**eval_sampling), use_tqdm=False)
    _shutdown(llm)
    del llm
    wall = time.perf_counter() - t0
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    accuracy = sum(
        score(r, o.outputs[0].text, o.outputs[0].finish_reason) for r, o in zip(held, outputs)
    ) / len(held)
    out["phases"]["evaluate"] = {
        "seconds": round(wall, 2),
        "generated_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2),
        "direct_score": round(accuracy, 4),
        "via": "vllm.LLM.generate (greedy) on the saved model",
    }
    return out


# --------------------------------------------------------------------------- driver


def child_main(spec_path: str) -> int:
    cfg = json.loads(Path(spec_path).read_text())
    t0 = time.perf_counter()
    result: dict[str, Any] = {"phases": {}}
    code = 0
    try:
        (run_trl if cfg["side"] == "trl" else run_ours)(cfg, result)
    except Exception as err:  # noqa: BLE001 - recorded in the log with what was measured before it
        import traceback

        result["error"] = f"{type(err).__name__}: {err}"[:2000]
        result["traceback_tail"] = traceback.format_exc()[-3000:]
        code = 1
    result["seconds_total"] = round(time.perf_counter() - t0, 2)
    result["phase_seconds_sum"] = round(sum(p["seconds"] for p in result["phases"].values()), 2)
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    Path(cfg["result"]).write_text(json.dumps(result, indent=2, default=str))
    return code


def vllm_importable() -> bool:
    try:
        import vllm  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--prompts", type=int, default=None, help="train prompts (default 1000: ~200 pairs; --tiny 12)"
    )
    p.add_argument("--eval-prompts", type=int, default=None, help="held-out prompts (default 200; --tiny 8)")
    p.add_argument("--side", choices=("ours", "trl", "both"), default="both")
    p.add_argument("--loops", default="iterative_dpo,aries", help="ours: iterative_dpo and/or aries")
    p.add_argument("--task", choices=("arithmetic", "instruction_following"), default="arithmetic")
    p.add_argument(
        "--backend",
        choices=("auto", "vllm", "transformers"),
        default="auto",
        help="ours: generation backend (auto: vllm when importable)",
    )
    p.add_argument("--max-new-tokens", type=int, default=None, help="default 96 (--tiny 48)")
    p.add_argument(
        "--max-operand", type=int, default=49, help="arithmetic: operands 0..N (default 49; 9 is easier)"
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "auto"),
        default="fp32",
        help="ours: training precision (auto: bf16 autocast where a measured probe finds it faster)",
    )
    p.add_argument(
        "--variants",
        default=None,
        help="ours: comma-separated BACKEND/PRECISION runs of each loop in this one invocation, e.g. "
        "vllm/fp32,transformers/fp32,vllm/auto (overrides --backend and --precision; names them "
        "ours/LOOP@BACKEND-PRECISION)",
    )
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument(
        "--out", default=None, help="results JSON (default benchmarks/results/loop_iteration-<date>.json)"
    )
    p.add_argument("--work-dir", default=None, help="where runs write (default: a temporary folder, deleted)")
    p.add_argument(
        "--tiny", action="store_true", help="a seconds-to-minutes smoke run: few prompts and tokens"
    )
    p.add_argument("--no-probe", action="store_true", help="skip the matmul probe")
    p.add_argument(
        "--trl-vllm-kwargs", default="{}", help="JSON: more vllm.LLM arguments for the trl side's engines"
    )
    p.add_argument("--table", default=None, metavar="LOG", help="print a log's results as Markdown and exit")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args._child:
        return child_main(args._child)
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return 0
    if args.tiny:
        os.environ["LOOP_BENCH_TINY"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from aries_lit.models import smollm2_path

    settings = dict(COMMON)
    settings["max_new_tokens"] = args.max_new_tokens or (48 if args.tiny else COMMON["max_new_tokens"])
    settings["trl_vllm_overrides"] = json.loads(args.trl_vllm_kwargs)
    settings["precision"] = args.precision
    settings["variants"] = args.variants
    prompts = args.prompts or (12 if args.tiny else 1000)
    eval_prompts = args.eval_prompts or (8 if args.tiny else 200)
    train_spec, held_spec = task_specs(args.task, prompts, eval_prompts, args.max_operand)
    backend = args.backend
    if backend == "auto":
        backend = "vllm" if vllm_importable() else "transformers"
    try:
        runs = plan_runs(args.side, args.loops, args.variants, backend, args.precision)
    except ValueError as err:
        raise SystemExit(f"loop_iteration: {err}") from None
    model = str(smollm2_path())
    info = machine(args.threads, probe=not args.no_probe)
    date = _dt.datetime.now(_dt.timezone.utc)
    out_path = Path(args.out or REPO / "benchmarks" / "results" / f"loop_iteration-{date:%Y-%m-%d}.json")
    log: dict[str, Any] = {
        "benchmark": "loop_iteration",
        "started": date.isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "tiny": args.tiny,
        "task": args.task,
        "machine": info,
        "settings": {
            **settings,
            "prompts": prompts,
            "eval_prompts": eval_prompts,
            "ours_backend": backend,
            "train_prompts_spec": train_spec,
            "heldout_prompts_spec": held_spec,
            "trl_vllm_LLM": trl_vllm_kwargs(settings),
            "trl_DPOConfig": trl_dpo_settings(settings, "<work>/trl_out"),
        },
        "runs": {},
    }
    print("[loop-bench] settings:\n" + json.dumps(log["settings"], indent=2), flush=True)
    print(
        f"[loop-bench] CPU {info['cpu_model']}, torch threads {info['torch_threads']}, matmul fp32 "
        f"{info.get('matmul_fp32_gflops')} / bf16 {info.get('matmul_bf16_gflops')} GFLOP/s",
        flush=True,
    )
    tmp = None
    if args.work_dir:
        root = Path(args.work_dir)
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="loop_bench-")
        root = Path(tmp.name)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        for run in runs:
            side, loop, name = run.side, run.loop, run.name
            work = root / name.replace("/", "-").replace("@", "-")
            work.mkdir(parents=True, exist_ok=True)
            spec = {
                "side": side,
                "loop": loop,
                "task": args.task,
                "model": model,
                "threads": args.threads,
                "settings": settings,
                "train_spec": train_spec,
                "held_spec": held_spec,
                "backend": run.backend,
                "precision": run.precision,
                "work_dir": str(work),
                "result": str(work / "result.json"),
                "peak_fp32_gflops": info.get("matmul_fp32_gflops"),
            }
            (work / "spec.json").write_text(json.dumps(spec, indent=2))
            before = [round(x, 2) for x in os.getloadavg()]
            print(f"[loop-bench] === {name} (load {before[0]:.2f})", flush=True)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
            code, wall, _ = run_child(
                [sys.executable, str(Path(__file__).resolve()), "--_child", str(work / "spec.json")], env
            )
            result = json.loads((work / "result.json").read_text()) if (work / "result.json").exists() else {}
            result.update({"exit_code": code, "wall_seconds": round(wall, 2), "loadavg_before": before})
            log["runs"][name] = result
            phases = result.get("phases", {})
            print(
                f"[loop-bench] {name}: "
                + ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in phases.items())
                + f" (process {wall:.1f} s, exit {code})",
                flush=True,
            )
            out_path.write_text(json.dumps(log, indent=2, default=str))  # a killed run keeps what it measured
    finally:
        if tmp is not None:
            tmp.cleanup()
    log["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    log["summary"] = summary(log)
    out_path.write_text(json.dumps(log, indent=2, default=str))
    print(json.dumps(log["summary"], indent=2))
    print(f"[loop-bench] log: {out_path}")
    return 0 if all(r.get("exit_code") == 0 and "error" not in r for r in log["runs"].values()) else 1


@dataclass(frozen=True)
class Run:
    """One loop to time: a side, a loop, and (ours) its generation backend and training precision."""

    side: str
    loop: str
    backend: str
    precision: str
    name: str


def plan_runs(side: str, loops: str, variants: str | None, backend: str, precision: str) -> list[Run]:
    """The runs of one invocation, in order: TRL's Iterative DPO first, then ours per loop and variant.

    Without ``variants`` a run is named ``SIDE/LOOP``; with them each ours run is
    ``ours/LOOP@BACKEND-PRECISION``, so one log holds e.g. vLLM against transformers collection.
    """
    runs: list[Run] = []
    if side in ("trl", "both"):
        runs.append(Run("trl", "iterative_dpo", "vllm", "fp32", "trl/iterative_dpo"))
    if side not in ("ours", "both"):
        return runs
    pairs = [(backend, precision)]
    if variants:
        pairs = []
        for v in variants.split(","):
            b, _, prec = v.strip().partition("/")
            if b not in ("vllm", "transformers") or prec not in ("fp32", "auto"):
                raise ValueError(f"--variants: {v!r} is not BACKEND/PRECISION (vllm|transformers/fp32|auto)")
            pairs.append((b, prec))
    for loop in (x for x in loops.split(",") if x):
        if loop not in ("iterative_dpo", "aries"):
            raise ValueError(f"--loops: unknown loop {loop!r} (iterative_dpo, aries)")
        for b, prec in pairs:
            name = f"ours/{loop}@{b}-{prec}" if variants else f"ours/{loop}"
            runs.append(Run("ours", loop, b, prec, name))
    return runs


def summary(log: dict[str, Any]) -> dict[str, Any]:
    """Per run: seconds per phase and in all; the ours/trl ratios of Iterative DPO where both ran;
    with ``--variants``, each variant against its loop's first (``variant_speedup``, first / it)."""
    out: dict[str, Any] = {}
    for name, r in log["runs"].items():
        ph = r.get("phases", {})
        out[name] = {
            **{f"{k}_s": ph[k]["seconds"] for k in PHASES if k in ph},
            "iteration_s": r.get("phase_seconds_sum"),
            "pairs": ph.get("select", {}).get("pairs"),
            "train_tokens_per_s": ph.get("train", {}).get("train_tokens_per_s"),
            "direct_score": ph.get("evaluate", {}).get("direct_score"),
        }
    firsts: dict[str, dict[str, Any]] = {}
    variant_speedup: dict[str, dict[str, float]] = {}
    for name, row in out.items():
        if "@" not in name:
            continue
        first = firsts.setdefault(name.split("@")[0], row)
        if row is not first:
            variant_speedup[name] = {
                k: round(first[k] / row[k], 2)
                for k in [f"{p}_s" for p in PHASES] + ["iteration_s"]
                if first.get(k) and row.get(k)
            }
    if variant_speedup:
        out["variant_speedup"] = variant_speedup
    a, b = out.get("ours/iterative_dpo"), out.get("trl/iterative_dpo")
    if a and b:
        out["speedup_ours_vs_trl"] = {
            k: round(b[k] / a[k], 2)
            for k in [f"{p}_s" for p in PHASES] + ["iteration_s"]
            if a.get(k) and b.get(k)
        }
    return out


def markdown_table(log: dict[str, Any]) -> str:
    """The results table of benchmarks/README.md ("One loop iteration") from one log, with its machine."""
    m, st = log["machine"], log["settings"]
    lines = [
        f"{m['cpu_model']}, {m['nproc']} cores, torch {m['torch']}, {m['torch_threads']} threads; "
        f"matmul at {m.get('matmul_n')}^3: fp32 {m.get('matmul_fp32_gflops')} GFLOP/s, "
        f"bf16 {m.get('matmul_bf16_gflops')}; {st['prompts']} train prompts, {st['eval_prompts']} held-out, "
        f"task {log['task']}, {st['max_new_tokens']} new tokens, "
        + (
            f"ours: variants {st['variants']}."
            if st.get("variants")
            else f"ours: {st['ours_backend']}, precision {st['precision']}."
        ),
        "",
        "| run | collect s (gen tokens/s) | select s | train s (pairs, tokens/s, peak RSS MiB) "
        "| evaluate s | iteration s | Direct score |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in log["runs"].items():
        ph = r.get("phases", {})
        c, sel, t, e = (ph.get(k, {}) for k in PHASES)
        lines.append(
            f"| {name} | {c.get('seconds', '-')} ({c.get('generation_tokens_per_s', '-')}) "
            f"| {sel.get('seconds', '-')} "
            f"| {t.get('seconds', '-')} ({t.get('pairs', '-')}, {t.get('train_tokens_per_s', '-')}, "
            f"{t.get('peak_rss_mb', '-')}) | {e.get('seconds', '-')} | {r.get('phase_seconds_sum', '-')} "
            f"| {e.get('direct_score', '-')} |"
        )
    summ = log.get("summary") or summary(log)
    for name, ratios in summ.get("variant_speedup", {}).items():
        first = next(n for n in log["runs"] if n.split("@")[0] == name.split("@")[0])
        lines += ["", f"{first} seconds / {name}: " + ", ".join(f"{k} {v}x" for k, v in ratios.items())]
    speed = summ.get("speedup_ours_vs_trl")
    if speed:
        ratios = ", ".join(f"{k} {v}x" for k, v in speed.items())
        lines += ["", f"TRL seconds / ours (Iterative DPO): {ratios}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
