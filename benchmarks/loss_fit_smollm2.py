"""Every registered loss trained by ``aries-lit fit`` on SmolLM2-135M-Instruct, alone and in ARIES's
preference slot: a few optimizer steps each (default: 4 steps of 2 pairs, 128 tokens a sequence),
from the same fit config (only the loss, and for group
and unpaired losses the module and data, differ), with each step's wall time and the loss.

What it shows: every loss trains a real model from config, and what a whole training step with it
costs against DPO on the same batches (the loss itself is a few elementwise ops; the difference is
the reference model, which reference-free losses skip, and the views the loss reads: ARIES reads
four per pair, DPO two). The first step (warm-up) is left out of the mean.

    aries-lit prepare-model --source smollm2
    PYTHONPATH=. python benchmarks/loss_fit_smollm2.py --out benchmarks/results/loss_fit_smollm2.json
    PYTHONPATH=. python benchmarks/loss_fit_smollm2.py --only dpo,orpo,aries:kto   # a few

Each run's JSON record: ``{"name", "loss", "module", "steps", "step_seconds": [...],
"mean_step_seconds", "x_dpo", "losses": [...], "finite": bool}``; the whole file also names the CPU
and the torch matmul rates measured in the same run (fp32 and bf16 at 1024^3).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from bench_utils import cpu_model, matmul_flops  # noqa: E402

from aries_lit.core.io import write_json_atomic  # noqa: E402
from aries_lit.losses import LOSSES, GroupLoss, PreferenceLoss  # noqa: E402
from aries_lit.pipeline.lightning_cli import fit_in_process  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODEL = "~/.cache/aries_lit/smollm2-135m-instruct"
#: pair data every pairwise loss trains on (packaged with aries_lit: HH-RLHF harmless test pairs)
PAIRS = {"train": "aries_lit:hh_rlhf/harmless_base_test.jsonl.gz", "format": "hh", "on_error": "skip"}
#: group data (arithmetic answers with verifier rewards) of the group losses
GROUPS = str(REPO / "configs/tiny/data/grpo_groups.jsonl")
#: unpaired data (the same answers, each labelled by the verifier) of ``kto:unpaired``
UNPAIRED = str(REPO / "configs/tiny/data/kto_unpaired.jsonl")
#: losses that are composites or need another module: not swept alone
COMPOSITES = ("aries", "bt_aries")
NOT_POLICY = ("bradley_terry",)  # a reward-model loss (RewardModule)
#: SFT and the refinement-only losses: not preference losses
NOT_PREFERENCE = ("sft", "aries_sft", "refine_mse", "bt_refine")


class StepTimes(L.Callback):
    """Wall time and loss of every training step."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.losses: list[float] = []
        self._t0 = 0.0

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.seconds.append(time.perf_counter() - self._t0)
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach()))


#: ``(seconds, losses)`` of the fit that is running (the fit config names this module's class).
#: Only the lists are kept: a callback object outlives its trainer here, and the trainer holds the
#: model, its reference and the optimizer state (2 GB a SmolLM2 run).
CURRENT: list[tuple[list[float], list[float]]] = []


class CurrentStepTimes(StepTimes):
    def __init__(self) -> None:
        super().__init__()
        CURRENT.append((self.seconds, self.losses))


def sweep_names() -> list[str]:
    """Every registered policy loss (pairwise and group) alone, then each pairwise one (and grpo)
    in ARIES's preference slot as ``aries:<name>``."""
    alone, slot = [], []
    for name in sorted(LOSSES.names()):
        if name in (*COMPOSITES, *NOT_POLICY, *NOT_PREFERENCE):
            continue
        loss = LOSSES.build(name)
        if isinstance(loss, (PreferenceLoss, GroupLoss)):
            alone.append(name)
            slot.append(f"aries:{name}")
    return [*alone, "kto:unpaired", *slot]


def fit_config(
    name: str, steps: int, batch: int, root: Path, model: str, max_length: int = 128
) -> dict[str, Any]:
    """The fit config of one run: ``name`` is a loss name, ``aries:<preference loss>`` or
    ``kto:unpaired`` (KTO on unpaired records, as many rows a step as a pair batch's two views)."""
    pref = name.split(":", 1)[1] if name.startswith("aries:") else name.split(":", 1)[0]
    is_group = isinstance(LOSSES.build(pref), GroupLoss)
    loss: Any = pref
    if name.startswith("aries:"):
        loss = {"class_path": "aries", "init_args": {"preference": pref, "alpha": 0.8}}
    if name == "kto:unpaired":
        module = "aries_lit.modules.UnpairedPolicyModule"
        data = {
            "class_path": "aries_lit.data.UnpairedDataModule",
            "init_args": {"train": UNPAIRED, "batch_size": 2 * batch, "max_length": max_length,
                          "max_context_length": max_length * 3 // 4, "shuffle": False},
        }  # fmt: skip
    elif is_group:
        module = "aries_lit.modules.GroupPolicyModule"
        data = {
            "class_path": "aries_lit.data.GroupDataModule",
            "init_args": {"train": GROUPS, "batch_size": max(1, batch // 2), "max_length": max_length,
                          "max_context_length": max_length * 3 // 4, "shuffle": False},
        }  # fmt: skip
    else:
        module = "aries_lit.modules.PreferenceModule"
        data = {
            "class_path": "aries_lit.data.PreferenceDataModule",
            "init_args": {**PAIRS, "limit": steps * batch, "batch_size": batch, "max_length": max_length,
                          "max_context_length": max_length * 3 // 4, "shuffle": False},
        }  # fmt: skip
    return {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "precision": "32-true",
            "max_steps": steps,
            "log_every_n_steps": 1,
            "default_root_dir": str(root / "train"),
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "logger": False,
            "callbacks": [{"class_path": "loss_fit_smollm2.CurrentStepTimes"}],
        },  # fmt: skip
        "model": {"class_path": module, "init_args": {"model": model, "lr": 5.0e-6, "loss": loss}},
        "data": data,
        "export": {"dirpath": str(root / "model"), "enabled": False},
        "ckpt_path": None,
    }


def run_one(
    name: str,
    steps: int,
    batch: int,
    model: str,
    max_length: int,
    adjust: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One fit of :func:`fit_config` (``adjust`` changes the config in place first, e.g. the
    precision of ``precision_check.py``), timed step by step."""
    with tempfile.TemporaryDirectory(prefix="loss_fit_") as tmp:
        config = fit_config(name, steps, batch, Path(tmp), model, max_length)
        if adjust is not None:
            adjust(config)
        started = time.perf_counter()
        fit_in_process(config, progress=False)
        wall = time.perf_counter() - started
    import loss_fit_smollm2  # the module the fit config's callback came from (not __main__)

    seconds, losses = loss_fit_smollm2.CURRENT.pop()
    gc.collect()
    timed = seconds[1:] or seconds
    return {
        "name": name,
        "module": config["model"]["class_path"].rsplit(".", 1)[1],
        "steps": len(seconds),
        "step_seconds": [round(s, 3) for s in seconds],
        "mean_step_seconds": round(sum(timed) / len(timed), 3),
        "losses": [round(v, 5) for v in losses],
        "finite": all(math.isfinite(v) for v in losses),
        "wall_seconds": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2, help="pairs per step (group: half as many groups)")
    parser.add_argument("--max_length", type=int, default=128, help="tokens per sequence (context: 3/4)")
    parser.add_argument("--only", default="", help="comma-separated names (default: the whole sweep)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    model = str(Path(args.model).expanduser())
    names = [n for n in args.only.split(",") if n] or sweep_names()
    if "dpo" not in names:
        names = ["dpo", *names]
    rates = {
        name: round(matmul_flops(dtype, n=1024, repeats=3)[0] / 1e9, 1)
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    print(f"[bench] {cpu_model()}; torch matmul 1024^3: {rates}; {len(names)} runs", flush=True)
    settings = {"model": args.model, "steps": args.steps, "batch": args.batch, "max_length": args.max_length}
    out_path = Path(args.out) if args.out else None
    records = []
    if out_path is not None and out_path.exists():  # resume: keep the runs made with these settings
        done = json.loads(out_path.read_text())
        if all(done.get(k) == v for k, v in settings.items()):
            records = [r for r in done["runs"] if r["name"] in names]
            print(f"[bench] resuming: {len(records)} runs already in {out_path}", flush=True)
    for name in names:
        if any(r["name"] == name for r in records):
            continue
        record = run_one(name, args.steps, args.batch, model, args.max_length)
        records.append(record)
        print(f"[bench] {name}: {record['mean_step_seconds']} s/step, losses {record['losses']}", flush=True)
        if out_path is not None:
            write_json_atomic(out_path, {"cpu": cpu_model(), "matmul_gflops_1024": rates, **settings,
                                         "runs": records}, indent=2)  # fmt: skip
    dpo = next(r["mean_step_seconds"] for r in records if r["name"] == "dpo")
    for r in records:
        r["x_dpo"] = round(r["mean_step_seconds"] / dpo, 2)
    print("| loss | module | s / step | x DPO | losses (first -> last) |\n| --- | --- | --- | --- | --- |")
    for r in records:
        print(f"| `{r['name']}` | {r['module']} | {r['mean_step_seconds']} | {r['x_dpo']} | "
              f"{r['losses'][0]} -> {r['losses'][-1]} |")  # fmt: skip
    if out_path is not None:
        machine = {"cpu": cpu_model(), "matmul_gflops_1024": rates, "threads": os.cpu_count()}
        write_json_atomic(out_path, {**machine, **settings, "runs": records}, indent=2)
        print(f"[bench] wrote {out_path}")


if __name__ == "__main__":
    main()
