"""Bad settings get a short error naming the config file, the key and the cause (never the usage
text); every command takes ``--config``, ``--print_config`` and ``--help``; every command line in
the README, CONTRIBUTING and docs parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from aries_lit.cli import DESCRIPTIONS, main
from aries_lit.core.parse_errors import condense

REPO = Path(__file__).resolve().parents[1]

FIT = {
    "trainer": {"accelerator": "cpu", "max_steps": 1, "logger": False},
    "model": {
        "class_path": "aries_lit.modules.PreferenceModule",
        "init_args": {"model": "tiny", "loss": {"class_path": "aries", "init_args": {"alpha": 0.5}}},
    },
    "data": {"class_path": "aries_lit.data.PreferenceDataModule", "init_args": {"train": "pairs.jsonl"}},
}


def _error(argv: list[str], capsys) -> list[str]:
    """The stderr lines of a command that must fail with a user error (exit 1)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("aries-lit: error: ")
    return [line for line in lines if not line.startswith(("Seed set", "/"))]  # Lightning's own notes


def _printed(argv: list[str], capsys) -> dict:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def _fit_config(tmp_path: Path, **loss: object) -> Path:
    config = yaml.safe_load(yaml.safe_dump(FIT))
    config["model"]["init_args"]["loss"] = loss
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_short_registry_name_in_class_path_is_the_loss(tmp_path, capsys):
    path = _fit_config(tmp_path, class_path="aries", init_args={"alpha": 0.5})
    printed = _printed(["fit", "--config", str(path)], capsys)
    loss = printed["model"]["init_args"]["loss"]
    assert loss["class_path"] == "aries_lit.losses.composite.ARIESLoss"
    assert loss["init_args"]["alpha"] == 0.5


def test_unknown_loss_name_lists_the_known_ones(tmp_path, capsys):
    path = _fit_config(tmp_path, class_path="ariez")
    (line,) = _error(["fit", "--config", str(path)], capsys)
    assert f"{path}: model.init_args.loss.class_path: unknown loss 'ariez'; known: " in line
    known = line.split("known: ", 1)[1].split(", or a dotted class path")[0].split(", ")
    assert {"aries", "dpo", "bt_aries", "ipo", "orpo"} <= set(known)
    assert known == sorted(known)


def test_unknown_key_names_the_config_and_key(tmp_path, capsys):
    path = _fit_config(tmp_path, class_path="aries", init_args={"alphaz": 0.5})
    (line,) = _error(["fit", "--config", str(path)], capsys)
    assert line == f"aries-lit: error: {path}: model.init_args.loss: Option 'alphaz' is not accepted"


def test_unknown_trainer_key_is_one_line(tmp_path, capsys):
    path = _fit_config(tmp_path, class_path="dpo")
    (line,) = _error(["fit", "--config", str(path), "--trainer.max_stepz", "3"], capsys)
    assert line.endswith("unrecognized arguments: --trainer.max_stepz 3")
    config = yaml.safe_load(path.read_text())
    config["trainer"]["max_stepz"] = 3
    path.write_text(yaml.safe_dump(config))
    (line,) = _error(["fit", "--config", str(path)], capsys)
    assert line == f"aries-lit: error: {path}: Subcommand 'fit' does not accept option 'trainer.max_stepz'"


def test_yaml_syntax_error_names_file_line_and_column(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("trainer: {accelerator: cpu, max_steps: 1\nmodel: [\n")
    for command in ("fit", "iterate", "evaluate"):
        (line,) = _error([command, "--config", str(path)], capsys)
        assert f"{path}: invalid YAML: line 2, column 6:" in line
        assert "<unicode string>" not in line


def test_a_bad_value_under_a_full_class_path_is_one_line(tmp_path, capsys):
    path = _fit_config(tmp_path, class_path="aries_lit.losses.ARIESLoss", init_args={"alpha": 1.7})
    lines = _error(["fit", "--config", str(path)], capsys)
    cause = "aries: alpha (the weight of the refinement loss) must be in [0, 1], got 1.7"
    assert lines[-1] == f"aries-lit: error: {path}: {cause}"


def test_a_missing_config_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nosuch.yaml"
    for command in ("fit", "generate", "iterate"):
        (line,) = _error([command, "--config", str(missing)], capsys)
        assert line == f"aries-lit: error: config file '{missing}' does not exist"


def test_a_wrong_value_type_on_the_command_line_names_the_flag(capsys):
    (line,) = _error(["prepare-model", "--source", "tiny", "--nosuch", "1"], capsys)
    assert "--nosuch" in line
    (line,) = _error(["iterate", "--run_dir", "x", "--base_model", "y", "--stages", "7"], capsys)
    assert line.startswith("aries-lit: error: stages")


def test_unknown_command_is_one_line(capsys):
    (line,) = _error(["fitt"], capsys)
    assert line == f"aries-lit: error: unknown command 'fitt'; commands: {', '.join(DESCRIPTIONS)}"


def test_iterate_takes_a_list_of_stages_and_refuses_an_unknown_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    config = "configs/iterate/tiny.yaml"
    printed = _printed(["iterate", "--config", config, "--only_stages", "[sft,offline]"], capsys)
    assert printed["only_stages"] == ["sft", "offline"]
    assert printed["stages"][0]["fit"]["model"]["class_path"] == "aries_lit.modules.SFTModule"  # inlined
    run = ["iterate", "--config", config, "--run_dir", str(tmp_path), "--only_stages", "[sft,ofline]"]
    (line,) = _error(run, capsys)
    stages = "sft, offline, iter1, iter2"
    assert line == f"aries-lit: error: {config}: unknown stage 'ofline'; stages are {stages}"


@pytest.mark.parametrize("command", sorted(DESCRIPTIONS))
def test_every_command_has_help_and_print_config(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--print_config" in out


def test_lightning_does_not_warn_about_args_and_argv(tmp_path, capsys, monkeypatch, recwarn):
    monkeypatch.setattr("sys.argv", ["aries-lit", "fit", "--config", "x.yaml"])
    path = _fit_config(tmp_path, class_path="dpo")
    _printed(["fit", "--config", str(path)], capsys)
    assert not [w for w in recwarn if "args parameter is intended" in str(w.message)]


@pytest.mark.parametrize(
    "message, expected",
    [
        (
            "Parser key \"a\":\n  Expected a <class 'int'>. Got value: x",
            "a: Expected a <class 'int'>. Got value: x",
        ),
        ("one line", "one line"),
        (
            'Parser key "model":\n  Does not validate against any of the Union subtypes\n  Errors:\n'
            "    - Problem with given class_path 'm.M':\n        Parser key \"loss\":\n"
            "          Errors:\n            - Expected a dot import path string: x\n"
            "            - Expected a <class 'NoneType'>\n    - Expected a <class 'NoneType'>\n"
            "  Given value: {'class_path': 'm.M'}",
            "model.init_args.loss: Expected a dot import path string: x",
        ),
    ],
)
def test_condense_keeps_the_key_path_and_the_deepest_cause(message, expected):
    assert condense(message) == expected


def _documented_commands() -> list[tuple[str, str]]:
    """``aries-lit ...`` lines of the fenced code blocks of README, CONTRIBUTING and docs."""
    found = []
    files = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]
    for file in files:
        in_block = False
        pending = ""
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("```"):
                in_block = not in_block
                continue
            if not in_block:
                continue
            text = pending + line.strip()
            if text.endswith("\\"):
                pending = text[:-1] + " "
                continue
            pending = ""
            text = re.sub(r"\s+#.*$", "", text)
            if text.startswith("aries-lit "):
                found.append((f"{file.relative_to(REPO)}: {text}", text))
    return found


DOCUMENTED = _documented_commands()


def test_the_docs_show_commands():
    assert len(DOCUMENTED) >= 20


@pytest.mark.parametrize("command", [c for _, c in DOCUMENTED], ids=[i for i, _ in DOCUMENTED])
def test_every_documented_command_line_parses(command, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    argv = shlex.split(command)[1:]
    assert argv[0] in DESCRIPTIONS, command
    _printed(argv, capsys)


def test_a_stage_that_cannot_run_is_one_line(tmp_path, capsys, monkeypatch):
    """``iterate --only_stages [offline]`` before ``sft`` has run: one line naming the stage."""
    monkeypatch.chdir(REPO)
    config = "configs/iterate/tiny.yaml"
    run = ["iterate", "--config", config, "--run_dir", str(tmp_path), "--only_stages", "[offline]"]
    (line,) = _error(run, capsys)
    assert line == f"aries-lit: error: {config}: stage 'sft' is not finished and not selected; run it first"


def test_a_moved_class_path_still_works_with_a_note(capsys):
    from aries_lit.cli import resolve_class_paths
    from aries_lit.pipeline.collecting import CollectingDataModule

    config = {"data": {"class_path": "aries_lit.data.CollectingDataModule", "init_args": {}}}
    out = resolve_class_paths(config, where="fit.yaml")
    assert out["data"]["class_path"] == "aries_lit.pipeline.collecting.CollectingDataModule"
    assert CollectingDataModule.__module__ + ".CollectingDataModule" == out["data"]["class_path"]
    err = capsys.readouterr().err
    assert "fit.yaml: 'aries_lit.data.CollectingDataModule' has moved; write 'aries_lit.pipeline" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--model", "m", "--prompts",
          "{class_path: arithmetic, init_args: {count: 2, bogus: 1}}"],
         "prompts: prompt_source 'arithmetic' does not take 'bogus'; it takes num_terms, digits"),
        (["generate", "--model", "m", "--prompts", "arithmetic",
          "--generator", "{class_path: sequential_refinment}"],
         "generator: unknown generator 'sequential_refinment'; known: PS, SR, oracle_feedback, parallel"),
        (["generate", "--model", "m", "--prompts", "arithmetic", "--generator",
          "{class_path: parallel_sampling,"
          " init_args: {backend: {class_path: vllm, init_args: {dtyp: float32}}}}"],
         "generator.backend: backend 'vllm' does not take 'dtyp'; it takes model, dtype"),
        (["select", "--candidates", "c", "--prompts", "p.jsonl",
          "--selector", "{class_path: verifier, init_args: {checkr: builtin}}"],
         "selector: selector 'verifier' does not take 'checkr'; it takes extract"),
        (["evaluate", "--checkpoints", "[m]", "--tasks",
          "[gsm8k, {class_path: arithmetic, init_args: {cont: 3}, label: a}]"],
         "tasks[1]: prompt_source 'arithmetic' does not take 'cont'; it takes num_terms"),
        (["evaluate", "--checkpoints", "[m]", "--tasks", "[gsm8k]", "--generator", "{temperatur: 0.0}"],
         "generator: generator 'sequential_refinement' does not take 'temperatur'; it takes"),
        (["evaluate", "--checkpoints", "[m]", "--generator",
          "{class_path: sequential_refinement, init_args: {backend: {class_path: vlm}}}"],
         "generator.backend: unknown backend 'vlm'; known: hf, transformers, vllm"),
    ],
)  # fmt: skip
def test_a_part_with_an_unknown_name_or_option_fails_before_any_work(args, message, capsys):
    """Part options are checked against their registry right after parsing (nothing is loaded)."""
    from aries_lit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"aries-lit: error: {message}") and "\n" not in err


def test_evaluate_help_lists_its_parts_with_their_options(capsys):
    """``evaluate`` (whose options come from evaluate_checkpoints through ``**options``) lists its
    generator, the generator's backends and the tasks' prompt sources, as generate and select do."""
    from aries_lit.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "--generator: generator names and their options:" in out
    assert "  sequential_refinement: num_candidates=4, backend='transformers'," in out
    assert "--generator's backend: backend names and their options:" in out and "  vllm: model, dtype=" in out
    assert "--tasks: prompt_source names and their options:" in out and "  gsm8k: path=None," in out
    assert "(a task's own keys, beside class_path and init_args: label, kind," in out
    assert "{class_path: NAME, init_args: {OPTION: VALUE, ...}}" in out


def test_a_name_form_part_option_is_refused_in_one_line(capsys):
    """``--selector '{name: rule, ...}'`` is refused before any work, with the line saying how to
    write it."""
    from aries_lit.cli import main

    args = ["select", "--candidates", "c", "--prompts", "p.jsonl", "--selector", "{name: rule, bogus: 1}"]
    with pytest.raises(SystemExit):
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "aries-lit: error: selector: write {class_path: rule, init_args: {...}}; "
        "the 'name:' form of a part is no longer read"
    ]


def test_help_lists_every_part_with_its_options(capsys):
    from aries_lit.cli import main

    with pytest.raises(SystemExit):
        main(["select", "--help"])
    out = capsys.readouterr().out
    assert "--selector: selector names and their options:" in out
    assert "  verifier: extract='auto'," in out and "  reward_model: model, batch_size=8," in out
    assert "--prompts: prompt_source names and their options:" in out and "  gsm8k: path=None," in out
