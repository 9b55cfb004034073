"""pytest-benchmark suite of aries_lit (run: ``pytest benchmarks/ --benchmark-only``).

Not part of the normal test run (``testpaths = ["tests"]``). Every benchmark records its
figures in ``benchmark.extra_info`` (saved with ``--benchmark-json``); the load average
before and after each one is recorded too, since a busy machine slows every figure.
"""

from __future__ import annotations

import gc
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
from bench_utils import MODELS, THREADS, load_avg, machine_info  # noqa: E402


def pytest_benchmark_update_machine_info(config, machine_info: dict) -> None:  # noqa: ARG001
    from bench_utils import machine_info as info

    machine_info["aries_bench"] = info()


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _free_memory():
    """Collect reference cycles (models, trainers) after each benchmark, so a part of the suite does not
    accumulate several SmolLM2 copies and their optimizer states."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _record_load(request):
    """Load average (1, 5, 15 min) before and after each benchmark, in its extra_info."""
    bench = request.getfixturevalue("benchmark") if "benchmark" in request.fixturenames else None
    before = load_avg()
    yield
    if bench is not None:
        bench.extra_info["loadavg_before"] = before
        bench.extra_info["loadavg_after"] = load_avg()
        bench.extra_info["machine"] = {k: v for k, v in machine_info().items() if k != "loadavg"}
        _append_log(request.node.name, bench)


def _append_log(name: str, bench) -> None:
    """With ``ARIES_BENCH_LOG=path.jsonl``, append each finished benchmark at once (a killed run keeps
    what it measured; ``benchmarks/report.py`` reads these files as well as ``--benchmark-json``)."""
    path = os.environ.get("ARIES_BENCH_LOG")
    stats = getattr(getattr(bench, "stats", None), "stats", None)
    if not path or stats is None:
        return
    record = {
        "name": name,
        "datetime": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stats": {k: getattr(stats, k) for k in ("min", "max", "mean", "median", "stddev", "rounds")},
        "extra_info": dict(bench.extra_info),
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=str) + "\n")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    from aries_lit.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from aries_lit.models import smollm2_path

    try:
        return smollm2_path()
    except FileNotFoundError as err:
        pytest.skip(f"SmolLM2-135M-Instruct is not available: {err}")


@pytest.fixture
def get_model_dir(request):
    """``get_model_dir("tiny" | "smollm2")``: the model folder (skipped if not in ARIES_BENCH_MODELS)."""

    def get(name: str) -> Path:
        if name not in MODELS:
            pytest.skip(f"model '{name}' not in ARIES_BENCH_MODELS={','.join(MODELS)}")
        return request.getfixturevalue({"tiny": "tiny_dir", "smollm2": "smollm2_dir"}[name])

    return get
