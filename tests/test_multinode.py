"""Multi-node rehearsed on one machine: two "nodes" of one process each over the loopback
interface (Lightning's own multi-node settings for ``fit``, torchrun's for ``generate``), checked
against a single-node run of the same work."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aries_lit.generators.store import read_candidates, shard_dir

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


def _popen(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A "node": its own process group, so that killing it takes every process it started."""
    return subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _kill_tree(node: subprocess.Popen) -> None:
    """SIGKILL a node and every process under it (torchrun's workers run in their own groups)."""
    import psutil

    tree = [psutil.Process(node.pid), *psutil.Process(node.pid).children(recursive=True)]
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    node.communicate()


def _drop_node(node: subprocess.Popen, when: Callable[[], bool], others: list[subprocess.Popen]) -> list[str]:
    """Kill ``node``'s whole process group (a node lost: SIGKILL, no cleanup) as soon as ``when()``
    holds, then give the surviving nodes a bounded time to fail on their own (their next collective
    meets a closed connection); a scheduler would tear down what is left, so the test does too.
    Returns the survivors' stderr."""
    deadline = time.monotonic() + 300
    while not when():
        assert node.poll() is None, "finished before it could be killed: " + node.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "the run never reached the point to kill it"
        time.sleep(0.05)
    _kill_tree(node)
    errors = []
    for other in others:
        try:
            errors.append(other.communicate(timeout=120)[1])
        except subprocess.TimeoutExpired:
            _kill_tree(other)
            errors.append("")
        assert other.returncode != 0, "a node whose peer was killed reported success"
    return errors


def _fit_nodes(model: Path, root: Path, port: str, *extra: str) -> list[subprocess.Popen]:
    return [
        _popen(
            _fit(model, root, "--trainer.num_nodes", "2", "--trainer.devices", "1", *extra),
            _env(NODE_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
        )
        for rank in (0, 1)
    ]


def test_fit_on_two_nodes_with_one_node_killed_resumes_to_the_same_weights(tiny_model_dir, tmp_path):
    """Node 1 is killed once a checkpoint exists; the same two commands rerun resume from it and
    end with the weights of a run that was never interrupted (no batch lost or repeated)."""
    steps = ("--trainer.max_steps", "24", "--checkpoint.every_n_train_steps", "4")
    _wait(_fit_nodes(tiny_model_dir, tmp_path / "whole", str(_port()), *steps))

    root = tmp_path / "killed"
    last = root / "checkpoints" / "last.ckpt"
    node0, node1 = _fit_nodes(tiny_model_dir, root, str(_port()), *steps)
    _drop_node(node1, last.exists, [node0])
    assert not (root / "hf_model" / "model.safetensors").exists(), "killed after it had finished"
    rerun = _fit_nodes(tiny_model_dir, root, str(_port()), *steps)
    _wait(rerun)
    whole = load_file(tmp_path / "whole" / "hf_model" / "model.safetensors")
    resumed = load_file(root / "hf_model" / "model.safetensors")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    logs = sorted((root / "lightning_logs").glob("version_*/metrics.csv"))
    assert len(logs) == 2, "the rerun did not log as a second attempt"


def test_generate_on_two_nodes_with_one_node_killed_resumes_without_loss_or_duplicates(
    tiny_model_dir, tmp_path
):
    """Node 1 of a torchrun generation is killed after it wrote some candidates; rerunning the two
    commands keeps them, generates the rest, and leaves every candidate once, as one process would."""
    prompts = tmp_path / "p.jsonl"
    lines = [json.dumps({"id": f"q{i}", "prompt": f"What is {i} + {i}?"}) + "\n" for i in range(40)]
    prompts.write_text("".join(lines))
    spec = json.dumps({
        "class_path": "sequential_refinement",
        "init_args": {"num_candidates": 2, "temperature": 0.0, "max_new_tokens": 8, "chunk_size": 1,
                      "backend": {"class_path": "transformers", "init_args": {"dtype": "float32"}}},
    })  # fmt: skip
    source = json.dumps({"class_path": "file", "init_args": {"path": str(prompts)}})
    out = tmp_path / "two_nodes"

    def node(rank: int, port: str) -> subprocess.Popen:
        return _popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(rank),
             "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", port,
             "-m", "aries_lit.cli", "generate", "--model", str(tiny_model_dir), "--prompts", source,
             "--generator", spec, "--out_dir", str(out), "--progress", "false"],
            _env(),
        )  # fmt: skip

    shard1 = shard_dir(out, 1, 2) / "candidates.jsonl"

    def wrote_some() -> bool:
        return shard1.exists() and shard1.read_text().count("\n") >= 4

    port = str(_port())
    node0, node1 = node(0, port), node(1, port)
    (survivor,) = _drop_node(node1, wrote_some, [node0])
    # rank 0 waits for the shards at a barrier: the lost peer is one line, not gloo's traceback
    assert "aries-lit: error: rank 0 of 2: another rank was lost while waiting" in survivor
    kept = {(r["id"], r["index"]): r["text"] for r in read_candidates(shard1)}
    assert 4 <= len(kept) < 40, "node 1 was not killed mid-run"
    port = str(_port())
    _wait([node(0, port), node(1, port)])

    single = tmp_path / "one"
    _wait([_popen([sys.executable, "-m", "aries_lit.cli", "generate", "--model", str(tiny_model_dir),
                   "--prompts", source, "--generator", spec, "--out_dir", str(single), "--progress",
                   "false"], _env())])  # fmt: skip
    records = read_candidates(out / "candidates.jsonl")
    keys = [(r["id"], r["index"]) for r in records]
    assert len(keys) == len(set(keys)) == 80, "a candidate lost or written twice"
    texts = {(r["id"], r["index"]): r["text"] for r in records}
    assert all(texts[k] == v for k, v in kept.items())
    assert texts == {(r["id"], r["index"]): r["text"] for r in read_candidates(single / "candidates.jsonl")}
