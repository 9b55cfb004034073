"""The one stage runner of ``iterate`` and ``study``: training in this process by default, in an
``aries-lit fit`` subprocess only where it must (or when asked), with the same result either way."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aries_lit.core.errors import SettingsError
from aries_lit.pipeline.iterate import iterate
from aries_lit.pipeline.lightning_cli import needs_own_process

REPO = Path(__file__).resolve().parents[1]
HH = "aries_lit:hh_rlhf/harmless_base_test.jsonl.gz"


@pytest.mark.parametrize(
    ("trainer", "own"),
    [
        ({}, False),
        ({"devices": 1, "strategy": "auto"}, False),
        ({"strategy": "single_device", "devices": "1"}, False),
        ({"devices": 2}, True),
        ({"devices": [0, 1]}, True),
        ({"num_nodes": 2, "devices": 1}, True),
        ({"strategy": "ddp", "devices": 1}, True),
        ({"strategy": {"class_path": "lightning.pytorch.strategies.DDPStrategy"}}, True),
        ({"strategy": "deepspeed_stage_2"}, True),
    ],
)
def test_a_fit_needs_its_own_process_only_for_a_multi_process_strategy(trainer, own):
    assert (needs_own_process({"trainer": trainer}) is not None) is own


def _stages() -> list[dict]:
    fit = {"trainer": {"max_steps": 2, "logger": False}, "data": {"init_args": {"train": HH, "limit": 8}}}
    return [
        {"name": "sft", "fit_config": str(REPO / "configs/tiny/aries_sft.yaml"), "fit": fit},
        {"name": "offline", "fit_config": str(REPO / "configs/tiny/aries_offline.yaml"), "fit": fit},
    ]


def test_stages_trained_in_process_equal_stages_trained_in_a_subprocess(tiny_model_dir, tmp_path, capfd):
    runs = {}
    for fit_process in ("auto", "own"):
        models = iterate(
            str(tmp_path / fit_process), str(tiny_model_dir), _stages(), progress=False,
            fit_process=fit_process,
        )  # fmt: skip
        runs[fit_process] = {name: load_file(Path(p) / "model.safetensors") for name, p in models.items()}
        out = capfd.readouterr().out
        where = "training in this process" if fit_process == "auto" else "training in its own process"
        assert out.count(where) == 2, out[-2000:]
    for name in ("sft", "offline"):
        a, b = runs["auto"][name], runs["own"][name]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    start = load_file(tiny_model_dir / "model.safetensors")
    assert any(not torch.equal(runs["auto"]["offline"][k], start[k]) for k in start), "nothing trained"


def test_an_unknown_fit_process_is_one_setting_error(tiny_model_dir, tmp_path):
    with pytest.raises(SettingsError, match="fit_process: must be one of auto, own"):
        iterate(str(tmp_path), str(tiny_model_dir), _stages(), fit_process="spawn")
