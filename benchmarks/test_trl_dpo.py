"""TRL's ``DPOTrainer`` side by side with aries_lit's ``dpo`` (skipped without ``trl``).

Same model (SmolLM2-135M-Instruct, fp32 weights), same pairs in the same order (the
``bench_utils.select_pairs`` HH-RLHF pairs, 4 per step, sequential sampler), same token
sequences, max length 256 (``keep_start``), AdamW lr 1e-6 (``optim="adamw_torch"``, the same
``torch.optim.AdamW`` implementation aries_lit uses), precision (fp32, or bf16 autocast:
``bf16=True``), gradient checkpointing off (TRL's default is on), 2 threads.

TRL gets the data as plain strings: ``prompt`` = the chat context aries_lit renders
(``chat_context``), ``chosen``/``rejected`` = the response + ``<|im_end|>`` (TRL appends the eos
only when missing, and ``<|im_end|>`` is SmolLM2's eos). Left to apply the chat template itself
(conversational records), TRL would add the template's ``"\\n"`` after ``<|im_end|>`` to every
completion; :func:`test_trl_matches_aries_lit_dpo` reports that difference.

TRL runs its own ``Trainer.train()`` loop in a thread; a callback holds each step at
``on_step_begin`` until the benchmark releases it and signals at ``on_step_end``, so a round is
one real TRL optimizer step (forward of chosen+rejected, reference forward or cached log-probs,
metrics, backward, grad norm/clip, AdamW, scheduler, zero_grad), data loading excluded as for
aries_lit.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from bench_utils import (
    LR,
    MAX_CONTEXT_LENGTH,
    MAX_LENGTH,
    PAIRS,
    PAIRS_PER_STEP,
    ROUNDS,
    THREADS,
    WARMUP,
    AriesStep,
    StepLog,
    aries_optimizer,
    aries_train_benchmark,
    attach_cached_reference,
    benchmark_pairs,
    make_batches,
    num_params,
    release,
    steps_needed,
    summarize_steps,
    tokenize,
)

trl = pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

DPO_VIEWS = ("direct/chosen", "direct/rejected")


# --------------------------------------------------------------------------- set-up


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir: Path) -> Any:
    from aries_lit.models import load_tokenizer

    return load_tokenizer(str(smollm2_dir))


@pytest.fixture(scope="module")
def records(tokenizer) -> list[dict[str, Any]]:
    return benchmark_pairs(tokenizer, PAIRS_PER_STEP * steps_needed())


def trl_rows(
    tokenizer: Any, records: list[dict[str, Any]], conversational: bool = False
) -> list[dict[str, Any]]:
    from aries_lit.data.views import record_prompt
    from aries_lit.prompts.templates import as_messages, chat_context, end_of_turn

    rows = []
    for r in records:
        prompt = record_prompt(r)
        if conversational:
            rows.append(
                {
                    "prompt": as_messages(prompt),
                    "chosen": [{"role": "assistant", "content": r["chosen"]}],
                    "rejected": [{"role": "assistant", "content": r["rejected"]}],
                }
            )
        else:
            eot = end_of_turn(tokenizer)
            rows.append(
                {
                    "prompt": chat_context(tokenizer, prompt),
                    "chosen": r["chosen"] + eot,
                    "rejected": r["rejected"] + eot,
                }
            )
    return rows


def dpo_config(out_dir: Path, precision: str, precompute: bool, max_steps: int) -> Any:
    from trl import DPOConfig

    return DPOConfig(
        output_dir=str(out_dir),
        per_device_train_batch_size=PAIRS_PER_STEP,
        gradient_accumulation_steps=1,
        learning_rate=LR,
        lr_scheduler_type="constant",
        optim="adamw_torch",
        weight_decay=0.0,
        max_length=MAX_LENGTH,
        truncation_mode="keep_start",
        pad_to_multiple_of=8,
        beta=0.1,
        loss_type=["sigmoid"],
        bf16=precision == "bf16",
        fp16=False,
        gradient_checkpointing=False,
        precompute_ref_log_probs=precompute,
        use_cpu=True,
        max_steps=max_steps,
        train_sampling_strategy="sequential",
        dataloader_num_workers=0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=0,
    )


def make_trainer(
    policy_dir: Path,
    ref_dir: Path | None,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    out_dir: Path,
    precision: str,
    precompute: bool,
    max_steps: int,
    callbacks=None,
) -> Any:
    from trl import DPOTrainer

    from aries_lit.models import load_causal_lm

    model = load_causal_lm(str(policy_dir), dtype="float32")
    ref = load_causal_lm(str(ref_dir), dtype="float32") if ref_dir is not None else None
    return DPOTrainer(
        model=model,
        ref_model=ref,
        args=dpo_config(out_dir, precision, precompute, max_steps),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=callbacks,
    )


@pytest.fixture(scope="module")
def perturbed_dir(smollm2_dir: Path, tmp_path_factory) -> Path:
    """SmolLM2 with 1% Gaussian noise on every weight: a policy that differs from the reference, so the
    DPO loss is not log(2) and depends on every token of the batch."""
    from aries_lit.models import load_causal_lm, load_tokenizer

    out = tmp_path_factory.mktemp("smollm2_perturbed")
    model = load_causal_lm(str(smollm2_dir))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1:
                p.add_(torch.randn(p.shape, generator=gen) * p.float().std() * 0.01)
    model.save_pretrained(str(out))
    load_tokenizer(str(smollm2_dir)).save_pretrained(str(out))
    return out


def free_trainer(trainer: Any) -> None:
    """Drop a finished trainer's models and optimizer (memory for the next benchmark)."""
    if getattr(trainer, "optimizer", None) is not None:
        trainer.optimizer.state.clear()
    trainer.model = trainer.model_wrapped = trainer.ref_model = trainer.optimizer = None
    trainer.accelerator.free_memory()


def trl_batches(trainer: Any, n_steps: int) -> list[dict[str, Any]]:
    ds = trainer.train_dataset
    return [
        trainer.data_collator([ds[j] for j in range(i * PAIRS_PER_STEP, (i + 1) * PAIRS_PER_STEP)])
        for i in range(n_steps)
    ]


# --------------------------------------------------------------------------- equivalence


def test_trl_matches_aries_lit_dpo(
    benchmark, smollm2_dir, perturbed_dir, tokenizer, records, tmp_path
) -> None:
    """Same batch, same policy (perturbed) and reference: token sequences and DPO loss must agree."""
    from aries_lit.data.collator import reference_from_batch
    from aries_lit.losses import ViewLogProbs
    from aries_lit.modules.policy import PolicyModule

    rows = trl_rows(tokenizer, records)
    trainer = make_trainer(perturbed_dir, smollm2_dir, tokenizer, rows, tmp_path / "trl", "fp32", False, 1)
    trl_batch = trl_batches(trainer, 1)[0]

    module = PolicyModule(model=str(perturbed_dir), reference=str(smollm2_dir), loss="dpo", lr=LR)
    module.configure_model()
    feats = tokenize(module.tokenizer, records[:PAIRS_PER_STEP], module.views)
    ours = make_batches(feats, module.views, module.tokenizer.pad_token_id, "separate")[0]
    shared = make_batches(feats, module.views, module.tokenizer.pad_token_id, "shared")[0]

    # token sequences (rows: chosen x4 then rejected x4 in both)
    same_shape = tuple(trl_batch["input_ids"].shape) == tuple(ours["input_ids"].shape)
    row_mismatch = []
    for i in range(ours["input_ids"].shape[0]):
        a = ours["input_ids"][i][ours["attention_mask"][i].bool()].tolist()
        b = trl_batch["input_ids"][i][trl_batch["attention_mask"][i].bool()].tolist()
        ma = ours["loss_mask"][i][ours["attention_mask"][i].bool()].tolist()
        mb = trl_batch["completion_mask"][i][trl_batch["attention_mask"][i].bool()].bool().tolist()
        if a != b or ma != mb:
            row_mismatch.append(i)

    # TRL's own chat-template path (conversational records): how its completions differ
    conv = trainer._prepare_dataset(
        Dataset.from_list(trl_rows(tokenizer, records[:PAIRS_PER_STEP], True)),
        tokenizer,
        trainer.args,
        "conversational",
    )
    conv_extra = [
        len(conv[i]["chosen_ids"]) - len(trainer.train_dataset[i]["chosen_ids"])
        for i in range(PAIRS_PER_STEP)
    ]
    conv_prompt_same = all(
        conv[i]["prompt_ids"] == trainer.train_dataset[i]["prompt_ids"] for i in range(PAIRS_PER_STEP)
    )

    results: dict[str, Any] = {}

    def both_losses() -> None:
        with torch.no_grad():
            trainer.model.train()
            trl_loss = trainer.compute_loss(trainer.model, dict(trl_batch))
            policy, counts = module.view_logps(module.policy, ours)
            reference = reference_from_batch(ours) or module.reference_logps(ours)
            out = module.loss(ViewLogProbs(policy=policy, reference=reference, num_tokens=counts))
            p2, c2 = module.view_logps(module.policy, shared)  # the default layout: x once per pair
            r2 = reference_from_batch(shared) or module.reference_logps(shared)
            out_shared = module.loss(ViewLogProbs(policy=p2, reference=r2, num_tokens=c2))
        metrics = trainer._metrics["train"]
        results.update(
            trl_loss=float(trl_loss),
            aries_lit_loss=float(out.loss),
            aries_lit_loss_shared_context=float(out_shared.loss),
            trl_logps_chosen=metrics["logps/chosen"][-1],
            aries_lit_logps_chosen=float(policy["direct/chosen"].mean()),
            trl_logps_rejected=metrics["logps/rejected"][-1],
            aries_lit_logps_rejected=float(policy["direct/rejected"].mean()),
            trl_rewards_margin=metrics["rewards/margins"][-1],
            aries_lit_rewards_margin=float(out.metrics["rewards/margin"].mean()),
        )

    benchmark.pedantic(both_losses, rounds=1, iterations=1)
    results.update(
        loss_abs_diff=abs(results["trl_loss"] - results["aries_lit_loss"]),
        loss_abs_diff_shared_context=abs(results["trl_loss"] - results["aries_lit_loss_shared_context"]),
        logps_chosen_abs_diff=abs(results["trl_logps_chosen"] - results["aries_lit_logps_chosen"]),
        same_batch_shape=same_shape,
        mismatched_rows=row_mismatch,
        nonpad_tokens=int(ours["attention_mask"].sum()),
        conversational_extra_completion_tokens=conv_extra,
        conversational_prompt_ids_identical=conv_prompt_same,
        log2=math.log(2),
    )
    print(
        "\nDPO loss on the same batch:",
        {
            k: results[k]
            for k in ("trl_loss", "aries_lit_loss", "loss_abs_diff", "aries_lit_loss_shared_context")
        },
    )
    benchmark.extra_info.update(results)
    free_trainer(trainer)
    release(module)
    assert not row_mismatch, f"token sequences differ in rows {row_mismatch}"
    assert results["loss_abs_diff"] < 1e-3, results
    assert results["loss_abs_diff_shared_context"] < 1e-3, results


# --------------------------------------------------------------------------- throughput


class StepGate(TrainerCallback):
    """Lets TRL's ``train()`` (in another thread) run one optimizer step per :meth:`release_one`."""

    def __init__(self) -> None:
        self.go = threading.Semaphore(0)
        self.done = threading.Semaphore(0)
        self.times: list[float] = []
        self.t0 = 0.0
        self.error: BaseException | None = None
        self.parked = threading.Event()  # set while TRL waits for the next release (or has ended)

    def on_step_begin(self, args, state, control, **kwargs):
        self.parked.set()
        self.go.acquire()
        self.parked.clear()
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.t0)
        self.done.release()

    def on_train_end(self, args, state, control, **kwargs):
        self.parked.set()

    def release_one(self) -> None:
        """Run one TRL step; return once TRL has finished its between-step work (logging, next batch)."""
        self.parked.wait(timeout=3600)
        self.go.release()
        if not self.done.acquire(timeout=3600):
            raise TimeoutError("TRL step did not finish within an hour")
        if self.error is not None:
            raise self.error
        self.parked.wait(timeout=3600)


def start_trl_training(trainer: Any, gate: StepGate) -> threading.Thread:
    """Run TRL's own ``train()`` in a daemon thread, paced by ``gate``; an error it raises is handed to
    the benchmark thread through the gate."""

    def train() -> None:
        torch.set_num_threads(THREADS)
        try:
            trainer.train()
        except BaseException as err:  # noqa: BLE001 - handed to the benchmark thread
            gate.error = err
            gate.parked.set()
            gate.done.release()

    thread = threading.Thread(target=train, daemon=True)
    thread.start()
    return thread


SIDE_BY_SIDE = [
    (precision, reference, framework)
    for precision, reference in (
        ("fp32", "on_the_fly"),
        ("bf16", "on_the_fly"),
        ("fp32", "cached"),
        ("bf16", "cached"),
    )
    for framework in ("trl", "aries_lit")
]


@pytest.mark.parametrize("precision,reference,framework", SIDE_BY_SIDE)
def test_dpo_side_by_side(
    benchmark, smollm2_dir, tokenizer, records, tmp_path, precision: str, reference: str, framework: str
) -> None:
    """Each TRL configuration, then aries_lit's ``dpo`` on the same configuration right after it (so the
    pair runs under about the same machine load)."""
    if framework == "aries_lit":
        aries_train_benchmark(benchmark, smollm2_dir, "smollm2", "dpo", precision, reference)
        return
    rows = trl_rows(tokenizer, records)
    n_steps = steps_needed()
    gate = StepGate()
    precompute = reference == "cached"
    trainer = make_trainer(
        smollm2_dir,
        None if precompute else smollm2_dir,
        tokenizer,
        rows,
        tmp_path / "trl",
        precision,
        precompute,
        n_steps,
        callbacks=[gate],
    )
    tokens = [int(b["attention_mask"].sum()) for b in trl_batches(trainer, n_steps)]

    thread = start_trl_training(trainer, gate)
    benchmark.pedantic(gate.release_one, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    thread.join(timeout=600)
    log = [StepLog(s, t, float("nan")) for s, t in zip(gate.times, tokens)]
    info = summarize_steps(log, num_params(trainer.model), precision, reference_on_the_fly=not precompute)
    info.pop("losses")
    history = [h for h in trainer.state.log_history if "loss" in h]
    info.update(
        {
            "framework": "trl",
            "trl_version": trl.__version__,
            "driver": "trl.DPOTrainer.train() (per-step gate callback)",
            "model": "smollm2",
            "loss": "dpo",
            "precision": precision,
            "reference": reference,
            "pairs_per_step": PAIRS_PER_STEP,
            "max_length": MAX_LENGTH,
            "max_context_length": MAX_CONTEXT_LENGTH,
            "losses": [round(h["loss"], 6) for h in history],
            "tokens_per_step_all": tokens,
        }
    )
    benchmark.extra_info.update(info)
    free_trainer(trainer)


INTERLEAVED = [("fp32", "on_the_fly"), ("bf16", "on_the_fly"), ("fp32", "cached"), ("bf16", "cached")]


@pytest.mark.parametrize("precision,reference", INTERLEAVED)
def test_dpo_interleaved(
    benchmark, smollm2_dir, tokenizer, records, tmp_path, precision: str, reference: str
) -> None:
    """TRL and aries_lit steps alternated on the same batch sequence (the order flips every round), so
    both see the same machine load: the fairest ratio on a shared machine. A round = one step of each."""
    from aries_lit.modules.policy import PolicyModule

    n_steps = steps_needed()
    precompute = reference == "cached"
    gate = StepGate()
    trainer = make_trainer(
        smollm2_dir,
        None if precompute else smollm2_dir,
        tokenizer,
        trl_rows(tokenizer, records),
        tmp_path / "trl",
        precision,
        precompute,
        n_steps,
        callbacks=[gate],
    )
    trl_collated = trl_batches(trainer, n_steps)
    trl_tokens = [int(b["attention_mask"].sum()) for b in trl_collated]
    # pad positions TRL runs: with uniform pairs every row of a batch has one length, so only TRL's
    # own alignment (rows padded to a multiple of 8) is left and avoiding padding gains nothing
    trl_padding = sum(int(b["attention_mask"].numel()) for b in trl_collated) - sum(trl_tokens)
    if PAIRS == "uniform":
        rows = [set(b["attention_mask"].sum(1).tolist()) for b in trl_collated]
        assert all(len(r) == 1 for r in rows), f"uniform pairs, yet TRL's rows differ in length: {rows}"

    torch.manual_seed(0)
    module = PolicyModule(model=str(smollm2_dir), loss="dpo", lr=LR)
    module.configure_model()
    feats = tokenize(module.tokenizer, records, module.views)
    batches = make_batches(feats, module.views, module.tokenizer.pad_token_id)
    if precompute:
        attach_cached_reference(module, batches, precision)
    else:
        module.reference_model()
    ours = AriesStep(module, aries_optimizer(module.policy), batches, precision)
    assert [b["bench.tokens"] for b in batches] == trl_tokens  # the same work; x runs once per pair

    thread = start_trl_training(trainer, gate)

    def one_round() -> None:
        if len(ours.log) % 2 == 0:
            gate.release_one()
            ours()
        else:
            ours()
            gate.release_one()

    benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    thread.join(timeout=600)
    params = num_params(module.policy)
    on_the_fly = not precompute
    trl_info = summarize_steps(
        [StepLog(s, t, float("nan")) for s, t in zip(gate.times, trl_tokens)], params, precision, on_the_fly
    )
    our_info = summarize_steps(ours.log, params, precision, on_the_fly)
    trl_info.pop("losses")
    benchmark.extra_info.update(
        {
            "framework": "trl+aries_lit interleaved",
            "model": "smollm2",
            "loss": "dpo",
            "precision": precision,
            "reference": reference,
            "pairs": PAIRS,
            "trl_padding_tokens": trl_padding,
            "pairs_per_step": PAIRS_PER_STEP,
            "max_length": MAX_LENGTH,
            "trl": trl_info,
            "aries_lit": our_info,
            "ratio_tokens_per_s": round(our_info["tokens_per_s"] / trl_info["tokens_per_s"], 3),
            "ratio_min_step": round(trl_info["min_s_per_step"] / our_info["min_s_per_step"], 3),
            "per_step_ratios": [
                round(t / a.seconds, 3) for t, a in zip(gate.times[WARMUP:], ours.log[WARMUP:])
            ],
        }
    )
    free_trainer(trainer)
    release(module, ours)
