"""Training precision measured, not assumed: :func:`choose_precision` picks bf16 autocast only on a
machine where it is faster.

On CPUs bf16 speed varies by two orders of magnitude between machines of the same kind: measured
on 2-core AMD EPYC machines, bf16 matmul ran 0.7 GFLOP/s on one (AVX2 only; fp32 60-70) and 876 on
another (AVX-512 BF16; fp32 201), and Intel AMX reaches about 2400. So ``aries-lit fit
--auto_precision true`` runs a short probe (:func:`probe_precision`: forward and backward of a
SmolLM2-135M-shaped MLP projection, fp32 against bf16 autocast, a few seconds), keeps the answer
per machine (CPU model, torch version, threads) in ``~/.cache/aries_lit/precision_probe.json``,
and sets ``trainer.precision`` to ``bf16-mixed`` when bf16 is at least :data:`MIN_SPEEDUP` times
faster, else ``32-true``. Master weights stay float32 either way. On CUDA it takes ``bf16-mixed``
where the GPU supports bf16, without a probe.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

#: how much faster bf16 autocast must be for the probe to choose it (below it fp32 is kept: the
#: probe's spread on a quiet machine is a few percent, and bf16 costs some precision)
MIN_SPEEDUP = 1.15
#: the probe's shapes: 512 tokens through SmolLM2-135M's MLP up-projection (576 -> 1536)
PROBE_TOKENS, PROBE_IN, PROBE_OUT = 512, 576, 1536
#: the per-machine cache of probe results (``ARIES_LIT_PRECISION_CACHE`` names another file)
CACHE_FILE = Path("~/.cache/aries_lit/precision_probe.json")
CACHE_ENV = "ARIES_LIT_PRECISION_CACHE"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """What a probe result holds for: the CPU model, its bf16 instruction sets, torch, threads."""
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = {f for f in ("avx512_bf16", "amx_bf16", "avx512f", "avx2") if f" {f}" in text}
        flags = ",".join(sorted(found))
    except OSError:
        pass
    return f"{cpu_name()}|{flags}|torch {torch.__version__}|threads {torch.get_num_threads()}"


def _step_seconds(bf16: bool, repeats: int) -> float:
    """Median seconds of one forward + backward of the probe projection (after a warm-up)."""
    gen = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(PROBE_IN, PROBE_OUT)
    x = torch.randn(PROBE_TOKENS, PROBE_IN, generator=gen, requires_grad=True)
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = layer(x)
        y.float().square().mean().backward()
        if i:  # the first run warms up
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def probe_precision(repeats: int = 5) -> dict[str, Any]:
    """Time the probe in fp32 and under bf16 autocast (interleaved, twice each); the choice."""
    fp32 = min(_step_seconds(False, repeats), _step_seconds(False, repeats))
    bf16 = min(_step_seconds(True, repeats), _step_seconds(True, repeats))
    speedup = fp32 / bf16 if bf16 > 0 else 0.0
    return {
        "fp32_seconds": round(fp32, 6),
        "bf16_seconds": round(bf16, 6),
        "bf16_speedup": round(speedup, 3),
        "precision": "bf16-mixed" if speedup >= MIN_SPEEDUP else "32-true",
    }


def choose_precision(
    accelerator: str = "cpu", cache_file: str | os.PathLike | None = None
) -> tuple[str, str]:
    """``(trainer.precision, why)`` for this machine: on CUDA ``bf16-mixed`` when supported, on CPU
    the cached probe result for :func:`machine_key`, probing (and caching) on first use."""
    use_cuda = accelerator in ("gpu", "cuda") or accelerator == "auto" and torch.cuda.is_available()
    if use_cuda:
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bf16-mixed", "the GPU supports bf16"
        return "32-true", "the GPU has no bf16"
    path = Path(cache_file or os.environ.get(CACHE_ENV) or CACHE_FILE).expanduser()
    key = machine_key()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    result = cache.get(key)
    source = f"cached in {path}"
    if not isinstance(result, dict) or result.get("precision") not in ("bf16-mixed", "32-true"):
        result = probe_precision()
        cache[key] = result
        source = f"measured now, cached in {path}"
        try:
            from aries_lit.core.io import write_json_atomic

            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, cache, indent=2)
        except OSError:
            source = "measured now (the cache could not be written)"
    why = f"bf16 autocast {result['bf16_speedup']}x fp32 on this CPU ({source}; threshold {MIN_SPEEDUP}x)"
    return result["precision"], why


__all__ = ["CACHE_FILE", "MIN_SPEEDUP", "choose_precision", "machine_key", "probe_precision"]
