"""User code registers losses, selectors, generators, backends and prompt sources without editing
aries_lit (CONTRIBUTING.md's examples), and configs use them by short name once the modules are
named in ``ARIES_LIT_PLUGINS``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aries_lit.cli import main
from aries_lit.core.registry import PLUGINS_ENV, RegistryError, import_plugins, plugin_modules
from aries_lit.selectors import SELECTORS

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
QUESTIONS = EXAMPLES / "custom_prompts" / "questions.csv"


def _env(*examples: str, plugins: str = "") -> dict[str, str]:
    """The environment of a user run: the example folders on ``PYTHONPATH``, ``plugins`` imported."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*(str(EXAMPLES / e) for e in examples), str(REPO)]))
    env[PLUGINS_ENV] = plugins
    return env


def _cli(env: dict[str, str], *args: str | Path) -> None:
    """``aries-lit ARGS`` in a fresh process with ``env``; it must succeed."""
    cmd = [sys.executable, "-m", "aries_lit.cli", *map(str, args)]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_custom_generator_by_class_path_and_selector_by_short_name(tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": f"What is {i} + 1?"}) + "\n" for i in range(3))
    )
    env = _env("custom_selector", plugins="my_selectors")
    out, model = tmp_path / "cands", str(tiny_model_dir)
    generator = (
        "{class_path: my_selectors.GreedyThenSampled, init_args: {num_candidates: 3, max_new_tokens: 8}}"
    )
    _cli(
        env,
        "generate",
        "--model",
        model,
        "--prompts",
        str(prompts),
        "--generator",
        generator,
        "--out_dir",
        out,
    )
    selector = "{class_path: shortest_answer, init_args: {skip_truncated: false}}"
    _cli(env, "select", "--candidates", str(out), "--prompts", str(prompts), "--selector", selector)
    cands = _jsonl(tmp_path / "cands" / "candidates.jsonl")
    assert {c["generator"] for c in cands} == {"greedy_then_sampled"} and len(cands) == 9
    pairs = _jsonl(tmp_path / "cands" / "pairs.jsonl")
    for pair in pairs:
        assert len(pair["chosen"]) <= len(pair["rejected"]) and pair["selector"] == "shortest_answer"
    stats = json.loads((tmp_path / "cands" / "selection_stats.json").read_text())
    assert stats["groups"] == 3 and stats["pairs"] == len(pairs)


def test_custom_backend_and_prompt_source_by_short_name(tmp_path):
    """CSV prompts (``csv``) answered by a rule backend (``calculator``), then verifier pairs."""
    env = _env("custom_backend", "custom_prompts", plugins="my_backends, my_prompts")
    prompts = f"{{class_path: csv, init_args: {{path: {QUESTIONS}}}}}"
    out = tmp_path / "cands"
    generator = (
        "{class_path: parallel_sampling, init_args: {num_candidates: 4,"
        " backend: {class_path: calculator, init_args: {slip_rate: 0.5}}}}"
    )
    _cli(
        env,
        "generate",
        "--model",
        "calculator",
        "--prompts",
        prompts,
        "--generator",
        generator,
        "--out_dir",
        str(out),
    )
    _cli(env, "select", "--candidates", str(out), "--prompts", prompts, "--selector", "verifier")
    cands = _jsonl(out / "candidates.jsonl")
    assert len(cands) == 6 * 4 and {c["id"] for c in cands} == {f"q{i}" for i in range(1, 7)}
    assert all(c["text"].endswith(".") and "The answer is" in c["text"] for c in cands)
    gold = {line.split(",")[0]: line.split(",")[2] for line in QUESTIONS.read_text().splitlines()[1:]}
    pairs = _jsonl(out / "pairs.jsonl")
    assert pairs, "sampling slips: some prompt has a right and a wrong candidate"
    for pair in pairs:
        assert pair["chosen"].endswith(f"is {gold[pair['id']]}.")
        assert not pair["rejected"].endswith(f"is {gold[pair['id']]}.")


def test_a_short_name_loss_trains_in_fit_started_as_iterate_starts_it(tiny_model_dir, tmp_path, monkeypatch):
    """``iterate`` runs each stage's ``fit`` as ``python -m aries_lit.cli fit`` with its own
    environment: ``ARIES_LIT_PLUGINS`` goes with it, so ``class_path: margin_dpo`` resolves there."""
    config = yaml.safe_load((EXAMPLES / "custom_loss" / "config.yaml").read_text())
    config["model"]["init_args"].update(
        model=str(tiny_model_dir), loss={"class_path": "margin_dpo", "init_args": {"margin": 0.25}}
    )
    config["data"]["init_args"].update(limit=4)
    config["trainer"].update(max_steps=1, default_root_dir=str(tmp_path), logger=False)
    path = tmp_path / "fit_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    for key, value in _env("custom_loss", plugins="my_losses").items():
        monkeypatch.setenv(key, value)
    cmd = [sys.executable, "-m", "aries_lit.cli", "fit", "--config", str(path)]  # iterate's command
    run = subprocess.run(cmd, env=dict(os.environ), cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    loss = saved["model"]["init_args"]["loss"]
    assert loss["class_path"] == "my_losses.MarginDPOLoss" and loss["init_args"]["margin"] == 0.25
    assert (tmp_path / "hf_model" / "model.safetensors").exists()


def test_plugins_variable_names_modules_and_a_bad_one_is_one_line(monkeypatch, capsys):
    assert plugin_modules(" my_losses, pkg.my_selectors ,,") == ["my_losses", "pkg.my_selectors"]
    assert import_plugins("json, email.utils") == ["json", "email.utils"]
    monkeypatch.setenv(PLUGINS_ENV, "json,no_such_plugin_module")
    monkeypatch.delenv("ARIES_LIT_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["select", "--help"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "aries-lit: error: ARIES_LIT_PLUGINS: cannot import module 'no_such_plugin_module': "
        "No module named 'no_such_plugin_module'"
    ]


def test_an_unknown_short_name_points_at_the_plugins_variable():
    with pytest.raises(RegistryError, match=r"unknown selector 'shortest_answerz'; .* ARIES_LIT_PLUGINS"):
        SELECTORS.get("shortest_answerz")


# --------------------------------------------------------------------------- the spec dialect


def test_a_name_spec_is_refused_with_how_to_write_it():
    """The old ``name:`` forms are refused by every registry, each in one line naming the place."""
    from aries_lit.core.errors import SettingsError
    from aries_lit.core.part_spec import PartSpec
    from aries_lit.generators import GENERATORS
    from aries_lit.generators.backends import BACKENDS

    dialect = SELECTORS.build({"class_path": "rule", "init_args": {"chosen_index": 1, "rejected_index": 0}})
    typed = SELECTORS.build(PartSpec("rule", {"chosen_index": 1, "rejected_index": 0}))
    assert type(typed) is type(dialect) and vars(typed) == vars(dialect)
    write = r"write \{class_path: rule, init_args: \{\.\.\.\}\}; the 'name:' form of a part is no longer read"
    for spec in (
        {"name": "rule", "init_args": {"chosen_index": 1, "rejected_index": 0}},
        {"name": "rule", "chosen_index": 1, "rejected_index": 0},
    ):
        with pytest.raises(SettingsError, match=f"^selector: {write}$"):
            SELECTORS.build(spec)
    with pytest.raises(SettingsError, match=r"^generator.backend: write \{class_path: vllm, init_args"):
        BACKENDS.check_spec({"name": "vllm", "init_args": {"dtype": "float32"}}, "generator.backend")
    with pytest.raises(SettingsError, match=r"^judge.backend: write hf \(or \{class_path: hf\}\)"):
        BACKENDS.check_spec({"name": "hf"}, "judge.backend")
    nested = {
        "class_path": "parallel_sampling",
        "init_args": {"backend": {"name": "vllm", "dtype": "float32"}},
    }
    with pytest.raises(SettingsError, match=r"^generator.backend: write \{class_path: vllm"):
        GENERATORS.build(nested)
    with pytest.raises(RegistryError, match="gives both 'class_path' .* and 'name'"):
        SELECTORS.build({"class_path": "rule", "name": "verifier"})


def test_evaluation_tasks_and_generator_take_the_dialect_and_refuse_the_old_forms():
    from aries_lit.core.errors import SettingsError
    from aries_lit.evaluation.tasks import Task, generator_spec, parse_tasks

    new = parse_tasks([{"class_path": "file", "init_args": {"path": "d/mine.jsonl"}, "kind": "open"}])
    assert [t.label for t in new] == ["mine"]
    assert new[0].source == {"class_path": "file", "init_args": {"path": "d/mine.jsonl"}}
    with pytest.raises(
        SettingsError, match=r"^tasks\[0\]: write \{class_path: file, init_args: \{\.\.\.\}\}"
    ):
        parse_tasks([{"name": "file", "path": "d/mine.jsonl", "kind": "open"}])
    task = Task(label="t", source="x")
    backend = {"class_path": "vllm", "init_args": {"dtype": "float32"}}
    dialect = {"class_path": "parallel_sampling", "init_args": {"chunk_size": 8, "backend": backend}}
    beside = {"class_path": "parallel_sampling", "chunk_size": 8, "backend": backend}
    spec = generator_spec(dialect, task, "verifiable", 4, 64)
    assert spec == generator_spec(beside, task, "verifiable", 4, 64)
    assert spec["name"] == "parallel_sampling" and spec["chunk_size"] == 8 and spec["num_candidates"] == 4
    flat = {"name": "parallel_sampling", "chunk_size": 8}
    with pytest.raises(SettingsError, match=r"^generator: write \{class_path: parallel_sampling"):
        generator_spec(flat, task, "verifiable", 4, 64)
    old_backend = {**dialect, "init_args": {"backend": {"name": "vllm"}}}
    with pytest.raises(SettingsError, match=r"^generator.backend: write vllm \(or \{class_path: vllm\}\)"):
        generator_spec(old_backend, task, "verifiable", 4, 64)
