"""fp32 against bf16 autocast on SmolLM2-135M-Instruct: step time and the loss curve, same batches.

What ``--auto_precision true`` (:mod:`aries_lit.modules.precision`) rests on: its probe says bf16
is faster on this machine; this says by how much a whole training step is, and whether training
in bf16-mixed follows the fp32 loss curve. DPO and ARIES (alpha 0.8), ``--steps`` optimizer steps
of ``--batch`` HH-RLHF pairs each (the harness of ``loss_fit_smollm2.py``; the first step left out
of the mean), fp32 and bf16-mixed runs interleaved so both see the same load::

    aries-lit prepare-model --source smollm2
    PYTHONPATH=. python benchmarks/precision_check.py --out benchmarks/results/precision_check.json

The JSON names the CPU, the torch matmul rates measured in the same run and the probe's answer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from bench_utils import cpu_model, matmul_flops  # noqa: E402
from loss_fit_smollm2 import MODEL, run_one  # noqa: E402

from aries_lit.core.io import write_json_atomic  # noqa: E402
from aries_lit.modules.precision import machine_key, probe_precision  # noqa: E402

PRECISIONS = ("32-true", "bf16-mixed")


def run(name: str, precision: str, steps: int, batch: int, max_length: int, lr: float) -> dict[str, Any]:
    """One fit of ``loss_fit_smollm2.run_one`` in ``precision``, constant learning rate ``lr``."""

    def adjust(config: dict[str, Any]) -> None:
        config["trainer"]["precision"] = precision
        config["model"]["init_args"].update(lr=lr, warmup_ratio=0.0, schedule="constant")

    record = run_one(name, steps, batch, str(Path(MODEL).expanduser()), max_length, adjust)
    keep = ("step_seconds", "mean_step_seconds", "losses", "wall_seconds")
    return {"loss": name, "precision": precision, **{k: record[k] for k in keep}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-5, help="high enough that the loss moves")
    parser.add_argument("--losses", default="dpo,aries:dpo")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    rates = {
        name: round(matmul_flops(dtype, n=1024, repeats=3)[0] / 1e9, 1)
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    probe = probe_precision()
    print(f"[bench] {cpu_model()}; matmul 1024^3 {rates}; probe {probe}", flush=True)
    runs = []
    for name in args.losses.split(","):
        for precision in PRECISIONS:
            runs.append(run(name, precision, args.steps, args.batch, args.max_length, args.lr))
            print(f"[bench] {name} {precision}: {runs[-1]['mean_step_seconds']} s/step, "
                  f"losses {runs[-1]['losses']}", flush=True)  # fmt: skip
    summary = []
    for name in args.losses.split(","):
        fp32, bf16 = (next(r for r in runs if r["loss"] == name and r["precision"] == p) for p in PRECISIONS)
        diffs = [abs(a - b) for a, b in zip(fp32["losses"], bf16["losses"])]
        summary.append({
            "loss": name,
            "fp32_step_seconds": fp32["mean_step_seconds"],
            "bf16_step_seconds": bf16["mean_step_seconds"],
            "bf16_speedup": round(fp32["mean_step_seconds"] / bf16["mean_step_seconds"], 2),
            "loss_first_last_fp32": [fp32["losses"][0], fp32["losses"][-1]],
            "loss_first_last_bf16": [bf16["losses"][0], bf16["losses"][-1]],
            "max_abs_loss_diff": round(max(diffs), 5),
        })  # fmt: skip
    print("| loss | fp32 s/step | bf16-mixed s/step | speed-up | loss fp32 | loss bf16 | max diff |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for s in summary:
        fp32_curve = " -> ".join(str(v) for v in s["loss_first_last_fp32"])
        bf16_curve = " -> ".join(str(v) for v in s["loss_first_last_bf16"])
        times = f"{s['fp32_step_seconds']} | {s['bf16_step_seconds']} | {s['bf16_speedup']}x"
        print(f"| `{s['loss']}` | {times} | {fp32_curve} | {bf16_curve} | {s['max_abs_loss_diff']} |")
    if args.out:
        out = {"cpu": cpu_model(), "machine_key": machine_key(), "matmul_gflops_1024": rates, "probe": probe,
               "settings": vars(args), "summary": summary, "runs": runs}  # fmt: skip
        write_json_atomic(args.out, out, indent=2)
        print(f"[bench] wrote {args.out}")


if __name__ == "__main__":
    main()
