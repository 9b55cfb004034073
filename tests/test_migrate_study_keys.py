"""``scripts/migrate_study_keys.py``: result files recorded under the keys of before move to
today's keys (the committed study's keys), once; a run folder's stage folders follow."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
#: as in tests/test_study.py: the base model's folder on the machine that ran the study
STUDY_BASE_MODEL_DIR = "/root/.cache/aries_lit/smollm2-135m-instruct"


def _script():
    path = REPO / "scripts" / "migrate_study_keys.py"
    spec = importlib.util.spec_from_file_location("migrate_study_keys", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_old_keys_move_to_the_committed_ones(tmp_path, monkeypatch, capsys):
    migrate = _script()
    from aries_lit.pipeline.study import Study
    from aries_lit.pipeline.study_spec import StudySpec

    monkeypatch.chdir(REPO)
    config = yaml.safe_load((REPO / "configs/study/cpu.yaml").read_text())
    config["results_dir"] = str(tmp_path / "results")
    config["arms"] = [a for a in config["arms"] if a["name"] in ("aries", "iterative_dpo")]
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(config))
    for arm in ("aries", "iterative_dpo"):
        shutil.copytree(REPO / "docs/study/cpu" / arm / "seed0", tmp_path / "results" / arm / "seed0")
    committed = {p: json.loads(p.read_text()) for p in sorted((tmp_path / "results").glob("*/*/*.json"))}

    # put the files back under the keys of before, and give the run folder a stage folder
    study = Study(StudySpec.from_file(study_file), progress=False)
    old_input, old_keys = f"base:{study.base_model}", {}
    for stage, key in study.arm_stages(study.spec.arm("aries"), 0, STUDY_BASE_MODEL_DIR):
        old_input = old_keys[key] = migrate.old_stage_key(stage, old_input)
    old_eval = migrate.old_eval_key(study.base_model, study.evaluation)
    for path, result in committed.items():
        old = dict(result, eval_key=old_eval) if result.get("eval_key") else dict(result)
        if result["arm"] == "aries" and result["index"]:
            old["key"] = old_keys[result["key"]]
        path.write_text(json.dumps(old))
    other = tmp_path / "results" / "iterative_dpo" / "seed0" / "01-sft.json"
    other.write_text(json.dumps(dict(committed[other], eval_key="0123456789ab")))  # other settings
    first_old = next(iter(old_keys.values()))
    (tmp_path / "run" / "stages" / f"{first_old}-sft").mkdir(parents=True)

    argv = ["--config", str(study_file), "--run_dir", str(tmp_path / "run"), "--base_model_dir",
            STUDY_BASE_MODEL_DIR]  # fmt: skip
    assert migrate.main(argv) == 0
    out = capsys.readouterr().out
    assert "left as it is (recorded under other settings): " + str(other) in out
    for path, result in committed.items():
        if path != other:
            assert json.loads(path.read_text()) == result, path
    assert json.loads(other.read_text())["eval_key"] == "0123456789ab"
    first_new = next(iter(old_keys))
    assert [p.name for p in (tmp_path / "run" / "stages").iterdir()] == [f"{first_new}-sft"]

    assert migrate.main(argv) == 0  # once: a second run moves nothing
    assert "moved 0 result files" in capsys.readouterr().out


def test_a_missing_config_is_one_line(tmp_path, capsys):
    migrate = _script()
    assert migrate.main(["--config", str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("migrate_study_keys: error: ") and "nope.yaml" in err and len(err.splitlines()) == 1
