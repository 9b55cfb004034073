"""This CPU's matmul peak (the MFU denominator): square ``2048^3`` matmuls in fp32 and bf16.

The peak is the best round (``2 n^3 / min time``); the training benchmarks divide their
model FLOP/s by the peak of the same precision.
"""

from __future__ import annotations

import time

import pytest
import torch
from bench_utils import MATMUL_N, THREADS, set_peak


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_matmul_peak(benchmark, precision: str) -> None:
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    n = MATMUL_N
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    times: list[float] = []

    def mm() -> None:
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)

    benchmark.pedantic(mm, rounds=20, warmup_rounds=3, iterations=1)
    measured = times[3:]
    best = 2 * n**3 / min(measured)
    set_peak(precision, best)
    benchmark.extra_info.update(
        {
            "precision": precision,
            "n": n,
            "threads": THREADS,
            "peak_gflops": round(best / 1e9, 2),
            "median_gflops": round(2 * n**3 / sorted(measured)[len(measured) // 2] / 1e9, 2),
            "mkldnn_bf16_supported": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        }
    )
