"""Training throughput of aries_lit's ``dpo``, ``aries`` (refine-MSE) and ``bt_aries`` losses.

A step is what ``PolicyModule._step`` plus Lightning's optimizer step do, driven by a minimal
loop (no Trainer, so no logging/callback overhead is timed): the policy forward over every view
the loss needs (``PolicyModule.view_logps``), the reference's log-probs (on the fly through
``PolicyModule.reference_logps``, or cached ``ref.<view>`` columns as the reference cache puts
them in the batch), the loss object, backward, ``AdamW.step`` (lr 1e-6) and ``zero_grad``.

Data: HH-RLHF harmless test pairs (``bench_utils.select_pairs``), 4 pairs per step, max length
256. tokens/s counts the non-pad tokens of every row the policy runs (for DPO: chosen + rejected).
"""

from __future__ import annotations

import time

import pytest
import torch
from bench_utils import (
    MAX_CONTEXT_LENGTH,
    MAX_LENGTH,
    PAIRS_PER_STEP,
    ROUNDS,
    SLOW_ROUNDS,
    aries_train_benchmark,
    interleaved_losses_benchmark,
    make_batches,
    num_params,
    select_pairs,
    steps_needed,
    tokenize,
    view_tokens_per_pair,
)

LOSS_NAMES = ["dpo", "aries", "bt_aries"]


# each (precision, reference) runs dpo, aries, bt_aries back to back, so the ARIES/DPO ratio is
# measured under about the same machine load
CASES = [
    (model, loss, precision, reference)
    for model in ("tiny", "smollm2")
    for precision in ("fp32", "bf16")
    for reference in ("on_the_fly", "cached")
    for loss in LOSS_NAMES
]


@pytest.mark.parametrize("model,loss,precision,reference", CASES)
def test_train_step(benchmark, get_model_dir, model: str, loss: str, precision: str, reference: str) -> None:
    if model == "tiny":
        rounds = max(ROUNDS, 8)  # millisecond steps: more rounds, same data
    elif loss == "dpo":
        rounds = ROUNDS
    else:
        rounds = SLOW_ROUNDS
    aries_train_benchmark(benchmark, get_model_dir(model), model, loss, precision, reference, rounds)


@pytest.mark.parametrize(
    "model,precision,reference",
    [(m, p, r) for m in ("tiny", "smollm2") for p in ("fp32", "bf16") for r in ("on_the_fly", "cached")],
)
def test_losses_interleaved(benchmark, get_model_dir, model: str, precision: str, reference: str) -> None:
    """``dpo``, ``aries``, ``bt_aries`` steps alternated on one policy (the fair ARIES/DPO ratio on a busy
    machine); a round is one step of each, the order rotating. With cached reference log-probs also
    ``aries@separate``: the six views as six sequences, the baseline of the shared-context target."""
    rounds = max(ROUNDS, 8) if model == "tiny" else SLOW_ROUNDS
    losses = tuple(LOSS_NAMES) + (("aries@separate",) if reference == "cached" else ())
    interleaved_losses_benchmark(benchmark, get_model_dir(model), model, losses, precision, reference, rounds)


@pytest.mark.parametrize("model", ["tiny", "smollm2"])
def test_view_token_counts(benchmark, get_model_dir, model: str) -> None:
    """Tokenize + collate the benchmark pairs for all six views (timed), and the view-token counts per
    pair at max length 256 (the training benchmarks) and 1024 (context 768, the paper-like setting)."""
    from aries_lit.losses import ALL_VIEWS, DIRECT_CHOSEN, DIRECT_REJECTED
    from aries_lit.models import load_tokenizer

    tok = load_tokenizer(str(get_model_dir(model)))
    records = select_pairs(tok, PAIRS_PER_STEP * steps_needed())

    def run() -> None:
        make_batches(tokenize(tok, records, ALL_VIEWS), ALL_VIEWS, tok.pad_token_id)

    t0 = time.perf_counter()
    benchmark.pedantic(run, rounds=3, iterations=1)
    dpo_views = (DIRECT_CHOSEN, DIRECT_REJECTED)
    counts = {}
    for max_length, max_ctx in ((MAX_LENGTH, MAX_CONTEXT_LENGTH), (1024, 768)):
        dpo = view_tokens_per_pair(tokenize(tok, records, dpo_views, max_length, max_ctx), dpo_views)
        aries = view_tokens_per_pair(tokenize(tok, records, ALL_VIEWS, max_length, max_ctx), ALL_VIEWS)
        counts[str(max_length)] = {
            "dpo": dpo["separate"],
            "aries_separate": aries["separate"],
            "aries_shared_context": aries["shared_context"],
            "aries_per_view": {v: aries[v] for v in ALL_VIEWS},
            "aries_over_dpo_separate": round(aries["separate"] / dpo["separate"], 3),
            "aries_over_dpo_shared": round(aries["shared_context"] / dpo["separate"], 3),
        }
    benchmark.extra_info.update(
        {
            "model": model,
            "pairs": len(records),
            "view_tokens_per_pair": counts,
            "wall_s": round(time.perf_counter() - t0, 3),
        }
    )


@pytest.mark.parametrize("fused", [False, True])
def test_adamw_step(benchmark, get_model_dir, fused: bool) -> None:
    """AdamW step alone on SmolLM2's parameters: aries_lit's default (for-loop) vs ``fused=True``."""
    from aries_lit.models import load_causal_lm

    model = load_causal_lm(str(get_model_dir("smollm2")))
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opt = torch.optim.AdamW(params, lr=1e-6, fused=fused)
    benchmark.pedantic(opt.step, rounds=5, warmup_rounds=1, iterations=1)
    benchmark.extra_info.update({"fused": fused, "params": num_params(model)})
