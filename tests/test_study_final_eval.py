"""scripts/study_final_eval.py: the final model of each arm-seed, found by its stage key, put into an
evaluate config; a missing model is one line naming the arm, seed and folder."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import study_final_eval  # noqa: E402

from aries_lit.pipeline.study import Study  # noqa: E402
from aries_lit.pipeline.study_spec import StudySpec  # noqa: E402


def _study(tmp_path: Path) -> Path:
    arm = {"stages": [{"name": s, "fit": {"model": {"init_args": {"lr": 1e-5}}}} for s in ("sft", "iter1")]}
    (tmp_path / "arm.yaml").write_text(yaml.safe_dump(arm))
    config = {
        "run_dir": str(tmp_path / "run"), "results_dir": str(tmp_path / "results"),
        "base_model": str(tmp_path / "base"),
        "arms": [{"name": "aries", "config": str(tmp_path / "arm.yaml"), "seeds": [0, 1]},
                 {"name": "idpo", "config": str(tmp_path / "arm.yaml"), "seeds": [0],
                  "overrides": {"stages.*.fit.model.init_args.lr": 5e-6}}],
        "evaluation": {"tasks": [{"class_path": "gsm8k"}]},
        "compare": {"treatment": "aries", "baseline": "idpo"},
    }  # fmt: skip
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    eval_config = tmp_path / "eval.yaml"
    eval_config.write_text(yaml.safe_dump({"checkpoints": ["x"], "tasks": [{"class_path": "ifeval"}],
                                           "max_new_tokens": 512}))  # fmt: skip
    return path


def _make_model(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")


def test_the_final_models_of_every_arm_seed_go_into_the_evaluate_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _study(tmp_path)
    study = Study(StudySpec.from_file(config), progress=False)
    expected = []
    for name, seeds in (("aries", [0, 1]), ("idpo", [0])):
        for seed in seeds:
            stage, key = study.arm_stages(study.spec.arm(name), seed)[-1]
            model = tmp_path / "run" / "stages" / f"{key}-{stage.name}" / "model"
            _make_model(model)
            expected.append((f"{name}-seed{seed}", str(model)))
    args = ["--config", str(config), "--eval", str(tmp_path / "eval.yaml"), "--out_dir", "out"]
    args.append("--print_only")
    assert study_final_eval.main(args) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["names"] == ["base"] + [n for n, _ in expected]
    assert printed["checkpoints"][1:] == [m for _, m in expected]
    assert printed["out_dir"] == "out" and printed["max_new_tokens"] == 512
    assert len({m for _, m in expected}) == 3  # each seed and arm its own model


def test_a_missing_model_or_a_bad_eval_config_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _study(tmp_path)
    args = ["--config", str(config), "--eval", str(tmp_path / "eval.yaml"), "--out_dir", "out"]
    args.append("--print_only")
    assert study_final_eval.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("study_final_eval: error: arm 'aries' seed 0: its last stage 'iter1' has no model")
    assert study_final_eval.main([*args, "--arms", "nosuch"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nosuch" in err, err
    study = Study(StudySpec.from_file(config), progress=False)
    for seed in (0, 1):
        stage, key = study.arm_stages(study.spec.arm("aries"), seed)[-1]
        _make_model(tmp_path / "run" / "stages" / f"{key}-{stage.name}" / "model")
    (tmp_path / "bad.yaml").write_text("model: x\n")
    bad = ["--config", str(config), "--eval", str(tmp_path / "bad.yaml"), "--out_dir", "o", "--arms", "aries"]
    assert study_final_eval.main(bad) == 1
    assert capsys.readouterr().err.strip() == (
        f"study_final_eval: error: {tmp_path / 'bad.yaml'}: not an evaluate config (no 'tasks' key)"
    )
