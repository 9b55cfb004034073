"""``--auto_precision``: a measured probe picks bf16 autocast only where it is faster, per machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aries_lit.cli import main
from aries_lit.modules import precision

REPO = Path(__file__).resolve().parents[1]
DPO = REPO / "configs" / "tiny" / "dpo_offline.yaml"


def _probe(speedup: float):
    return lambda repeats=5: {
        "fp32_seconds": 1.0,
        "bf16_seconds": 1.0 / speedup,
        "bf16_speedup": speedup,
        "precision": "bf16-mixed" if speedup >= precision.MIN_SPEEDUP else "32-true",
    }


@pytest.mark.parametrize(("speedup", "expected"), [(2.5, "bf16-mixed"), (1.05, "32-true"), (0.01, "32-true")])
def test_the_probe_decides_and_its_answer_is_kept_per_machine(speedup, expected, tmp_path, monkeypatch):
    cache = tmp_path / "probe.json"
    monkeypatch.setattr(precision, "probe_precision", _probe(speedup))
    chosen, why = precision.choose_precision("cpu", cache)
    assert chosen == expected and f"{speedup}x fp32" in why and "measured now" in why
    assert json.loads(cache.read_text())[precision.machine_key()]["precision"] == expected

    def no_probe(repeats=5):
        raise AssertionError("the cached answer must be used")

    monkeypatch.setattr(precision, "probe_precision", no_probe)
    assert precision.choose_precision("cpu", cache)[0] == expected  # cached: no second probe
    monkeypatch.setattr(precision, "machine_key", lambda: "another CPU")
    monkeypatch.setattr(precision, "probe_precision", _probe(3.0))
    assert precision.choose_precision("cpu", cache)[0] == "bf16-mixed"  # another machine probes
    assert len(json.loads(cache.read_text())) == 2


def test_a_broken_cache_is_probed_again(tmp_path, monkeypatch):
    cache = tmp_path / "probe.json"
    cache.write_text("{not json")
    monkeypatch.setattr(precision, "probe_precision", _probe(1.0))
    assert precision.choose_precision("cpu", cache)[0] == "32-true"
    assert json.loads(cache.read_text())  # rewritten whole


def test_the_real_probe_times_both_precisions():
    result = precision.probe_precision(repeats=1)
    assert result["fp32_seconds"] > 0 and result["bf16_seconds"] > 0
    assert result["precision"] == (
        "bf16-mixed" if result["bf16_speedup"] >= precision.MIN_SPEEDUP else "32-true"
    )


def _fit(tmp_path, tiny_model_dir, *extra: str) -> None:
    main(["fit", "--config", str(DPO), "--model.init_args.model", str(tiny_model_dir),
          "--trainer.max_steps", "1", "--trainer.default_root_dir", str(tmp_path / "run"),
          "--trainer.enable_progress_bar", "false", "--export.enabled", "false", *extra])  # fmt: skip


def test_fit_with_auto_precision_trains_in_the_chosen_precision(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    cache = tmp_path / "probe.json"
    monkeypatch.setenv(precision.CACHE_ENV, str(cache))
    cache.write_text(json.dumps({precision.machine_key(): {**_probe(2.0)(), "precision": "bf16-mixed"}}))
    _fit(tmp_path, tiny_model_dir, "--auto_precision", "true")
    err = capsys.readouterr().err
    assert "[aries-lit] auto_precision: trainer.precision bf16-mixed: bf16 autocast 2.0x fp32" in err
    saved = yaml.safe_load(next((tmp_path / "run").rglob("config.yaml")).read_text())
    assert saved["trainer"]["precision"] == "bf16-mixed" and saved["auto_precision"] is True


def test_auto_precision_beside_another_precision_is_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.delenv("ARIES_LIT_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        _fit(tmp_path, tiny_model_dir, "--auto_precision", "true", "--trainer.precision", "bf16-mixed")
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code != 0 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "auto_precision: true chooses trainer.precision, which is set to 'bf16-mixed'" in err
