"""Multi-node rehearsed on one machine: two "nodes" of one process each over the loopback
interface (Lightning's own multi-node settings for ``fit``, torchrun's for ``generate``), checked
against a single-node run of the same work."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aries_lit.generators.store import read_candidates

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "SLURM_PROCID"):
        env.pop(var, None) if var not in extra else None
    return env


def _fit(model: Path, root: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "aries_lit.cli", "fit", "--config", str(REPO / "configs/tiny/dpo_offline.yaml"),
        "--model.init_args.model", str(model), "--data.init_args.limit", "16", "--trainer.max_steps", "3",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(root),
        "--trainer.strategy", "ddp", *extra,
    ]  # fmt: skip


def _wait(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (out or "")[-2000:] + (err or "")[-3000:]


def test_fit_on_two_nodes_equals_one_node_with_two_processes(tiny_model_dir, tmp_path):
    port = str(_port())
    nodes = [
        subprocess.Popen(
            _fit(tiny_model_dir, tmp_path / "two_nodes", "--trainer.num_nodes", "2",
                 "--trainer.devices", "1"),
            env=_env(NODE_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    _wait(nodes)
    one = subprocess.Popen(
        _fit(tiny_model_dir, tmp_path / "one_node", "--trainer.devices", "2"),
        env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait([one])
    two = load_file(tmp_path / "two_nodes" / "hf_model" / "model.safetensors")
    single = load_file(tmp_path / "one_node" / "hf_model" / "model.safetensors")
    start = load_file(tiny_model_dir / "model.safetensors")
    assert two.keys() == single.keys()
    assert all(torch.equal(two[k], single[k]) for k in two)
    assert any(not torch.equal(two[k], start[k]) for k in two), "training changed nothing"


def test_generate_sharded_over_two_nodes_equals_one_process(tiny_model_dir, tmp_path):
    prompts = tmp_path / "p.jsonl"
    lines = [json.dumps({"id": f"q{i}", "prompt": f"What is {i} + {i}?"}) + "\n" for i in range(7)]
    prompts.write_text("".join(lines))
    spec = json.dumps({
        "class_path": "sequential_refinement",
        "init_args": {"num_candidates": 2, "temperature": 0.0, "max_new_tokens": 6,
                      "backend": {"class_path": "transformers", "init_args": {"dtype": "float32"}}},
    })  # fmt: skip
    source = json.dumps({"class_path": "file", "init_args": {"path": str(prompts)}})

    def generate(out: Path) -> list[str]:
        return ["-m", "aries_lit.cli", "generate", "--model", str(tiny_model_dir), "--prompts", source,
                "--generator", spec, "--out_dir", str(out), "--progress", "false"]  # fmt: skip

    port = str(_port())
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(rank),
             "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", port,
             *generate(tmp_path / "two_nodes")],
            env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    _wait(nodes)
    single = subprocess.Popen(
        [sys.executable, *generate(tmp_path / "one")], env=_env(), cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait([single])

    def texts(out: Path) -> dict[tuple[str, int], str]:
        records = read_candidates(out / "candidates.jsonl")
        keys = [(r["id"], r["index"]) for r in records]
        assert len(keys) == len(set(keys)) == 14, "a candidate lost or written twice"
        return {(r["id"], r["index"]): r["text"] for r in records}

    assert texts(tmp_path / "two_nodes") == texts(tmp_path / "one")
