"""Bad user input ends with one clear line naming the file, record and field, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ARIES_LIT_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "aries_lit.cli", *args], cwd=REPO, capture_output=True, text=True, env=env
    )


def test_fit_on_a_bad_record_names_file_record_and_field(tiny_model_dir, tmp_path):
    data = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": "Q1", "chosen": "A", "rejected": "B"},
        {"prompt": "Q2", "chosen": "  ", "rejected": "B"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _run(
        [
            "fit",
            "--config",
            "configs/tiny/dpo_offline.yaml",
            "--model.init_args.model",
            str(tiny_model_dir),
            "--data.init_args.train",
            str(data),
            "--data.init_args.format",
            "trl",
            "--data.init_args.on_error",
            "raise",
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
            "--trainer.logger",
            "false",
        ]
    )
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("aries-lit: error:")
        and "pairs.jsonl, record 2, field 'chosen': empty response" in last
    )
    assert "Traceback" not in out.stderr


def test_unknown_selector_name_is_one_line(tmp_path):
    out = _run(
        [
            "select",
            "--candidates",
            str(tmp_path),
            "--prompts",
            "{class_path: arithmetic, init_args: {count: 2}}",
            "--selector",
            "nosuch",
        ]
    )
    assert out.returncode == 1
    assert "unknown selector 'nosuch'; known:" in out.stderr and "Traceback" not in out.stderr


def test_iterate_with_a_bad_stage_names_the_config_and_field(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("run_dir: x\nbase_model: y\nstages:\n  - name: a\n    fit: {}\n  - fit: {}\n")
    out = _run(["iterate", "--config", str(config)])
    assert out.returncode != 0
    assert f"{config}: stages[1]: field 'name' is missing" in out.stderr


def test_generate_rerun_with_other_settings_is_one_line(tiny_model_dir, tmp_path):
    prompts = tmp_path / "p.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"What is {i} + 1?"} for i in range(2)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def generate(temperature: float) -> subprocess.CompletedProcess:
        spec = {"class_path": "sequential_refinement", "num_candidates": 1, "max_new_tokens": 4}
        spec["temperature"] = temperature
        return _run(
            [
                "generate", "--model", str(tiny_model_dir),
                "--prompts", json.dumps({"class_path": "file", "path": str(prompts)}),
                "--generator", json.dumps(spec), "--out_dir", str(tmp_path / "out"), "--progress", "false",
            ]
        )  # fmt: skip

    assert generate(0.0).returncode == 0
    before = (tmp_path / "out" / "candidates.jsonl").read_bytes()
    out = generate(0.5)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("aries-lit: error:") and "temperature: 0.0 -> 0.5" in last and "out" in last
    assert (tmp_path / "out" / "candidates.jsonl").read_bytes() == before  # nothing lost or added


def _main(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """``aries_lit.cli.main`` in this process (no interpreter start): ``(exit code, last stderr line)``.
    Not for ``fit``: Lightning's log handlers would outlive the captured stream."""
    from aries_lit.cli import main

    monkeypatch.delenv("ARIES_LIT_DEBUG", raising=False)
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, (err.strip().splitlines() or [""])[-1]


def _fit(data: Path, tiny_model_dir: Path, tmp_path: Path) -> tuple[int, str]:
    """``aries-lit fit`` (tiny DPO config) on ``data``: ``(exit code, last stderr line)``."""
    out = _run(
        [
            "fit", "--config", "configs/tiny/dpo_offline.yaml",
            "--model.init_args.model", str(tiny_model_dir), "--data.init_args.train", str(data),
            "--data.init_args.format", "trl",
            "--data.init_args.on_error", "raise", "--trainer.default_root_dir", str(tmp_path / "run"),
            "--trainer.logger", "false",
        ]
    )  # fmt: skip
    assert "Traceback" not in out.stderr
    return out.returncode, out.stderr.strip().splitlines()[-1]


def test_fit_on_an_empty_pairs_file_says_it_holds_no_records(tiny_model_dir, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n\n")  # blank lines only
    code, last = _fit(data, tiny_model_dir, tmp_path)
    assert code == 1
    assert last == f"aries-lit: error: {data} holds no records (the file is empty or has only blank lines)"


def test_fit_with_an_unknown_chat_role_names_file_record_and_field(tiny_model_dir, tmp_path):
    data = tmp_path / "chat.jsonl"
    rows = [
        {"prompt": [{"role": "user", "content": "Q1"}], "chosen": "A", "rejected": "B"},
        {"prompt": [{"role": "system", "content": "S"}, {"role": "human", "content": "Q2"}], "chosen": "A",
         "rejected": "B"},
    ]  # fmt: skip
    data.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")  # record 3: its line
    code, last = _fit(data, tiny_model_dir, tmp_path)
    assert code == 1
    assert last == (
        f"aries-lit: error: {data}, record 3, field 'prompt': message 2 has unknown role 'human'; "
        "allowed roles: system, user, assistant"
    )


def _died_generation(tmp_path: Path, complete: int, total: int = 3) -> tuple[Path, str]:
    """A generation folder of ``total`` prompts, 2 candidates each, where only the first ``complete``
    prompts got both (the third prompt got its first one): a ``generate`` that died."""
    from aries_lit.generators.store import write_manifest

    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"What is {i} + 1?"} for i in range(total)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    folder = tmp_path / "gen"
    folder.mkdir()
    rows = [{"id": f"q{i}", "index": k, "text": f"answer {k}"} for i in range(complete) for k in range(2)]
    rows.append({"id": f"q{complete}", "index": 0, "text": "answer 0"})
    (folder / "candidates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_manifest(folder, {"num_candidates": 2, "num_prompts": total, "status": "running"})
    return folder, json.dumps({"class_path": "file", "path": str(prompts)})


def _select(folder: Path, prompts: str, *extra: str) -> list[str]:
    selector = "{class_path: rule, init_args: {skip_truncated: false}}"
    return ["select", "--candidates", str(folder), "--prompts", prompts, "--selector", selector, *extra]


def test_select_refuses_an_incomplete_generation_folder(tmp_path, capsys, monkeypatch):
    folder, prompts = _died_generation(tmp_path, complete=2)
    code, last = _main(_select(folder, prompts), capsys, monkeypatch)
    assert code == 1
    assert last == (
        f"aries-lit: error: {folder}: 1 of 3 prompts lack some of their 2 candidates (generation did not "
        "finish); rerun the same `aries-lit generate` command to finish it (it resumes where it stopped), "
        "or pass --allow_partial true to select from the 2 complete prompts only"
    )
    assert not (folder / "pairs.jsonl").exists()

    code, _ = _main([*_select(folder, prompts), "--allow_partial", "true"], capsys, monkeypatch)
    assert code == 0
    pairs = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]
    assert [p["id"] for p in pairs] == ["q0", "q1"]
    stats = json.loads((folder / "selection_stats.json").read_text())
    assert (stats["groups"], stats["prompts"], stats["incomplete_prompts"]) == (2, 3, 1)


def test_select_with_no_complete_prompt_or_no_candidates_file(tmp_path, capsys, monkeypatch):
    from aries_lit.generators.store import write_manifest

    folder, prompts = _died_generation(tmp_path, complete=0)
    code, last = _main([*_select(folder, prompts), "--allow_partial", "true"], capsys, monkeypatch)
    assert code == 1 and "3 of 3 prompts lack some of their 2 candidates" in last
    assert last.endswith("no prompt has all its candidates, so there is nothing to select from")

    (folder / "candidates.jsonl").unlink()
    write_manifest(folder, {"num_candidates": 2, "num_prompts": 3, "status": "done"})
    code, last = _main(_select(folder, prompts), capsys, monkeypatch)
    assert code == 1
    assert last == (
        f"aries-lit: error: {folder}: the manifest says generation finished but candidates.jsonl is "
        "missing; rerun the same `aries-lit generate` command to generate the candidates again"
    )


def test_fit_on_an_empty_pairs_file_written_by_select_says_so(tiny_model_dir, tmp_path):
    """The datamodule's messages when no pair is left: which command wrote an empty pairs file,
    offset past the end, every record skipped, every record dropped by truncation."""
    from transformers import AutoTokenizer

    from aries_lit.data import PreferenceDataModule
    from aries_lit.pipeline.collect import select

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)

    def message(path: Path, **kwargs) -> str:
        dm = PreferenceDataModule(str(path), **kwargs)
        dm.configure(tokenizer, ("direct/chosen", "direct/rejected"))
        with pytest.raises(ValueError) as info:
            dm.setup("fit")
        return str(info.value)

    folder, prompts = _died_generation(tmp_path, complete=1, total=1)  # one complete prompt
    same = {"class_path": "rule", "chosen_index": 0, "rejected_index": 0}
    pairs = Path(select(str(folder), json.loads(prompts), same))
    assert pairs.read_text() == ""  # chosen == rejected: the rule selector makes no pair
    assert message(pairs) == (
        f"{pairs} holds no records (the file is empty or has only blank lines); `aries-lit select` wrote "
        "it: its selector (RuleSelector) made no pair from 1 prompts (too_few 1); see "
        f"{pairs.resolve().with_name('selection_stats.json')}"
    )

    data = tmp_path / "pairs.jsonl"
    long = {"prompt": "word " * 200, "chosen": "A", "rejected": "B"}
    data.write_text(json.dumps(long) + "\n" + json.dumps({"prompt": "P", "chosen": "A"}) + "\n")
    assert message(data, offset=5) == f"{data}: no record after offset 5 (it holds 2 records); lower offset"
    assert message(data, offset=1, on_error="skip") == (
        f"{data}: none of its 1 records is valid, all were skipped (on_error: skip; missing_field 1); "
        "the first: record 2, field 'rejected': missing field"
    )
    assert message(data, limit=1, max_length=64, max_context_length=32, truncation="drop") == (
        f"{data}: no train record survived truncation: 1 of 1 records dropped because a context is longer "
        "than max_context_length 32 (truncation: drop); raise max_context_length (below max_length 64) "
        "or use truncation: left"
    )


def test_errors_are_reported_by_class_not_by_text(capsys, monkeypatch):
    """A setting a class cannot take is a ``SettingsError`` (one line), raised before the class is
    called; a ``TypeError`` from a bug keeps its traceback even when its text reads like a setting's."""
    from aries_lit import cli
    from aries_lit.core.errors import SettingsError
    from aries_lit.core.registry import Registry
    from aries_lit.selectors import SELECTORS, RuleSelector

    with pytest.raises(SettingsError, match="selector 'rule': got an unexpected keyword argument 'nosuch'"):
        SELECTORS.build({"class_path": "rule", "init_args": {"nosuch": 1}})

    bad = {"class_path": "rule", "init_args": {"x": 1}}
    monkeypatch.setattr(cli, "_main", lambda argv: SELECTORS.build(bad))
    code, last = _main(["select"], capsys, monkeypatch)
    assert (code, last) == (1, "aries-lit: error: selector 'rule': got an unexpected keyword argument 'x'")

    class Buggy(RuleSelector):
        def __init__(self, skip_truncated: bool = True) -> None:
            super().__init__(skip_truncated=skip_truncated, nosuch=1)  # a bug inside the constructor

    registry = Registry("things", RuleSelector)
    registry.register("buggy")(Buggy)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nosuch'") as info:
        registry.build("buggy")
    assert not isinstance(info.value, SettingsError)

    def bug(argv):
        raise TypeError("f() got an unexpected keyword argument 'x'")  # the text the CLI once matched

    monkeypatch.setattr(cli, "_main", bug)
    monkeypatch.delenv("ARIES_LIT_DEBUG", raising=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        cli.main(["select"])
