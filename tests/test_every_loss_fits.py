"""Every registered loss trains the tiny model from a fit config, alone and in ARIES's preference
slot (the sweep of ``benchmarks/loss_fit_smollm2.py``, which runs the same on SmolLM2): two
optimizer steps each, finite losses at every step."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import loss_fit_smollm2 as sweep  # noqa: E402

NAMES = sweep.sweep_names()


def test_the_sweep_has_every_pairwise_and_group_loss_alone_and_in_aries():
    assert {"dpo", "simpo", "orpo", "cpo", "kto", "grpo", "sppo_hard", "aot"} <= set(NAMES)
    assert {f"aries:{n}" for n in NAMES if ":" not in n} <= set(NAMES)
    assert "kto:unpaired" in NAMES and len(NAMES) >= 39


@pytest.mark.parametrize("name", NAMES)
def test_each_loss_fits_the_tiny_model(name, tiny_model_dir):
    record = sweep.run_one(name, steps=2, batch=2, model=str(tiny_model_dir), max_length=64)
    assert record["steps"] == 2 and record["finite"], record
    assert all(math.isfinite(v) for v in record["losses"]), record
