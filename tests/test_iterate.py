"""`aries-lit iterate` end to end on tiny models: two iterations, reload, kill-and-resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HH = "aries_lit:hh_rlhf/harmless_base_test.jsonl.gz"


def _config(tmp_path: Path, model_dir: Path, count: int = 8, logger: bool = False) -> Path:
    config = yaml.safe_load((REPO / "configs" / "iterate" / "tiny.yaml").read_text())
    config["run_dir"] = str(tmp_path / "run")
    config["base_model"] = str(model_dir)
    for stage in config["stages"]:
        stage["fit_config"] = str(REPO / stage["fit_config"])
        fit = stage.setdefault("fit", {})
        fit.setdefault("trainer", {})["logger"] = logger
        fit["trainer"]["max_steps"] = 2
        fit.setdefault("checkpoint", {})["every_n_train_steps"] = 1
        if "collect" not in stage:
            fit.setdefault("data", {}).setdefault("init_args", {})["train"] = HH
            fit["data"]["init_args"]["limit"] = 8
        else:
            stage["collect"]["prompts"]["init_args"]["count"] = count
    path = tmp_path / "iterate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "aries_lit.cli", "iterate", "--config", str(config), "--progress", "false"]


def _manifests(run: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(run.glob("*/manifest.json"))}


def _assert_complete(run: Path) -> None:
    from transformers import AutoModelForCausalLM

    manifests = _manifests(run)
    assert list(manifests) == ["00-sft", "01-offline", "02-iter1", "03-iter2"]
    for name, manifest in manifests.items():
        assert manifest["status"] == "done", name
        AutoModelForCausalLM.from_pretrained(manifest["model"])  # each stage's model reloads
    # each stage starts from the previous one's model
    assert manifests["01-offline"]["input_model"] == manifests["00-sft"]["model"]
    assert manifests["03-iter2"]["input_model"] == manifests["02-iter1"]["model"]
    for stage in ("02-iter1", "03-iter2"):
        pairs = [json.loads(x) for x in (run / stage / "pairs.jsonl").read_text().splitlines()]
        ids = [p["id"] for p in pairs]
        assert ids and len(ids) == len(set(ids)), "duplicate pairs"
        cands = [
            json.loads(x) for x in (run / stage / "candidates" / "candidates.jsonl").read_text().splitlines()
        ]
        keys = [(c["id"], c["index"]) for c in cands]
        assert len(keys) == len(set(keys)), "duplicate candidates"


def test_drop_resume_checkpoints_keeps_everything_else(tmp_path):
    from aries_lit.pipeline.iterate import drop_resume_checkpoints

    ckpts = tmp_path / "train" / "checkpoints"
    ckpts.mkdir(parents=True)
    (ckpts / "last.ckpt").write_bytes(b"x" * 10)
    (ckpts / "step=4.ckpt").write_bytes(b"x" * 5)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"w")
    (tmp_path / "train" / "data_stats.json").write_text("{}")
    assert drop_resume_checkpoints(tmp_path) == 15
    assert list(ckpts.iterdir()) == []
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert (tmp_path / "train" / "data_stats.json").exists()
    assert drop_resume_checkpoints(tmp_path / "missing") == 0


def test_drop_resume_checkpoints_follows_the_stage_checkpoint_dirpath(tmp_path):
    from aries_lit.pipeline.iterate import drop_resume_checkpoints, resume_checkpoint_dir

    custom = tmp_path / "elsewhere"
    custom.mkdir()
    (custom / "last.ckpt").write_bytes(b"x" * 7)
    (custom / "notes.txt").write_text("kept")
    default = tmp_path / "stage" / "train" / "checkpoints"
    default.mkdir(parents=True)
    (default / "last.ckpt").write_bytes(b"x")  # not the stage's folder once dirpath is set
    stage = tmp_path / "stage"
    (stage / "fit_config.yaml").write_text(yaml.safe_dump({"checkpoint": {"dirpath": str(custom)}}))
    assert resume_checkpoint_dir(stage) == custom
    assert drop_resume_checkpoints(stage) == 7
    assert sorted(p.name for p in custom.iterdir()) == ["notes.txt"]
    assert (default / "last.ckpt").exists()
    (stage / "fit_config.yaml").write_text(yaml.safe_dump({"checkpoint": {"every_n_train_steps": 1}}))
    assert resume_checkpoint_dir(stage) == default


def test_iterate_runs_two_iterations_and_skips_finished_stages(tiny_model_dir, tmp_path):
    config = _config(tmp_path, tiny_model_dir, logger=True)
    run = subprocess.run(_cmd(config), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_complete(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "models.json").read_text())["iter2"].endswith("03-iter2/model")
    # finished stages drop the resume checkpoint their fit wrote every step, and keep their model
    assert list((tmp_path / "run").glob("*/train/checkpoints/*.ckpt")) == []
    for stage in ("00-sft", "01-offline", "02-iter1", "03-iter2"):  # training curves per stage
        assert (tmp_path / "run" / stage / "curves.png").read_bytes().startswith(b"\x89PNG"), stage
    again = subprocess.run(_cmd(config), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0
    assert again.stdout.count(": done, model") == 4
    assert all(m["attempts"] == 1 for m in _manifests(tmp_path / "run").values())


def _kill_when(config: Path, ready, timeout: float = 600) -> None:
    proc = subprocess.Popen(
        _cmd(config), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            if ready():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return
            time.sleep(0.05)
        pytest.fail("the run finished or timed out before the kill point")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_killed_during_collection_and_during_training_then_rerun_completes(tiny_model_dir, tmp_path):
    config = _config(tmp_path, tiny_model_dir, count=24)
    run = tmp_path / "run"
    cands = run / "02-iter1" / "candidates" / "candidates.jsonl"
    # 1) kill while iteration 1 collects candidates (some, not all, written)
    _kill_when(config, lambda: cands.exists() and 0 < len(cands.read_text().splitlines()) < 72)
    assert not (run / "02-iter1" / "pairs.jsonl").exists()
    # 2) rerun, kill while iteration 2 trains (a Lightning checkpoint exists, no HF model yet)
    ckpt = run / "03-iter2" / "train" / "checkpoints" / "last.ckpt"
    _kill_when(config, lambda: ckpt.exists())
    assert not (run / "03-iter2" / "model" / "config.json").exists()
    # 3) rerun to the end, keeping the finished stage's checkpoints this time
    final = subprocess.run(
        [*_cmd(config), "--keep_checkpoints", "true"], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert final.returncode == 0, final.stderr[-3000:]
    _assert_complete(run)
    manifests = _manifests(run)
    assert manifests["00-sft"]["attempts"] == 1 and manifests["01-offline"]["attempts"] == 1
    assert manifests["02-iter1"]["attempts"] == 2 and manifests["03-iter2"]["attempts"] == 2
    assert "Restoring states from the checkpoint" in final.stderr + final.stdout
    assert ckpt.exists(), "--keep_checkpoints true kept iteration 2's resume checkpoint"
    assert not (run / "00-sft" / "train" / "checkpoints" / "last.ckpt").exists()  # dropped in run 1
    shutil.rmtree(run)
