"""Typed specs, parsed once: an arm's seed and the run's template reach the stage's generator and fit
config as attributes of the specs; a bad spec is one line naming the file and the key; the old
``name:`` form of a part is refused with how to write it."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
import yaml

from aries_lit.core.errors import SettingsError
from aries_lit.core.part_spec import PartSpec
from aries_lit.pipeline.specs import CollectSpec, IterateSpec, StageSpec
from aries_lit.pipeline.study import Study
from aries_lit.pipeline.study_keys import stage_key
from aries_lit.pipeline.study_spec import StudySpec
from aries_lit.prompts.templates import RefinementTemplate

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- one setting, followed


def test_an_arms_seed_and_the_runs_template_reach_the_generator_and_the_fit(monkeypatch, tmp_path):
    """``configs/study/tiny.yaml`` with ``template: short``: arm ``aries``, seed 1, stage ``iter1``
    (sequential refinement) carries the seed and the template as attributes, the generator built
    from its spec has them, and its fit config as it runs has ``seed_everything``, the data seed
    and the data template."""
    from aries_lit.generators import GENERATORS
    from aries_lit.pipeline.stage import _stage_fit_config

    monkeypatch.chdir(REPO)
    spec = StudySpec.from_file("configs/study/tiny.yaml", template="short")
    arm = spec.arm("aries")
    assert arm.seeds == (0, 1) and [s.name for s in arm.stages] == ["sft", "offline", "iter1"]
    iter1 = arm.stages[2]
    assert isinstance(iter1.collect, CollectSpec) and isinstance(iter1.collect.generator, PartSpec)
    # the template is filled in once, at parse time; the seed is put in per seed
    assert (
        iter1.collect.generator.init_args["template"] == "short"
        and "seed" not in iter1.collect.generator.init_args
    )
    assert iter1.fit["data"]["init_args"]["template"] == "short"
    assert spec.evaluation["generator"]["init_args"]["template"] == "short"
    # parallel sampling does not refine: no template there
    assert "template" not in arm.stages[0].collect.generator.init_args

    study = Study(spec, progress=False)
    stages = dict((stage.name, (stage, key)) for stage, key in study.arm_stages(arm, 1, "/base"))
    stage, key = stages["iter1"]
    assert stage == iter1.with_base_model("/base").seeded(1)
    assert stage.collect.generator.class_path == "sequential_refinement"
    assert stage.collect.generator.init_args == {
        "num_candidates": 3, "temperature": 1.0, "max_new_tokens": 8, "template": "short", "seed": 1,
    }  # fmt: skip
    assert stage.fit["seed_everything"] == 1 and stage.fit["data"]["init_args"]["seed"] == 1
    assert stage.fit["data"]["init_args"]["template"] == "short"
    assert stages["sft"][0].collect.model == "/base"  # collect.model: base -> the base model's folder
    assert key == stage_key(stage, stages["offline"][1])  # chained from the stage before

    generator = GENERATORS.build(stage.collect.generator)  # the spec object itself, no dict in between
    assert generator.settings.seed == 1 and generator.template == RefinementTemplate.from_spec("short")
    built = _collected(monkeypatch, stage, tmp_path)  # what the stage runner hands the generator
    assert built.settings.seed == 1 and built.template == generator.template and built.num_candidates == 3
    fit = _stage_fit_config(stage, tmp_path, "/model", tmp_path / "pairs.jsonl")
    assert fit["seed_everything"] == 1 and fit["data"]["init_args"]["seed"] == 1
    assert fit["data"]["init_args"]["template"] == "short" and fit["model"]["init_args"]["model"] == "/model"
    assert iter1.fit["seed_everything"] == 0  # the fit file's; nothing above was changed in place


def _collected(monkeypatch, stage: StageSpec, tmp_path: Path):
    """The generator that the stage runner's collection step builds and runs for ``stage``."""
    from aries_lit.pipeline import collect
    from aries_lit.pipeline import stage as stage_runner

    seen = []

    def fake_candidates(gen, items, model, out_dir, progress=True):
        seen.append(gen)
        return str(out_dir)

    def fake_pairs(sel, candidates, items, out=None, allow_partial=False):
        Path(out).write_text('{"id": "x"}\n')
        return out

    monkeypatch.setattr(collect, "collect_candidates", fake_candidates)
    monkeypatch.setattr(collect, "select_pairs", fake_pairs)
    stage_runner._collect(stage, tmp_path, "/model", False, None)
    (gen,) = seen
    return gen


def test_specs_are_frozen_and_their_methods_return_new_ones():
    stage = StageSpec.from_config({"name": "s", "fit": {"lr": 1}, "collect": {"prompts": "p"}}, "stages[0]")
    with pytest.raises(FrozenInstanceError):
        stage.name = "t"  # type: ignore[misc]
    assert stage.collect.generator == PartSpec("sequential_refinement", bare=True)  # the default
    assert stage.collect.selector is None and stage["name"] == "s"
    seeded = stage.seeded(3)
    assert seeded is not stage and stage.fit == {"lr": 1} and seeded.fit == {"lr": 1, "seed_everything": 3}
    collect = {"prompts": "p", "generator": "sequential_refinement"}
    assert stage.to_config() == {"name": "s", "fit": {"lr": 1}, "collect": collect}


def test_a_part_spec_reads_every_written_form():
    assert PartSpec.from_config("verifier", "x") == PartSpec("verifier", bare=True)
    assert PartSpec.from_config("verifier", "x").config() == "verifier"
    written = {"class_path": "rule", "init_args": {"chosen_index": 1}}
    assert PartSpec.from_config(written, "x") == PartSpec("rule", {"chosen_index": 1})
    assert PartSpec.from_config(written, "x").config() == written
    beside = PartSpec.from_config(
        {"class_path": "rule", "init_args": {"chosen_index": 1}, "rejected_index": 0}, "x"
    )
    assert beside.init_args == {"chosen_index": 1, "rejected_index": 0}
    assert PartSpec.from_config({"class_path": "rule"}, "x").config() == {"class_path": "rule"}


# --------------------------------------------------------------------------- one-line errors


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _iterate_config(tmp_path: Path, collect: dict) -> Path:
    stage = {"name": "iter1", "fit": {"trainer": {"max_steps": 1}}, "collect": collect}
    return _write(
        tmp_path / "run.yaml", {"run_dir": str(tmp_path / "r"), "base_model": "m", "stages": [stage]}
    )


@pytest.mark.parametrize(
    ("collect", "message"),
    [
        ({"generator": "parallel_sampling"}, "stages[0] ('iter1'): field 'collect.prompts' is missing"),
        ({"prompts": "p", "generator": 3},
         "stages[0] ('iter1').collect.generator: a part is a name or "
         "{class_path: NAME, init_args: {...}}, got 3"),
        ({"prompts": "p", "selector": {"init_args": {"x": 1}}},
         "stages[0] ('iter1').collect.selector: field 'class_path' is missing "
         "(a short name or a dotted class path)"),
        ({"prompts": "p", "selector": {"class_path": "rule", "init_args": [1]}},
         "stages[0] ('iter1').collect.selector.init_args: a mapping of options, got [1]"),
        ({"prompts": {"name": "arithmetic", "count": 3}},
         "stages[0] ('iter1').collect.prompts: write {class_path: arithmetic, init_args: {...}}; "
         "the 'name:' form of a part is no longer read"),
        ({"prompts": "p", "generator": {"class_path": "sequential_refinement",
                                        "init_args": {"backend": {"name": "transformers"}}}},
         "stages[0] ('iter1').collect.generator.backend: write transformers (or {class_path: transformers}); "
         "the 'name:' form of a part is no longer read"),
    ],
)  # fmt: skip
def test_a_bad_stage_spec_is_one_line_naming_the_file_and_key(tmp_path, collect, message):
    config = _iterate_config(tmp_path, collect)
    with pytest.raises(SettingsError) as err:
        IterateSpec.from_file(config)
    assert str(err.value) == f"{config}: {message}"


def test_the_cli_names_the_config_file_and_key_before_any_work(tmp_path, capsys):
    from aries_lit.cli import main

    config = _iterate_config(tmp_path, {"prompts": "p", "selector": {"name": "verifier"}})
    with pytest.raises(SystemExit):
        main(["iterate", "--config", str(config)])
    assert capsys.readouterr().err.splitlines() == [
        f"aries-lit: error: {config}: stages[0] ('iter1').collect.selector: write verifier "
        "(or {class_path: verifier}); the 'name:' form of a part is no longer read"
    ]
    assert not (tmp_path / "r").exists()


def test_a_study_names_the_study_file_the_arm_its_file_and_the_key(tmp_path, capsys):
    from aries_lit.cli import main

    arm = _write(
        tmp_path / "arm.yaml", {"stages": [{"name": "sft", "fit": {}, "collect": {"prompts": {"name": "x"}}}]}
    )
    evaluation = {"tasks": [{"class_path": "arithmetic", "init_args": {"count": 2}}]}
    arms = [{"name": "a", "config": str(arm)}]
    config = {"base_model": "m", "run_dir": str(tmp_path / "r"), "arms": arms, "evaluation": evaluation}
    study = _write(tmp_path / "study.yaml", config)
    with pytest.raises(SystemExit):
        main(["study", "--config", str(study)])
    assert capsys.readouterr().err.splitlines() == [
        f"aries-lit: error: {study}: arms[0] ('a'): {arm}: stages[0] ('sft').collect.prompts: write x "
        "(or {class_path: x}); the 'name:' form of a part is no longer read"
    ]
    bad_task = {"tasks": [{"name": "arithmetic", "count": 2, "label": "t"}]}
    _write(arm, {"stages": [{"name": "sft", "fit": {}}]})
    with pytest.raises(
        SettingsError, match=r"^evaluation\.tasks\[0\]: write \{class_path: arithmetic, init_args"
    ):
        StudySpec.from_config(
            {"base_model": "m", "arms": [{"name": "a", "config": str(arm)}], "evaluation": bad_task}
        )
    assert not (tmp_path / "r").exists()
