"""Shared set-up of the benchmark suite: settings, data selection, batches, FLOP counting.

Settings come from environment variables so a slow machine can shrink a run:

* ``ARIES_BENCH_THREADS`` (2): ``torch.set_num_threads``.
* ``ARIES_BENCH_ROUNDS`` (3) / ``ARIES_BENCH_WARMUP`` (1): measured and warm-up steps per benchmark.
* ``ARIES_BENCH_SLOW_ROUNDS`` (= rounds): measured steps of the SmolLM2 ARIES/BT_ARIES benchmarks.
* ``ARIES_BENCH_MODELS`` (``tiny,smollm2``): which models the training benchmarks run.
* ``ARIES_BENCH_PAIRS`` (``hh``): ``uniform`` runs the TRL comparison on pairs of one length.
* ``ARIES_BENCH_DATA`` (the data shipped in the package, ``aries_lit/assets``): a folder with
  ``hh_rlhf/harmless_base_test.jsonl.gz`` and ``gsm8k/test.jsonl.gz``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aries_lit.assets import ASSETS_DIR

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ARIES_BENCH_DATA", ASSETS_DIR))
HH_TEST = DATA / "hh_rlhf" / "harmless_base_test.jsonl.gz"
GSM8K_TEST = DATA / "gsm8k" / "test.jsonl.gz"

THREADS = int(os.environ.get("ARIES_BENCH_THREADS", "2"))
ROUNDS = int(os.environ.get("ARIES_BENCH_ROUNDS", "3"))
WARMUP = int(os.environ.get("ARIES_BENCH_WARMUP", "1"))
#: measured steps of the SmolLM2 ``aries``/``bt_aries`` benchmarks (about 3.5x a DPO step each)
SLOW_ROUNDS = int(os.environ.get("ARIES_BENCH_SLOW_ROUNDS", str(ROUNDS)))
MODELS = tuple(m for m in os.environ.get("ARIES_BENCH_MODELS", "tiny,smollm2").split(",") if m)

PAIRS_PER_STEP = 4
MAX_LENGTH = 256
#: contexts longer than this are cut from the left (refinement contexts); the benchmark pairs are
#: chosen so that their *direct* context fits, so DPO sees no context truncation (as in TRL).
MAX_CONTEXT_LENGTH = 192
LR = 1e-6


# --------------------------------------------------------------------------- machine


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    import transformers

    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": THREADS,
        "loadavg": load_avg(),
    }


# --------------------------------------------------------------------------- precision


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """``fp32``: nothing; ``bf16``: CPU autocast to bfloat16 (what Lightning's ``bf16-mixed`` does)."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")


# --------------------------------------------------------------------------- matmul peak

_PEAK: dict[str, float] = {}
MATMUL_N = 2048


def matmul_flops(dtype: torch.dtype, n: int = MATMUL_N, repeats: int = 10) -> tuple[float, list[float]]:
    """Best-of-``repeats`` FLOP/s of an ``n x n @ n x n`` matmul, and all the timings."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    for _ in range(2):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times), times


def peak_flops(precision: str) -> float:
    """This machine's measured matmul peak for ``fp32``/``bf16`` (measured once per session)."""
    if precision not in _PEAK:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        _PEAK[precision] = matmul_flops(dtype)[0]
    return _PEAK[precision]


def set_peak(precision: str, value: float) -> None:
    _PEAK[precision] = max(value, _PEAK.get(precision, 0.0))


def num_params(model: torch.nn.Module) -> int:
    """Unique parameters (tied embeddings once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def model_flops(params: int, trained_tokens: float, reference_tokens: float) -> float:
    """The issue's count: 6 x params per trained token + 2 x params per reference-forward token."""
    return 6.0 * params * trained_tokens + 2.0 * params * reference_tokens


# --------------------------------------------------------------------------- data


def select_pairs(tokenizer: Any, n: int) -> list[dict[str, Any]]:
    """The first ``n`` HH-RLHF harmless test pairs whose direct chat context fits ``MAX_CONTEXT_LENGTH``.

    The same pairs (in the same order) feed aries_lit and TRL, so both see identical token
    sequences: no context is cut, responses are cut at the end to fit ``MAX_LENGTH`` (TRL's
    ``keep_start``).
    """
    from aries_lit.data import load_preference_records
    from aries_lit.data.views import record_prompt
    from aries_lit.prompts.templates import chat_context

    records = load_preference_records(str(HH_TEST), format="hh", on_error="skip")
    out = []
    for record in records:
        ctx = chat_context(tokenizer, record_prompt(record))
        if len(tokenizer(ctx, add_special_tokens=False)["input_ids"]) <= MAX_CONTEXT_LENGTH:
            out.append(record)
            if len(out) == n:
                break
    if len(out) < n:
        raise RuntimeError(f"only {len(out)} HH pairs fit {MAX_CONTEXT_LENGTH} context tokens; need {n}")
    return out


#: ``ARIES_BENCH_PAIRS``: ``hh`` (default: the HH-RLHF pairs as they are) or ``uniform`` (every
#: step's sequences of one length, so padding saves nothing: :func:`uniform_pairs`)
PAIRS = os.environ.get("ARIES_BENCH_PAIRS", "hh")
#: the response length of every ``uniform`` pair, in tokens (end of turn excluded)
UNIFORM_RESPONSE_TOKENS = 32


def uniform_pairs(
    tokenizer: Any, n: int, response_tokens: int = UNIFORM_RESPONSE_TOKENS
) -> list[dict[str, Any]]:
    """``n`` HH-RLHF pairs ordered so that every step's ``PAIRS_PER_STEP`` pairs have one length:
    the same direct-context length (in tokens) and both responses cut to exactly
    ``response_tokens`` (a cut that re-tokenizes to another length is skipped). A step's batch pads
    nothing, in TRL's layout or ours, so what a framework gains from avoiding padding is out of the
    comparison. The longest contexts that fill a step come first (sequences near ``MAX_LENGTH``)."""
    from collections import defaultdict

    from aries_lit.data import load_preference_records
    from aries_lit.data.views import record_prompt
    from aries_lit.prompts.templates import chat_context

    def count(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def cut(text: str) -> str | None:
        ids = count(text)
        if len(ids) < response_tokens:
            return None
        out = tokenizer.decode(ids[:response_tokens])
        return out if len(count(out)) == response_tokens else None

    by_length: dict[int, list[dict[str, Any]]] = defaultdict(list)
    limit = min(MAX_LENGTH - response_tokens - 1, MAX_CONTEXT_LENGTH)
    for record in load_preference_records(str(HH_TEST), format="hh", on_error="skip"):
        length = len(count(chat_context(tokenizer, record_prompt(record))))
        if length > limit:
            continue
        chosen, rejected = cut(record["chosen"]), cut(record["rejected"])
        if chosen is not None and rejected is not None:
            by_length[length].append({**record, "chosen": chosen, "rejected": rejected})
    out: list[dict[str, Any]] = []
    for _, pairs in sorted(by_length.items(), reverse=True):
        full = len(pairs) - len(pairs) % PAIRS_PER_STEP
        out += pairs[: min(full, n - len(out))]
        if len(out) == n:
            return out
    raise RuntimeError(f"only {len(out)} HH pairs fill steps of one length; need {n}")


def benchmark_pairs(tokenizer: Any, n: int) -> list[dict[str, Any]]:
    """The pairs the training benchmarks run on (``ARIES_BENCH_PAIRS``)."""
    if PAIRS == "uniform":
        return uniform_pairs(tokenizer, n)
    if PAIRS != "hh":
        raise SystemExit(f"ARIES_BENCH_PAIRS must be 'hh' or 'uniform', not '{PAIRS}'")
    return select_pairs(tokenizer, n)


def steps_needed() -> int:
    return WARMUP + ROUNDS


def tokenize(
    tokenizer: Any,
    records: list[dict[str, Any]],
    views: tuple[str, ...],
    max_length: int = MAX_LENGTH,
    max_context_length: int = MAX_CONTEXT_LENGTH,
) -> list[dict[str, Any]]:
    from aries_lit.data import ViewTokenizer
    from aries_lit.prompts.templates import RefinementTemplate

    vt = ViewTokenizer(
        tokenizer, views, RefinementTemplate.from_spec("paper"), max_length, max_context_length, "left"
    )
    feats = [vt(r) for r in records]
    if any(f is None for f in feats):
        raise RuntimeError("a benchmark record was dropped by the view tokenizer")
    return feats  # type: ignore[return-value]


def make_batches(
    features: list[dict[str, Any]], views: tuple[str, ...], pad_id: int, layout: str = "shared"
) -> list[dict[str, Any]]:
    """Batches of ``PAIRS_PER_STEP`` pairs, collated as the DataModule does by default (``shared``:
    :class:`~aries_lit.data.SharedContextCollator`, each context once) or with every view its own
    sequence (``separate``: :class:`~aries_lit.data.ViewCollator`, as TRL runs chosen and rejected).

    Each batch also carries ``bench.tokens`` (non-pad tokens of the views as separate sequences: the
    *work*, counted as TRL counts it, so tokens/s compare across layouts and frameworks) and
    ``bench.processed`` (non-pad tokens the model actually runs: the FLOP count's basis)."""
    from aries_lit.data import ViewCollator
    from aries_lit.data.collator import SharedContextCollator

    if layout not in ("shared", "separate"):
        raise ValueError(f"layout must be 'shared' or 'separate', got {layout!r}")
    collate = (SharedContextCollator if layout == "shared" else ViewCollator)(views, pad_id)
    batches = []
    for i in range(0, len(features), PAIRS_PER_STEP):
        chunk = features[i : i + PAIRS_PER_STEP]
        batch = collate(chunk)
        counts = view_tokens_per_pair(chunk, views, rounded=False)
        batch["bench.tokens"] = int(round(counts["separate"] * len(chunk)))
        processed = counts["shared_context" if layout == "shared" else "separate"]
        batch["bench.processed"] = int(round(processed * len(chunk)))
        batches.append(batch)
    return batches


def view_tokens_per_pair(
    features: list[dict[str, Any]], views: tuple[str, ...], rounded: bool = True
) -> dict[str, float]:
    """Mean tokens (context + response) per pair for each view, their sum (``separate``: every view
    its own sequence) and ``shared_context``: each context once with its responses on top (what
    the default :class:`~aries_lit.data.SharedContextCollator` runs)."""
    from aries_lit.data.views import needed_parts, view_sequence

    out: dict[str, float] = {}
    n = len(features)
    for v in views:
        out[v] = sum(len(c) + len(r) for c, r in (view_sequence(f, v) for f in features)) / n
    out["separate"] = sum(out[v] for v in views)
    contexts, _ = needed_parts(views)
    shared = 0
    for f in features:
        shared += sum(len(f[f"ctx.{c}"]) for c in contexts)
        shared += sum(len(view_sequence(f, v)[1]) for v in views)
    out["shared_context"] = shared / n
    return {k: round(v, 1) for k, v in out.items()} if rounded else out


def batch_tokens(batch: dict[str, Any]) -> dict[str, int]:
    """Work tokens (views as separate sequences), processed non-pad tokens, padded tokens (rows x
    width) and response tokens of a collated batch."""
    packed = "pred_index" in batch
    processed = int(batch.get("bench.processed", int(batch["attention_mask"].sum()) if not packed else 0))
    return {
        "nonpad": int(batch.get("bench.tokens", processed)),
        "processed": processed,
        "padded": int(batch["input_ids"].numel()),
        "response": int(batch["target_ids"].numel() if packed else batch["loss_mask"].sum()),
        "rows": int(batch["input_ids"].shape[0]),
    }


def gsm8k_prompts(n: int = 16) -> list[dict[str, Any]]:
    from aries_lit.prompts.sources import GSM8K

    items = GSM8K(path=str(GSM8K_TEST), limit=n).load()
    return [{"id": it["id"], "prompt": it["prompt"], "answer": it["solution"]} for it in items]


# --------------------------------------------------------------------------- aries_lit training step


@dataclass
class StepLog:
    seconds: float
    tokens: int
    loss: float
    #: tokens the model actually ran (fewer than ``tokens`` with shared contexts); None = ``tokens``
    processed: int | None = None


@dataclass
class AriesStep:
    """One aries_lit training step, as ``PolicyModule._step`` + Lightning's optimizer step do it.

    policy forward over all views of the loss (``PolicyModule.view_logps``), the reference's log-probs
    (``PolicyModule.reference_logps`` on the fly, or cached ``ref.<view>`` columns), the loss object,
    backward, ``AdamW.step`` and ``zero_grad``. bf16 = ``torch.autocast("cpu", bfloat16)`` around the
    forward passes and the loss, backward outside it (as Lightning's ``bf16-mixed``).
    """

    module: Any
    optimizer: torch.optim.Optimizer
    batches: list[dict[str, Any]]
    precision: str
    log: list[StepLog] = field(default_factory=list)
    #: a loss object to use instead of ``module.loss`` (several losses sharing one policy)
    loss: Any = None

    def __call__(self) -> float:
        from aries_lit.data.collator import reference_from_batch
        from aries_lit.losses import ViewLogProbs

        batch = self.batches[len(self.log) % len(self.batches)]
        module = self.module
        loss = self.loss if self.loss is not None else module.loss
        t0 = time.perf_counter()
        with autocast(self.precision):
            policy, counts = module.view_logps(module.policy, batch)
            reference = None
            if loss.requires_reference():
                reference = reference_from_batch(batch)
                if reference is None:
                    reference = module.reference_logps(batch)
            out = loss(ViewLogProbs(policy=policy, reference=reference, num_tokens=counts))
        out.loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        counts = batch_tokens(batch)
        self.log.append(StepLog(seconds, counts["nonpad"], float(out.loss.detach()), counts["processed"]))
        return seconds


def aries_optimizer(policy: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW exactly as ``PolicyModule.configure_optimizers`` builds it (weight decay 0, lr 1e-6)."""
    params = [p for p in policy.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.0},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=LR)


def attach_cached_reference(module: Any, batches: list[dict[str, Any]], precision: str) -> None:
    """Put ``ref.<view>`` reference log-probs in each batch (as the reference cache does) and drop the
    reference model, so the timed step runs no reference forward."""
    for batch in batches:
        with autocast(precision):
            logps = module.reference_logps(batch)
        for view, values in logps.items():
            batch[f"ref.{view}"] = values.detach().float()
    module.release_reference()


def summarize_steps(
    log: list[StepLog], params: int, precision: str, reference_on_the_fly: bool, warmup: int = WARMUP
) -> dict[str, Any]:
    """s/step, tokens/s, model FLOP/s and MFU over the measured (post warm-up) steps."""
    measured = log[warmup:] or log
    seconds = sum(s.seconds for s in measured)
    tokens = sum(s.tokens for s in measured)
    processed = sum(s.tokens if s.processed is None else s.processed for s in measured)
    steps = len(measured)
    flops = model_flops(params, processed, processed if reference_on_the_fly else 0)
    # the peak moves with the machine's load: measure it again now and keep the best seen
    set_peak(precision, matmul_flops(torch.bfloat16 if precision == "bf16" else torch.float32, repeats=5)[0])
    peak = peak_flops(precision)
    achieved = flops / seconds
    return {
        "steps_measured": steps,
        "s_per_step": round(seconds / steps, 4),
        "min_s_per_step": round(min(s.seconds for s in measured), 4),
        "step_seconds": [round(s.seconds, 4) for s in measured],
        "tokens_per_step": round(tokens / steps, 1),
        "processed_tokens_per_step": round(processed / steps, 1),
        "tokens_per_s": round(tokens / seconds, 2),
        "pairs_per_s": round(PAIRS_PER_STEP * steps / seconds, 4),
        "params": params,
        "model_gflops_per_step": round(flops / steps / 1e9, 2),
        "achieved_gflops": round(achieved / 1e9, 2),
        "peak_gflops": round(peak / 1e9, 2),
        "mfu": round(achieved / peak, 4),
        "losses": [round(s.loss, 6) for s in log],
    }


def aries_train_benchmark(
    benchmark: Any,
    model_dir: Path,
    model_label: str,
    loss: str,
    precision: str,
    reference: str,
    rounds: int = ROUNDS,
    warmup: int = WARMUP,
    layout: str = "shared",
) -> dict[str, Any]:
    """Time :class:`AriesStep` on the benchmark pairs and store the figures in ``benchmark.extra_info``."""
    from aries_lit.modules.policy import PolicyModule

    torch.manual_seed(0)
    module = PolicyModule(model=str(model_dir), loss=loss, lr=LR)
    module.configure_model()
    views = module.views
    records = select_pairs(module.tokenizer, PAIRS_PER_STEP * steps_needed())
    features = tokenize(module.tokenizer, records, views)
    batches = make_batches(features, views, module.tokenizer.pad_token_id, layout)
    if reference == "cached":
        attach_cached_reference(module, batches, precision)
    elif module.loss.requires_reference():
        module.reference_model()  # loaded before timing
    step = AriesStep(module, aries_optimizer(module.policy), batches, precision)
    benchmark.pedantic(step, rounds=rounds, warmup_rounds=warmup, iterations=1)
    info = summarize_steps(
        step.log,
        num_params(module.policy),
        precision,
        reference_on_the_fly=reference == "on_the_fly",
        warmup=warmup,
    )
    per_batch = [batch_tokens(batches[i % len(batches)]) for i in range(len(step.log))][warmup:]
    info.update(
        {
            "framework": "aries_lit",
            "driver": "minimal loop over PolicyModule.view_logps/reference_logps + loss object + AdamW",
            "model": model_label,
            "loss": loss,
            "precision": precision,
            "reference": reference,
            "layout": layout,
            "views": list(views),
            "pairs_per_step": PAIRS_PER_STEP,
            "max_length": MAX_LENGTH,
            "max_context_length": MAX_CONTEXT_LENGTH,
            "padded_tokens_per_step": sum(b["padded"] for b in per_batch) / max(1, len(per_batch)),
            "response_tokens_per_step": sum(b["response"] for b in per_batch) / max(1, len(per_batch)),
            "view_tokens_per_pair": view_tokens_per_pair(features, views),
        }
    )
    benchmark.extra_info.update(info)
    release(module, step)
    return info


def release(module: Any, step: AriesStep | None = None) -> None:
    """Drop the models, optimizer state and batches of a finished benchmark (memory for the next one)."""
    module.release_reference()
    module.policy = None
    if step is not None:
        step.optimizer.state.clear()
        step.optimizer.param_groups.clear()
        step.batches = []


def interleaved_losses_benchmark(
    benchmark: Any,
    model_dir: Path,
    model_label: str,
    losses: tuple[str, ...],
    precision: str,
    reference: str,
    rounds: int = ROUNDS,
    warmup: int = WARMUP,
) -> dict[str, Any]:
    """One step of each loss per round, on one shared policy/reference/optimizer, the order rotating every
    round: the losses' costs are compared under the same machine load. (The shared policy moves a little
    with every step, lr 1e-6; that does not change the work of a step.) ``name@separate`` runs a loss
    with every view its own sequence instead of the default shared contexts."""
    from aries_lit.losses import LOSSES
    from aries_lit.modules.policy import PolicyModule

    torch.manual_seed(0)
    module = PolicyModule(model=str(model_dir), loss=losses[0], lr=LR)
    module.configure_model()
    optimizer = aries_optimizer(module.policy)
    records = select_pairs(module.tokenizer, PAIRS_PER_STEP * steps_needed())
    steps: dict[str, AriesStep] = {}
    views_of: dict[str, dict[str, float]] = {}
    for name in losses:
        loss_name, _, layout = name.partition("@")
        loss = LOSSES.build(loss_name)
        views = loss.required_views()
        features = tokenize(module.tokenizer, records, views)
        batches = make_batches(features, views, module.tokenizer.pad_token_id, layout or "shared")
        if reference == "cached":
            attach_cached_reference(module, batches, precision)
        steps[name] = AriesStep(module, optimizer, batches, precision, loss=loss)
        views_of[name] = view_tokens_per_pair(features, views)
    if reference == "on_the_fly":
        module.reference_model()  # loaded before timing
    done = [0]

    def one_round() -> None:
        k = done[0] % len(losses)
        for name in losses[k:] + losses[:k]:
            steps[name]()
        done[0] += 1

    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=warmup, iterations=1)
    params = num_params(module.policy)
    per_loss = {}
    for name, step in steps.items():
        info = summarize_steps(step.log, params, precision, reference == "on_the_fly", warmup=warmup)
        info["view_tokens_per_pair"] = views_of[name]
        per_loss[name] = info
    base = per_loss[losses[0]]
    ratios = {
        name: {
            "time": round(info["s_per_step"] / base["s_per_step"], 3),
            "per_step": [round(b / a, 3) for a, b in zip(base["step_seconds"], info["step_seconds"])],
            "view_tokens": round(info["processed_tokens_per_step"] / base["processed_tokens_per_step"], 3),
        }
        for name, info in per_loss.items()
        if name != losses[0]
    }
    out = {
        "framework": "aries_lit interleaved losses",
        "driver": "one shared PolicyModule/AdamW; a round = one step of each loss, order rotating",
        "model": model_label,
        "precision": precision,
        "reference": reference,
        "pairs_per_step": PAIRS_PER_STEP,
        "max_length": MAX_LENGTH,
        "max_context_length": MAX_CONTEXT_LENGTH,
        "per_loss": per_loss,
        "ratios_vs_" + losses[0]: ratios,
    }
    benchmark.extra_info.update(out)
    for step in steps.values():
        step.batches = []
    release(module)
    optimizer.state.clear()
    return out
